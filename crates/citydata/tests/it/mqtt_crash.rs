//! A server killed with SIGKILL while devices publish over MQTT loses no reading the broker
//! acknowledged and stores none twice: devices publish at QoS 1 through a real mosquitto (started
//! here on a free port) and record every reading PUBACKed; the server, taking them with a persistent
//! session and acking each only after its commit, is killed and restarted on the same file again
//! and again. The broker keeps what the server had not acked and delivers it again on the next
//! connection; at the end every acknowledged reading must be stored once, with its result.
//! `RUN_SLOW_TESTS=1` kills more often.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Server;
use crate::mqtt::{Broker, Device};
use crate::sensors_crash::{count_datastream, slow, stored, time};

fn count(server: &Server, ds: i64) -> u64 {
    server.json(&format!("/sta/v1.1/Datastreams({ds})/Observations?$count=true&$top=0"))["@iot.count"]
        .as_u64()
        .unwrap()
}

#[test]
fn killing_the_server_during_mqtt_ingest_loses_no_acknowledged_reading() {
    let broker = Broker::start();
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["--db", "t.db", "--no-demo", "--mqtt", mqtt.as_str()];
    let server = Server::start(d, &args);
    let ds = count_datastream(&server);
    drop(server);

    // Devices publish all along, whether the server is up or not: the broker takes their readings.
    let acked: Arc<Mutex<BTreeMap<String, i64>>> = Arc::default();
    let next = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let topic = format!("v1.1/Datastreams({ds})/Observations");
    let devices: Vec<_> = (0..3)
        .map(|n| {
            let (acked, next, stop, topic) =
                (Arc::clone(&acked), Arc::clone(&next), Arc::clone(&stop), topic.clone());
            let port = broker.port;
            std::thread::spawn(move || {
                let mut dev = Device::connect(port, &format!("crash-device-{n}"));
                while !stop.load(Ordering::Relaxed) {
                    let s = next.fetch_add(1, Ordering::Relaxed);
                    let payload = json!({"phenomenonTime": time(s), "result": s}).to_string();
                    if dev.publish_acked(&topic, &payload, Duration::from_secs(5)) {
                        acked.lock().unwrap().insert(time(s), s);
                    }
                    // A steady stream, not a flood: the backlog the broker keeps while the
                    // server is down stays a few seconds' worth for the debug build to catch up.
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();

    let kills = if slow() { 25 } else { 6 };
    let mut seed: u64 = 0x6d71_7474;
    let mut stored_before = 0;
    for round in 0..kills {
        let server = Server::start(d, &args);
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 500));
        // Check on the way that the server does take readings between kills (a count: reading them
        // all each round would cost more than the round).
        let n = count(&server, ds);
        assert!(n >= stored_before, "round {round}: {n} stored after {stored_before}");
        stored_before = n;
        drop(server); // SIGKILL, then wait
    }
    stop.store(true, Ordering::Relaxed);
    for dev in devices {
        dev.join().unwrap();
    }
    let acked = acked.lock().unwrap();
    eprintln!("{} readings acknowledged by the broker over {kills} kills", acked.len());
    assert!(acked.len() > 100, "only {} readings acknowledged in all", acked.len());

    // The last start takes what the broker still holds; then every acknowledged reading is there.
    let server = Server::start(d, &args);
    let t = Instant::now();
    let have = loop {
        let have = stored(&server, ds);
        if acked.keys().all(|k| have.contains_key(k)) {
            break have;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} of {} acknowledged readings stored; the first missing: {:?}",
            acked.keys().filter(|k| have.contains_key(*k)).count(),
            acked.len(),
            acked.keys().find(|k| !have.contains_key(*k))
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for (t, r) in acked.iter() {
        assert_eq!(have.get(t), Some(r), "acknowledged reading at {t} stored with another result");
    }
    // Stored once: the kept count is the number of distinct readings, and a reading delivered
    // again after a kill (committed, its PUBACK lost) was a duplicate, not a second row.
    assert_eq!(count(&server, ds) as usize, have.len());
    let stats = server.json("/api/v1/live/stats");
    eprintln!("after the last start: {}", stats["mqtt"]);
    drop(server);
    let check = crate::common::ok(d, &["check", "--db", "t.db"]);
    assert!(check.contains("ok"), "{check}");
}
