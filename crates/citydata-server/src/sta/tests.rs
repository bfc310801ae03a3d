//! The SensorThings API end to end through the router: real store, real group-commit ingest.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{app, AppState};

struct Api {
    _dir: tempfile::TempDir,
    app: Router,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = citydata_store::Store::open(&dir.path().join("t.db")).unwrap();
        let ingest = citydata_sensors::GroupCommit::start(&store).unwrap();
        let app = app(AppState { store: Arc::new(store), ingest: Arc::new(ingest) });
        Api { _dir: dir, app }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let uri = format!("/sta/v1.1{path}").replace(' ', "%20").replace('\'', "%27");
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "example.org")
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v, location)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v, _) = self.call("GET", path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn ids(&self, path: &str) -> Vec<i64> {
        let v = self.get(path).await;
        v["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {v}"))
            .iter()
            .map(|e| e["@iot.id"].as_i64().unwrap())
            .collect()
    }

    async fn fails(&self, method: &str, path: &str, body: Option<Value>, status: StatusCode, says: &str) {
        let (got, v, _) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {v}");
        assert_eq!(v["code"], status.as_u16(), "{method} {path}: {v}");
        assert_eq!(v["type"], "error");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(says), "{method} {path}: {m:?} should say {says:?}");
    }
}

fn lamppost(name: &str, x: f64, y: f64) -> Value {
    json!({
        "name": name,
        "description": "a smart lamppost",
        "properties": {"district": if x < 114.2 { "Central" } else { "Kowloon" }},
        "Locations": [{"name": format!("{name} site"), "description": "kerb", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [x, y]}}],
        "Datastreams": [
            {"name": format!("{name} PM2.5"), "description": "fine particles", "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
             "unitOfMeasurement": {"name": "microgram per cubic metre", "symbol": "µg/m³", "definition": "ucum:ug/m3"},
             "Sensor": {"name": "PMS5003", "description": "laser counter", "encodingType": "application/pdf", "metadata": "https://example.org/pms5003.pdf"},
             "ObservedProperty": {"name": "PM2.5", "definition": "https://example.org/pm25", "description": "particles under 2.5 µm"}},
            {"name": format!("{name} vehicles"), "description": "vehicle count", "observationType": "OM_CountObservation",
             "unitOfMeasurement": {"name": "vehicles", "symbol": "veh", "definition": "count"},
             "Sensor": {"name": "radar", "description": "radar", "encodingType": "application/pdf", "metadata": "m"},
             "ObservedProperty": {"name": "traffic flow", "definition": "https://example.org/flow", "description": "vehicles per interval"}}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensorthings_end_to_end() {
    let api = Api::new();
    let root = api.get("").await;
    assert_eq!(root["value"].as_array().unwrap().len(), 8);
    assert_eq!(root["value"][0]["url"], "http://example.org/sta/v1.1/Things");
    assert!(root["serverSettings"]["conformance"].as_array().unwrap().len() >= 4);

    // Deep insert.
    let (status, thing, location) =
        api.call("POST", "/Things", Some(lamppost("LP-1", 114.158, 22.282))).await;
    assert_eq!(status, StatusCode::CREATED, "{thing}");
    let t1 = thing["@iot.id"].as_i64().unwrap();
    assert_eq!(location.unwrap(), format!("http://example.org/sta/v1.1/Things({t1})"));
    let (status, _, _) = api.call("POST", "/Things", Some(lamppost("LP-2", 114.25, 22.33))).await;
    assert_eq!(status, StatusCode::CREATED);
    let ds = api.ids(&format!("/Things({t1})/Datastreams?$orderby=name")).await;
    assert_eq!(ds.len(), 2);
    let (pm, cars) = (ds[0], ds[1]);
    assert_eq!(api.ids("/Locations").await.len(), 2);
    assert_eq!(api.ids(&format!("/Things({t1})/HistoricalLocations")).await.len(), 1);

    // Observations through the ingest; a duplicate is not doubled.
    let (status, o, loc) = api
        .call(
            "POST",
            &format!("/Datastreams({pm})/Observations"),
            Some(json!({"phenomenonTime": "2024-03-01T08:00:00Z", "result": 35.5})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{o}");
    let o1 = o["@iot.id"].as_i64().unwrap();
    assert!(loc.unwrap().ends_with(&format!("Observations({o1})")));
    let (status, again, _) = api
        .call("POST", "/Observations", Some(json!({"phenomenonTime": "2024-03-01T08:00:00Z", "result": 99, "Datastream": {"@iot.id": pm}})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["@iot.id"], o1, "the duplicate answers the stored observation");
    // The feature of interest was made from the Thing's Location.
    let foi = api.get(&format!("/Observations({o1})/FeatureOfInterest")).await;
    assert_eq!(foi["feature"]["coordinates"][0], 114.158);

    // Bulk: dataArray.
    let body = json!([
        {"Datastream": {"@iot.id": pm}, "components": ["phenomenonTime", "result"], "dataArray@iot.count": 3,
         "dataArray": [["2024-03-01T08:01:00Z", 40.0], ["2024-03-01T09:30:00Z", 12.25], ["2024-03-02T08:00:00Z", 55]]},
        {"Datastream": {"@iot.id": cars}, "components": ["phenomenonTime", "result"],
         "dataArray": [["2024-03-01T08:00:00Z", 17], ["2024-03-01T08:05:00Z", 23]]}
    ]);
    let (status, links, _) = api.call("POST", "/CreateObservations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{links}");
    assert_eq!(links.as_array().unwrap().len(), 5);
    assert!(links[0].as_str().unwrap().starts_with("http://example.org/sta/v1.1/Observations("));

    // Refused whole: wrong types, unknown datastreams, malformed times.
    let before = api.get("/Observations?$count=true&$top=0").await["@iot.count"].clone();
    assert_eq!(before, 6);
    api.fails(
        "POST",
        "/CreateObservations",
        Some(json!([{"Datastream": {"@iot.id": cars}, "components": ["phenomenonTime", "result"],
        "dataArray": [["2024-03-03T00:00:00Z", 1], ["2024-03-03T00:01:00Z", 2.5]]}])),
        StatusCode::BAD_REQUEST,
        "not an integer",
    )
    .await;
    api.fails(
        "POST",
        "/CreateObservations",
        Some(json!([{"Datastream": {"@iot.id": 9999}, "components": ["result"],
        "dataArray": [[1]]}])),
        StatusCode::BAD_REQUEST,
        "datastream 9999 does not exist",
    )
    .await;
    api.fails(
        "POST",
        "/CreateObservations",
        Some(json!([{"Datastream": {"@iot.id": pm}, "components": ["phenomenonTime", "result"],
        "dataArray": [["yesterday", 1]]}])),
        StatusCode::BAD_REQUEST,
        "row 0",
    )
    .await;
    api.fails(
        "POST",
        &format!("/Datastreams({pm})/Observations"),
        Some(json!({"result": "high"})),
        StatusCode::BAD_REQUEST,
        "OM_Measurement",
    )
    .await;
    api.fails(
        "POST",
        &format!("/Datastreams({cars})/Observations"),
        Some(json!({"result": true})),
        StatusCode::BAD_REQUEST,
        "not an integer",
    )
    .await;
    assert_eq!(
        api.get("/Observations?$count=true&$top=0").await["@iot.count"],
        before,
        "nothing of a refused batch stored"
    );

    // Filters.
    let obs = format!("/Datastreams({pm})/Observations");
    assert_eq!(api.ids(&format!("{obs}?$filter=result gt 36")).await.len(), 2);
    assert_eq!(
        api.ids(&format!("{obs}?$filter=result ge 12.25 and result lt 36 or result eq 55")).await.len(),
        3
    );
    assert_eq!(api.ids(&format!("{obs}?$filter=not (result gt 36)")).await.len(), 2);
    assert_eq!(api.ids(&format!("{obs}?$filter=result mul 2 sub 1 gt 80")).await.len(), 1);
    assert_eq!(api.ids(&format!("{obs}?$filter=phenomenonTime ge 2024-03-01T09:00:00Z")).await.len(), 2);
    assert_eq!(
        api.ids(&format!("{obs}?$filter=day(phenomenonTime) eq 2 and year(phenomenonTime) eq 2024"))
            .await
            .len(),
        1
    );
    assert_eq!(api.ids(&format!("{obs}?$filter=hour(phenomenonTime) eq 9")).await.len(), 1);
    assert_eq!(api.ids("/Observations?$filter=Datastream/Thing/name eq 'LP-1'").await.len(), 6);
    assert_eq!(
        api.ids("/Observations?$filter=Datastream/ObservedProperty/name eq 'traffic flow'").await.len(),
        2
    );
    assert_eq!(api.ids("/Things?$filter=Datastreams/ObservedProperty/name eq 'PM2.5' and properties/district eq 'Kowloon'").await.len(), 1);
    assert_eq!(api.ids("/Things?$filter=substringof('LP', name) and endswith(name, '-2')").await.len(), 1);
    assert_eq!(
        api.ids("/Things?$filter=startswith(tolower(name), 'lp') and length(name) eq 4").await.len(),
        2
    );
    assert_eq!(
        api.ids("/Things?$filter=indexof(name, '-') eq 2 and concat(name, '!') eq 'LP-1!'").await.len(),
        1
    );
    assert_eq!(api.ids("/Things?$filter=trim(toupper(name)) eq 'LP-2'").await.len(), 1);
    // Both arguments with parameters: the order of the parameters follows the SQL.
    assert_eq!(api.ids("/Things?$filter=substringof('Kow', properties/district)").await.len(), 1);
    assert_eq!(api.ids("/Things?$filter=endswith(properties/district, 'loon') and not startswith(properties/district, 'Cen')").await.len(), 1);
    assert_eq!(api.ids("/Things?$filter=st_within(Locations/location, geography'POLYGON((114.2 22.3, 114.3 22.3, 114.3 22.4, 114.2 22.4, 114.2 22.3))')").await.len(), 1);
    assert_eq!(api.ids("/Locations?$filter=st_within(location, geography'POLYGON((114.1 22.2, 114.2 22.2, 114.2 22.3, 114.1 22.3, 114.1 22.2))')").await.len(), 1);
    assert_eq!(api.ids("/Locations?$filter=geo.intersects(location, geography'POLYGON((114 22, 115 22, 115 23, 114 23, 114 22))')").await.len(), 2);
    assert_eq!(
        api.ids(
            "/FeaturesOfInterest?$filter=geo.distance(feature, geography'POINT(114.158 22.282)') lt 0.01"
        )
        .await
        .len(),
        1
    );
    assert_eq!(api.ids("/Things?$filter=Locations/location/type eq 'Point'").await.len(), 2);
    assert_eq!(api.ids("/Datastreams?$filter=unitOfMeasurement/symbol eq 'veh'").await.len(), 2);

    // Expand, select, order, top and next link, count.
    let latest = api.get("/Datastreams?$filter=Thing/name eq 'LP-1'&$orderby=id&$expand=Observations($top=1;$orderby=phenomenonTime desc),Thing($select=name)").await;
    let first = &latest["value"][0];
    assert_eq!(first["Observations"].as_array().unwrap().len(), 1);
    assert_eq!(first["Observations"][0]["result"], 55);
    assert_eq!(first["Observations"][0]["phenomenonTime"], "2024-03-02T08:00:00Z");
    assert_eq!(first["Thing"], json!({"name": "LP-1"}));
    let nested = api.get(&format!("/Things({t1})?$expand=Datastreams($filter=name eq 'LP-1 PM2.5';$expand=Observations($count=true;$top=2;$orderby=result))&$select=name,id")).await;
    assert_eq!(nested["name"], "LP-1");
    assert!(nested.get("description").is_none());
    let inner = &nested["Datastreams"];
    assert_eq!(inner.as_array().unwrap().len(), 1);
    assert_eq!(inner[0]["Observations@iot.count"], 4);
    assert_eq!(inner[0]["Observations"][0]["result"], 12.25);
    let page = api.get(&format!("{obs}?$top=2&$count=true&$orderby=phenomenonTime desc")).await;
    assert_eq!(page["@iot.count"], 4);
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    let next = page["@iot.nextLink"].as_str().unwrap();
    assert!(next.contains("$skip=2") && next.contains("$top=2"), "{next}");
    let rest = api.get(next.strip_prefix("http://example.org/sta/v1.1").unwrap()).await;
    assert_eq!(rest["value"].as_array().unwrap().len(), 2);
    assert!(rest.get("@iot.nextLink").is_none());
    assert_eq!(rest["value"][1]["phenomenonTime"], "2024-03-01T08:00:00Z");
    let ds = api.get(&format!("/Datastreams({pm})")).await;
    assert_eq!(ds["phenomenonTime"], "2024-03-01T08:00:00Z/2024-03-02T08:00:00Z");
    assert_eq!(ds["observedArea"]["type"], "Point");
    assert_eq!(
        ds["Thing@iot.navigationLink"],
        format!("http://example.org/sta/v1.1/Datastreams({pm})/Thing")
    );

    // Navigation, $ref, $value.
    assert_eq!(api.get(&format!("/Observations({o1})/Datastream/Thing")).await["@iot.id"], t1);
    let refs = api.get(&format!("/Things({t1})/Datastreams/$ref")).await;
    assert_eq!(refs["value"].as_array().unwrap().len(), 2);
    assert!(refs["value"][0]["@iot.selfLink"].as_str().unwrap().contains("/Datastreams("));
    assert_eq!(api.get(&format!("/Things({t1})/name")).await, json!({"name": "LP-1"}));
    let (status, raw, _) = api.call("GET", &format!("/Things({t1})/name/$value"), None).await;
    assert_eq!((status, raw), (StatusCode::OK, json!("LP-1")));

    // Update: merge, JSON Patch, and a result that no longer fits is refused.
    let (status, v, _) =
        api.call("PATCH", &format!("/Things({t1})"), Some(json!({"description": "moved"}))).await;
    assert_eq!((status, v["description"].clone()), (StatusCode::OK, json!("moved")));
    api.fails(
        "PATCH",
        &format!("/Observations({o1})"),
        Some(json!({"result": "high"})),
        StatusCode::BAD_REQUEST,
        "not a number",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("/Things({t1})"),
        Some(json!({"name": null})),
        StatusCode::BAD_REQUEST,
        "cannot be removed",
    )
    .await;
    let req = Request::builder()
        .method("PATCH")
        .uri(format!("/sta/v1.1/Things({t1})"))
        .header("content-type", "application/json-patch+json")
        .body(Body::from(
            json!([{"op": "replace", "path": "/properties/district", "value": "Wan Chai"}]).to_string(),
        ))
        .unwrap();
    assert_eq!(api.app.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
    assert_eq!(api.get(&format!("/Things({t1})")).await["properties"]["district"], "Wan Chai");

    // Links: add a Location by reference, then remove it.
    let l2 = api.ids("/Locations?$filter=name eq 'LP-2 site'").await[0];
    let (status, _, _) =
        api.call("POST", &format!("/Things({t1})/Locations/$ref"), Some(json!({"@iot.id": l2}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.ids(&format!("/Things({t1})/Locations")).await.len(), 2);
    let (status, _, _) = api.call("DELETE", &format!("/Things({t1})/Locations({l2})/$ref"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.ids(&format!("/Things({t1})/Locations")).await.len(), 1);

    // Errors.
    api.fails(
        "GET",
        "/Things?$filter=name eq",
        None,
        StatusCode::BAD_REQUEST,
        "$filter: the expression ends too early",
    )
    .await;
    api.fails(
        "GET",
        "/Things?$filter=colour eq 'red'",
        None,
        StatusCode::BAD_REQUEST,
        "Thing has no property \"colour\"",
    )
    .await;
    api.fails("GET", "/Things?$orderby=name sideways", None, StatusCode::BAD_REQUEST, "unexpected").await;
    api.fails(
        "GET",
        "/Things?$expand=Sensors",
        None,
        StatusCode::BAD_REQUEST,
        "no navigation property \"Sensors\"",
    )
    .await;
    api.fails("GET", "/Gadgets", None, StatusCode::NOT_FOUND, "no entity set").await;
    api.fails("GET", "/Things(999)", None, StatusCode::NOT_FOUND, "Things(999) not found").await;
    api.fails("GET", "/Things(x)", None, StatusCode::BAD_REQUEST, "ids are integers").await;
    api.fails("GET", "/Things/Datastreams", None, StatusCode::BAD_REQUEST, "name one entity").await;
    api.fails(
        "POST",
        "/Things",
        Some(json!({"name": "no description"})),
        StatusCode::BAD_REQUEST,
        "needs its description",
    )
    .await;
    api.fails("POST", "/Datastreams", Some(json!({"name": "d", "description": "d", "observationType": "OM_Measurement", "unitOfMeasurement": {}})), StatusCode::BAD_REQUEST, "needs its Thing").await;
    api.fails(
        "POST",
        "/Things",
        Some(json!({"name": "x", "description": "y", "Datastreams": [{"@iot.id": "one"}]})),
        StatusCode::BAD_REQUEST,
        "integer",
    )
    .await;

    // Delete cascades: the Thing's Datastreams and their Observations go.
    let (status, _, _) = api.call("DELETE", &format!("/Things({t1})"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.get("/Observations?$count=true").await["@iot.count"], 0);
    assert_eq!(api.ids("/Datastreams").await.len(), 2);
    api.fails("DELETE", &format!("/Things({t1})"), None, StatusCode::NOT_FOUND, "not found").await;
}

/// The JSON written straight into bytes is the JSON the `serde_json::Value` of each property gives:
/// every kind of value, text that needs escaping (in values and in the base URL), non-finite
/// numbers, and `$select`.
#[test]
fn written_json_is_the_json_of_the_values() {
    use citydata_store::sensors::{Entity, EntitySet, SVal};
    let e = Entity {
        set: EntitySet::Observation,
        id: 42,
        props: vec![
            ("phenomenonTime", SVal::Interval(0, 1_500_000)),
            ("resultTime", SVal::Time(-1)),
            ("result", SVal::Num(f64::NAN)),
            ("validTime", SVal::Null),
            ("parameters", SVal::Json(json!({"a\"b": ["\u{1}", 1.5e300, null, "香港"]}))),
        ],
    };
    for (base, select) in [
        ("http://h/sta/v1.1", None),
        ("http://h\"x\\y/sta/v1.1", None),
        ("http://h", Some(vec!["id".to_owned(), "result".to_owned(), "Datastream".to_owned()])),
    ] {
        let mut buf = Vec::new();
        super::open_entity(&mut buf, &super::Links::new(base), &e, select.as_deref());
        buf.push(b'}');
        let text = String::from_utf8(buf).unwrap();
        let written: Value = serde_json::from_str(&text).unwrap();
        let wants = |n: &str| select.as_ref().is_none_or(|s| s.iter().any(|x| x == n));
        let link = format!("{base}/Observations(42)");
        let mut want = serde_json::Map::new();
        want.insert("@iot.id".into(), json!(42));
        if select.is_none() {
            want.insert("@iot.selfLink".into(), json!(link));
        }
        for (k, v) in &e.props {
            if wants(k) && (*v != SVal::Null || *k == "result") {
                want.insert((*k).into(), super::value_json(v));
            }
        }
        for nav in ["Datastream", "FeatureOfInterest"] {
            if wants(nav) {
                want.insert(format!("{nav}@iot.navigationLink"), json!(format!("{link}/{nav}")));
            }
        }
        let want = Value::Object(want);
        assert_eq!(written, want, "{base} {select:?}");
        // Byte for byte, key order included.
        assert_eq!(text, serde_json::to_string(&want).unwrap());
    }
    let mut buf = Vec::new();
    super::open_entity(&mut buf, &super::Links::new("b"), &e, Some(&["result".to_owned()]));
    assert_eq!(String::from_utf8(buf).unwrap(), r#"{"result":null"#);
    // Integers of every size.
    for n in [0, 7, -7, 10, i64::MAX, i64::MIN] {
        let mut buf = Vec::new();
        super::put_int(&mut buf, n);
        assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
    }
}
