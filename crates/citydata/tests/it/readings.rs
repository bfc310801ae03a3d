//! The daily open data of the sensors: observations posted over the SensorThings API for two past
//! Hong Kong days are published by `citydata publish-readings` as versions of one dataset per
//! sensor network, downloadable and in the catalogue; the same day twice makes no new version; a
//! day without readings publishes nothing; and `serve` publishes the finished days by itself.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{ok, Server};

fn post(url: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp =
        agent.post(url).header("content-type", "application/json").send(body.to_string()).expect("POST");
    let status = resp.status().as_u16();
    let v = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, v)
}

/// Creates a Thing (with `properties`, at 114.17 E 22.30 N) and one Datastream; returns the
/// Datastream's id.
fn datastream(server: &Server, thing: &str, properties: Value, property: &str) -> i64 {
    let body = json!({
        "name": thing, "description": "a test lamppost", "properties": properties,
        "Locations": [{"name": "here", "description": "here", "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [114.17, 22.30]}}],
        "Datastreams": [{"name": format!("{property} at {thing}"), "description": "d",
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": "microgram per cubic metre", "symbol": "µg/m³", "definition": "u"},
            "Sensor": {"name": format!("sensor of {thing}"), "description": "s", "encodingType": "text/html", "metadata": "m"},
            "ObservedProperty": {"name": property, "definition": "p", "description": "p"}}]
    });
    let (status, v) = post(&format!("{}/sta/v1.1/Things", server.url), &body);
    assert_eq!(status, 201, "{v}");
    let page = server.json(&format!("/sta/v1.1/Datastreams?$filter=Thing/name%20eq%20'{thing}'"));
    page["value"][0]["@iot.id"].as_i64().unwrap()
}

fn observe(server: &Server, ds: i64, time: &str, result: f64) {
    let (status, v) = post(
        &format!("{}/sta/v1.1/Datastreams({ds})/Observations", server.url),
        &json!({"phenomenonTime": time, "result": result}),
    );
    assert_eq!(status, 201, "{time}: {v}");
}

/// The readings resource of a dataset, from the native API.
fn resource(server: &Server, slug: &str) -> Value {
    let d = server.json(&format!("/api/v1/datasets/{slug}"));
    d["resources"].as_array().unwrap().iter().find(|r| r["name"] == "readings").unwrap().clone()
}

fn download(server: &Server, url: &str) -> String {
    let (status, body) = server.get(url);
    assert_eq!(status, 200, "GET {url}");
    String::from_utf8(body).unwrap()
}

#[test]
fn each_day_is_a_new_version_of_the_network_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let pm = datastream(&server, "LP-A", json!({"network": "test-lampposts"}), "PM2.5");
    let other = datastream(&server, "Box-B", json!({"colour": "grey"}), "NO2");
    // Days far enough back that the server's own catch-up (the last week) leaves them alone.
    // Hong Kong is UTC+8: 2026-01-10 runs from 2026-01-09T16:00Z to 2026-01-10T16:00Z.
    observe(&server, pm, "2026-01-09T15:59:59Z", 99.0); // 2026-01-09 in Hong Kong
    observe(&server, pm, "2026-01-09T16:00:00Z", 10.5); // 2026-01-10 00:00 in Hong Kong
    observe(&server, pm, "2026-01-10T12:00:00+08:00", 12.0);
    observe(&server, pm, "2026-01-10T23:59:59+08:00", 14.25);
    observe(&server, pm, "2026-01-10T16:00:00Z", 20.0); // 2026-01-11 00:00 in Hong Kong
    observe(&server, pm, "2026-01-11T09:30:00+08:00", 21.0);
    observe(&server, other, "2026-01-10T08:00:00+08:00", 40.0);

    let db = d.join("t.db");
    let db = db.to_str().unwrap();
    let said = ok(d, &["publish-readings", "--db", db, "--day", "2026-01-10"]);
    assert!(said.contains("test-lampposts-readings/readings: version 1: 3 readings of 2026-01-10"), "{said}");
    assert!(said.contains("sensors-readings/readings: version 1: 1 readings of 2026-01-10"), "{said}");

    let r = resource(&server, "test-lampposts-readings");
    assert_eq!(r["current_version"], 1);
    assert_eq!(r["row_count"], 3);
    let csv = download(&server, r["versions"][0]["download_url"].as_str().unwrap());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "thing,datastream_id,datastream,observed_property,unit,phenomenon_time,result,latitude,longitude"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(
        lines[1],
        format!("LP-A,{pm},PM2.5 at LP-A,PM2.5,µg/m³,2026-01-10T00:00:00+08:00,10.5,22.3,114.17")
    );
    assert!(lines[2].contains("2026-01-10T12:00:00+08:00,12,"), "{csv}");
    assert!(lines[3].contains("2026-01-10T23:59:59+08:00,14.25,"), "{csv}");
    // The rows are queryable like any dataset's.
    let rows = server.json("/api/v1/datasets/test-lampposts-readings/resources/readings/rows");
    let records = rows["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{rows}");
    assert_eq!(records[2]["result"], 14.25, "{rows}");
    assert_eq!(records[0]["thing"], "LP-A", "{rows}");

    // The dataset is in the catalogue, with its metadata.
    let meta = server.json("/api/v1/datasets/test-lampposts-readings");
    assert_eq!(meta["frequency"], "daily");
    assert_eq!(meta["theme"], "Smart City");
    assert!(
        meta["description"]["en"].as_str().unwrap().contains("holds the readings of 2026-01-10"),
        "{meta}"
    );
    assert!(meta["description"]["zh-Hant"].as_str().unwrap().contains("2026-01-10"), "{meta}");
    assert!(meta["title"]["zh-Hant"].as_str().is_some_and(|t| !t.is_empty()), "{meta}");
    let found = server.json("/api/v1/datasets?q=readings");
    assert!(found.to_string().contains("test-lampposts-readings"), "{found}");

    // The same day again: nothing new.
    let said = ok(d, &["publish-readings", "--db", db, "--day", "2026-01-10"]);
    assert!(said.contains("test-lampposts-readings/readings: unchanged (version 1"), "{said}");
    assert_eq!(resource(&server, "test-lampposts-readings")["versions"].as_array().unwrap().len(), 1);

    // The next day: version 2, and version 1 still downloadable with its day.
    let said = ok(d, &["publish-readings", "--db", db, "--day", "2026-01-11"]);
    assert!(said.contains("test-lampposts-readings/readings: version 2: 2 readings of 2026-01-11"), "{said}");
    assert!(!said.contains("sensors-readings"), "Box-B has no readings on 2026-01-11: {said}");
    let r = resource(&server, "test-lampposts-readings");
    assert_eq!(r["current_version"], 2);
    let versions = r["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["filename"], "test-lampposts-readings-2026-01-10.csv");
    assert_eq!(versions[1]["filename"], "test-lampposts-readings-2026-01-11.csv");
    let v1 = download(&server, versions[0]["download_url"].as_str().unwrap());
    let v2 = download(&server, versions[1]["download_url"].as_str().unwrap());
    assert_eq!(v1, csv);
    assert_eq!(v2.lines().count(), 3, "{v2}");
    assert!(
        v2.contains("2026-01-11T00:00:00+08:00,20,") && v2.contains("2026-01-11T09:30:00+08:00,21,"),
        "{v2}"
    );
    assert!(!v2.contains("2026-01-10T"), "{v2}");

    // An earlier day again is no new version either, and the description keeps naming the newest.
    let said = ok(d, &["publish-readings", "--db", db, "--day", "2026-01-10"]);
    assert!(said.contains("test-lampposts-readings/readings: unchanged (version 1"), "{said}");
    let meta = server.json("/api/v1/datasets/test-lampposts-readings");
    assert!(
        meta["description"]["en"].as_str().unwrap().contains("holds the readings of 2026-01-11"),
        "{meta}"
    );
    assert_eq!(resource(&server, "test-lampposts-readings")["current_version"], 2);

    // A day without readings publishes nothing, and says so.
    let said = ok(d, &["publish-readings", "--db", db, "--day", "2026-01-05"]);
    assert!(said.contains("no readings on 2026-01-05"), "{said}");
    assert_eq!(resource(&server, "test-lampposts-readings")["current_version"], 2);

    let bad = crate::common::fails(d, &["publish-readings", "--db", db, "--day", "2026-13-01"]);
    assert!(bad.contains("not a date"), "{bad}");
    // A day that has not ended would publish part of it.
    let tomorrow = time::OffsetDateTime::now_utc().date() + time::Duration::days(1);
    let bad = crate::common::fails(d, &["publish-readings", "--db", db, "--day", &tomorrow.to_string()]);
    assert!(bad.contains("has not ended yet"), "{bad}");
}

#[test]
fn serve_publishes_the_finished_days_it_finds_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hk = time::UtcOffset::from_hms(8, 0, 0).unwrap();
    let today = time::OffsetDateTime::now_utc().to_offset(hk).date();
    let two_days_ago = today - time::Duration::days(2);
    let noon = two_days_ago.with_hms(12, 0, 0).unwrap().assume_offset(hk);
    let stamp = noon.format(&time::format_description::well_known::Rfc3339).unwrap();
    {
        let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
        let ds = datastream(&server, "LP-C", json!({"network": "start-net"}), "NO2");
        observe(&server, ds, &stamp, 33.0);
    }
    // A new server finds the finished day with readings and no version, and publishes it.
    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let (status, body) = server.get("/api/v1/datasets/start-net-readings");
        if status == 200 {
            let v: Value = serde_json::from_slice(&body).unwrap();
            if v["resources"].as_array().is_some_and(|r| !r.is_empty()) {
                break resource(&server, "start-net-readings");
            }
        }
        assert!(Instant::now() < deadline, "the server did not publish {two_days_ago} within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r["current_version"], 1);
    assert_eq!(r["versions"][0]["filename"], format!("start-net-readings-{two_days_ago}.csv"));
    let csv = download(&server, r["versions"][0]["download_url"].as_str().unwrap());
    assert!(csv.contains(&format!("{two_days_ago}T12:00:00+08:00,33,")), "{csv}");
}
