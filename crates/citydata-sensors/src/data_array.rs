//! The SensorThings dataArray extension (`CreateObservations`): one parser for every path that
//! takes it (the HTTP route `/sta/v1.1/CreateObservations` and the MQTT topic
//! `v1.1/CreateObservations`), so both accept and refuse exactly the same bodies.
//!
//! A body is a JSON array of `{"Datastream": {"@iot.id": N}, "components": [...], "dataArray":
//! [[...], ...]}`; the components are `phenomenonTime`, `result` (required), `resultTime`,
//! `FeatureOfInterest/id` and `parameters`. The whole body is one batch: any malformed item, row or
//! time refuses all of it ([`IngestError::Invalid`], naming the item and row), and more than
//! [`MAX_BATCH`] readings is [`IngestError::TooLarge`]. Checks that need the store (the datastream
//! exists, the result fits its observation type) are the ingest's, on the same batch.
//!
//! Bounds: callers limit the body's size ([`MAX_BODY`]); the parser holds the parsed JSON and at
//! most [`MAX_BATCH`] readings.

use citydata_store::sensors::{parse_time, parse_time_or_interval};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{IngestError, NewObservation, MAX_BATCH};

/// The largest `CreateObservations` body taken, in bytes (over HTTP and over MQTT).
pub const MAX_BODY: usize = 64 << 20;

fn time_of(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Parses a `CreateObservations` body into one batch, in the body's order. A row without
/// `phenomenonTime` is observed now.
///
/// # Errors
/// [`IngestError::Invalid`] when the body is not JSON or not of the dataArray shape (the message
/// names the item and row), [`IngestError::TooLarge`] beyond [`MAX_BATCH`] readings.
pub fn parse_create_observations(body: &[u8]) -> Result<Vec<NewObservation>, IngestError> {
    let bad = IngestError::Invalid;
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::Invalid(format!("the body is not JSON: {e}")))?;
    let groups = v
        .as_array()
        .ok_or_else(|| bad("the body is a JSON array of {Datastream, components, dataArray}".into()))?;
    let mut batch = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        if group.get("MultiDatastream").is_some() {
            return Err(bad(format!("item {g}: MultiDatastreams are not supported")));
        }
        let ds = group
            .get("Datastream")
            .and_then(|d| d.get("@iot.id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(format!("item {g}: Datastream is {{\"@iot.id\": N}}")))?;
        let comps: Vec<&str> = group
            .get("components")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("item {g}: components is an array of names")))?
            .iter()
            .map(|c| c.as_str().ok_or_else(|| bad(format!("item {g}: components are names"))))
            .collect::<Result<_, _>>()?;
        for c in &comps {
            if !matches!(
                *c,
                "phenomenonTime" | "result" | "resultTime" | "FeatureOfInterest/id" | "parameters"
            ) {
                return Err(bad(format!("item {g}: component {c:?} is not supported (phenomenonTime, result, resultTime, FeatureOfInterest/id, parameters)")));
            }
        }
        if !comps.contains(&"result") {
            return Err(bad(format!("item {g}: the components must include result")));
        }
        let rows = group
            .get("dataArray")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("item {g}: dataArray is an array of arrays")))?;
        if batch.len() + rows.len() > MAX_BATCH {
            return Err(IngestError::TooLarge { max: MAX_BATCH, got: batch.len() + rows.len() });
        }
        for (r, row) in rows.iter().enumerate() {
            let at = |m: String| bad(format!("item {g}, row {r}: {m}"));
            let cells = row.as_array().ok_or_else(|| at("a row is an array".into()))?;
            if cells.len() != comps.len() {
                return Err(at(format!("{} values for {} components", cells.len(), comps.len())));
            }
            let mut o = NewObservation {
                datastream: ds,
                phenomenon_time: OffsetDateTime::now_utc(),
                phenomenon_end: None,
                result: Value::Null,
                result_time: None,
                parameters: None,
                feature_of_interest: None,
            };
            for (c, cell) in comps.iter().zip(cells) {
                match (*c, cell) {
                    ("result", v) => o.result = v.clone(),
                    ("phenomenonTime", Value::String(t)) => {
                        let (a, b) = parse_time_or_interval(t).map_err(at)?;
                        o.phenomenon_time = time_of(a);
                        o.phenomenon_end = b.map(time_of);
                    }
                    ("resultTime", Value::String(t)) => {
                        o.result_time = Some(time_of(parse_time(t).map_err(at)?));
                    }
                    ("resultTime" | "parameters", Value::Null) => {}
                    ("FeatureOfInterest/id", x) => {
                        o.feature_of_interest = Some(
                            x.as_i64()
                                .ok_or_else(|| at(format!("FeatureOfInterest/id is an integer, not {x}")))?,
                        );
                    }
                    ("parameters", Value::Object(p)) => o.parameters = Some(p.clone()),
                    (c, x) => return Err(at(format!("{c} cannot be {x}"))),
                }
            }
            batch.push(o);
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<NewObservation>, IngestError> {
        parse_create_observations(v.to_string().as_bytes())
    }

    #[test]
    fn reads_every_component_in_order() {
        let b = parse(json!([
            {"Datastream": {"@iot.id": 3}, "components": ["phenomenonTime", "result", "resultTime",
              "FeatureOfInterest/id", "parameters"],
             "dataArray": [["2026-05-01T08:00:00+08:00", 1.5, "2026-05-01T00:00:05Z", 9, {"q": "ok"}],
                           ["2026-05-01T00:00:00Z/2026-05-01T01:00:00Z", "x", null, 9, null]]},
            {"Datastream": {"@iot.id": 4}, "components": ["result"], "dataArray": [[7]]}
        ]))
        .unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].datastream, b[1].datastream, b[2].datastream), (3, 3, 4));
        assert_eq!(b[0].phenomenon_time, time::macros::datetime!(2026-05-01 00:00 UTC));
        assert_eq!(b[0].result, json!(1.5));
        assert_eq!(b[0].result_time, Some(time::macros::datetime!(2026-05-01 00:00:05 UTC)));
        assert_eq!(b[0].feature_of_interest, Some(9));
        assert_eq!(b[0].parameters.as_ref().unwrap()["q"], "ok");
        assert_eq!(b[1].phenomenon_end, Some(time::macros::datetime!(2026-05-01 01:00 UTC)));
        assert_eq!((b[1].result_time, b[1].parameters.as_ref()), (None, None));
        assert_eq!(b[2].result, json!(7));
    }

    #[test]
    fn refuses_the_whole_body_saying_where() {
        let ds = |comps: Value, rows: Value| json!([{"Datastream": {"@iot.id": 1}, "components": comps, "dataArray": rows}]);
        let cases = [
            (json!({"a": 1}), "JSON array"),
            (json!([{"MultiDatastream": {"@iot.id": 1}}]), "MultiDatastreams"),
            (json!([{"Datastream": 1, "components": ["result"], "dataArray": [[1]]}]), "item 0: Datastream"),
            (ds(json!("result"), json!([[1]])), "components is an array"),
            (ds(json!(["colour", "result"]), json!([[1, 1]])), "\"colour\" is not supported"),
            (ds(json!(["phenomenonTime"]), json!([["2026-05-01T00:00:00Z"]])), "must include result"),
            (ds(json!(["result"]), json!({"a": 1})), "dataArray is an array"),
            (ds(json!(["result"]), json!([1])), "row 0: a row is an array"),
            (ds(json!(["result"]), json!([[1], [1, 2]])), "row 1: 2 values for 1 components"),
            (ds(json!(["phenomenonTime", "result"]), json!([["yesterday", 1]])), "row 0: \"yesterday\""),
            (ds(json!(["phenomenonTime", "result"]), json!([[5, 1]])), "phenomenonTime cannot be 5"),
            (ds(json!(["result", "FeatureOfInterest/id"]), json!([[1, "x"]])), "is an integer"),
        ];
        for (body, says) in cases {
            let e = parse(body.clone()).unwrap_err();
            assert!(matches!(&e, IngestError::Invalid(m) if m.contains(says)), "{body}: {e}");
        }
        let e = parse_create_observations(b"[{").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let rows: Vec<Value> = (0..=MAX_BATCH).map(|i| json!([i])).collect();
        assert_eq!(
            parse(ds(json!(["result"]), Value::Array(rows))).unwrap_err(),
            IngestError::TooLarge { max: MAX_BATCH, got: MAX_BATCH + 1 }
        );
    }
}
