//! A server killed with SIGKILL while observations stream in loses none it acknowledged: clients
//! post over HTTP (single observations and `CreateObservations` batches) and record every
//! observation answered 201; after each kill the server restarts on the same file and every
//! recorded observation must be there, with its result. `RUN_SLOW_TESTS=1` kills more often.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::Server;

pub fn slow() -> bool {
    std::env::var_os("RUN_SLOW_TESTS").is_some_and(|v| v != "0")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub fn post(url: &str, body: &Value) -> Option<(u16, Value)> {
    let mut resp =
        agent().post(url).header("content-type", "application/json").send(body.to_string()).ok()?;
    let status = resp.status().as_u16();
    let v = resp.body_mut().read_json::<Value>().ok()?;
    Some((status, v))
}

pub fn time(second: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + second).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Every observation of the datastream: phenomenon time -> result.
pub fn stored(server: &Server, ds: i64) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut skip = 0;
    loop {
        let page = server.json(&format!(
            "/sta/v1.1/Datastreams({ds})/Observations?$top=10000&$skip={skip}&$orderby=id&$select=phenomenonTime,result"
        ));
        let items = page["value"].as_array().unwrap();
        for o in items {
            out.insert(o["phenomenonTime"].as_str().unwrap().to_owned(), o["result"].as_i64().unwrap());
        }
        if page.get("@iot.nextLink").is_none() {
            return out;
        }
        skip += items.len();
    }
}

/// Creates a Thing with one datastream of counts; returns the datastream's id.
pub fn count_datastream(server: &Server) -> i64 {
    let thing = json!({
        "name": "LP-1", "description": "lamppost",
        "Datastreams": [{"name": "count", "description": "d", "observationType": "OM_CountObservation",
            "unitOfMeasurement": {"name": "n", "symbol": "n", "definition": "n"},
            "Sensor": {"name": "s", "description": "s", "encodingType": "application/pdf", "metadata": "m"},
            "ObservedProperty": {"name": "p", "definition": "p", "description": "p"}}]
    });
    let (status, _) = post(&format!("{}/sta/v1.1/Things", server.url), &thing).unwrap();
    assert_eq!(status, 201);
    server.json("/sta/v1.1/Datastreams")["value"][0]["@iot.id"].as_i64().unwrap()
}

#[test]
fn killing_the_server_during_ingest_loses_no_acknowledged_observation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let ds = count_datastream(&server);
    drop(server);

    let acked: Arc<Mutex<BTreeMap<String, i64>>> = Arc::default();
    let next = Arc::new(AtomicI64::new(0));
    let kills = if slow() { 30 } else { 8 };
    let mut seed: u64 = 0x5eed_5e75;
    for round in 0..kills {
        let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
        // Everything acknowledged so far is there, with its result.
        let have = stored(&server, ds);
        for (t, r) in acked.lock().unwrap().iter() {
            assert_eq!(have.get(t), Some(r), "round {round}: acknowledged observation at {t} lost");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..4 {
            let (url, acked, next, stop) =
                (server.url.clone(), Arc::clone(&acked), Arc::clone(&next), Arc::clone(&stop));
            clients.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if c % 2 == 0 {
                        let s = next.fetch_add(1, Ordering::Relaxed);
                        let body = json!({"phenomenonTime": time(s), "result": s, "Datastream": {"@iot.id": ds}});
                        match post(&format!("{url}/sta/v1.1/Observations"), &body) {
                            Some((201, _)) => {
                                acked.lock().unwrap().insert(time(s), s);
                            }
                            Some((status, v)) => panic!("POST answered {status}: {v}"),
                            None => return, // the server is gone
                        }
                    } else {
                        let first = next.fetch_add(50, Ordering::Relaxed);
                        let rows: Vec<Value> = (first..first + 50).map(|s| json!([time(s), s])).collect();
                        let body = json!([{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"], "dataArray": rows}]);
                        match post(&format!("{url}/sta/v1.1/CreateObservations"), &body) {
                            Some((201, links)) => {
                                assert_eq!(links.as_array().unwrap().len(), 50);
                                let mut a = acked.lock().unwrap();
                                for s in first..first + 50 {
                                    a.insert(time(s), s);
                                }
                            }
                            Some((status, v)) => panic!("CreateObservations answered {status}: {v}"),
                            None => return,
                        }
                    }
                }
            }));
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(150 + (seed >> 33) % 400));
        drop(server); // SIGKILL, then wait
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
    }
    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let have = stored(&server, ds);
    let acked = acked.lock().unwrap();
    eprintln!("{} observations acknowledged over {kills} kills", acked.len());
    assert!(acked.len() > 100, "only {} observations acknowledged in all", acked.len());
    for (t, r) in acked.iter() {
        assert_eq!(have.get(t), Some(r), "acknowledged observation at {t} lost");
    }
    // Nothing is there twice, and the kept count agrees with the rows.
    let count = server.json(&format!("/sta/v1.1/Datastreams({ds})/Observations?$count=true&$top=0"))
        ["@iot.count"]
        .as_u64()
        .unwrap();
    assert_eq!(count as usize, have.len());
    let check = crate::common::ok(d, &["check", "--db", "t.db"]);
    assert!(check.contains("ok"), "{check}");
}
