//! The MQTT side of the integration tests: a real mosquitto on a free port (started by the test,
//! stopped on drop) and a device that publishes at QoS 1 and waits for each PUBACK; and the
//! end-to-end test of `CreateObservations` batches over MQTT.

use std::path::Path;
use std::time::{Duration, Instant};

/// A mosquitto broker on a free port, with persistence, stopped on drop.
pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Broker {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Started as root, mosquitto drops to its own user, which must be able to save here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut b = Broker { port, dir, child: None };
        b.restart();
        b
    }

    /// (Re)starts mosquitto on the same port and folder. Its queue for an absent persistent session
    /// is unbounded (`max_queued_messages 0`): a full queue would drop readings it already
    /// acknowledged to their device.
    pub fn restart(&mut self) {
        self.stop();
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
                 autosave_interval 1\nmax_inflight_messages 1000\nmax_queued_messages 0\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = std::process::Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (.ci/run installs it)");
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A device publishing at QoS 1, one message at a time, waiting for the broker's PUBACK.
pub struct Device {
    client: rumqttc::Client,
    acks: std::sync::mpsc::Receiver<u16>,
}

impl Device {
    pub fn connect(port: u16, client_id: &str) -> Device {
        let mut mo = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        mo.set_keep_alive(Duration::from_secs(5)).set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = rumqttc::Client::new(mo, 100);
        let (tx, acks) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(a))) => {
                        if tx.send(a.pkid).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Device { client, acks }
    }

    /// Publishes at QoS 1 until the broker acknowledges (true) or `patience` runs out (false).
    pub fn publish_acked(&mut self, topic: &str, payload: &str, patience: Duration) -> bool {
        while self.acks.try_recv().is_ok() {}
        let until = Instant::now() + patience;
        while Instant::now() < until {
            if self.client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_owned()).is_err() {
                return false;
            }
            if self.acks.recv_timeout(Duration::from_millis(500)).is_ok() {
                return true;
            }
        }
        false
    }
}

/// `citydata serve --mqtt`: a gateway's `CreateObservations` batch on `v1.1/CreateObservations`
/// (QoS 1, acknowledged by the broker) is stored exactly once, even when sent twice, and every
/// reading of it is announced on its datastream's topic; a malformed batch and one naming an
/// unknown datastream store nothing of themselves and are counted.
#[test]
fn create_observations_over_mqtt_end_to_end() {
    use serde_json::{json, Value};
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let server = crate::common::Server::start(dir.path(), &["--no-demo", "--no-simulate", "--mqtt", &url]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let thing = json!({"name": "gateway", "description": "d", "Datastreams": [{
        "name": "pm", "description": "d",
        "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        "unitOfMeasurement": {"name": "u", "symbol": "u", "definition": "u"},
        "Sensor": {"name": "s", "description": "s", "encodingType": "text/html", "metadata": "m"},
        "ObservedProperty": {"name": "p", "definition": "p", "description": "p"}}]});
    let resp = agent.post(&format!("{}/sta/v1.1/Things", server.url)).send_json(&thing).unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let ds = server.json("/sta/v1.1/Datastreams?$select=id")["value"][0]["@iot.id"].as_i64().unwrap();
    let stats = || server.json("/api/v1/live/stats")["mqtt"][0].clone();
    let wait = |what: &str, cond: &dyn Fn(&Value) -> bool| {
        let t = Instant::now();
        loop {
            let m = stats();
            if cond(&m) {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {m}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("the bridge to connect", &|m| m["connected"] == true);

    // A watcher of the announcements.
    let mut mo = rumqttc::MqttOptions::new("watcher-e2e", "127.0.0.1", broker.port);
    mo.set_keep_alive(Duration::from_secs(5));
    let (watcher, mut conn) = rumqttc::Client::new(mo, 100);
    watcher.subscribe(format!("v1.1/Datastreams({ds})/Observations"), rumqttc::QoS::AtMostOnce).unwrap();
    let ids = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::<i64>::new()));
    let seen = ids.clone();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = ev {
                let v: Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                if let Some(id) = v["@iot.id"].as_i64() {
                    seen.lock().unwrap().insert(id);
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));

    let n = 1000_usize;
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            json!([format!("2026-10-05T{:02}:{:02}:{:02}Z", i / 3600, i / 60 % 60, i % 60), i as f64 / 2.0])
        })
        .collect();
    let batch = |ds: i64, rows: &[Value]| {
        json!([{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"], "dataArray": rows}])
            .to_string()
    };
    let body = batch(ds, &rows);
    let mut dev = Device::connect(broker.port, "gateway-e2e");
    let patience = Duration::from_secs(15);
    assert!(dev.publish_acked("v1.1/CreateObservations", &body, patience));
    wait("the batch", &|m| m["stored"] == n);
    let count = || server.json("/sta/v1.1/Observations?$count=true&$top=0")["@iot.count"].as_u64().unwrap();
    assert_eq!(count(), n as u64);
    // Sent again: all duplicates.
    assert!(dev.publish_acked("v1.1/CreateObservations", &body, patience));
    wait("the retry", &|m| m["duplicates"] == n);
    assert_eq!(count(), n as u64);

    // A bad time in the last row; a datastream that does not exist beside good rows.
    let mut bad = rows[..10].to_vec();
    bad.push(json!(["10 Oct 2026", 1]));
    let mut later: Vec<Value> = rows[..10].to_vec();
    for r in &mut later {
        r[0] = json!(r[0].as_str().unwrap().replace("2026-10-05", "2026-10-06"));
    }
    let unknown = format!(
        "[{},{}]",
        batch(ds, &later).trim_matches(['[', ']']),
        batch(ds + 100, &rows[..5]).trim_matches(['[', ']'])
    );
    assert!(dev.publish_acked("v1.1/CreateObservations", &batch(ds, &bad), patience));
    assert!(dev.publish_acked("v1.1/CreateObservations", &unknown, patience));
    wait("the refusals", &|m| m["malformed"] == 1 && m["rejected"] == 15);
    assert_eq!(count(), n as u64, "nothing of a refused batch stored");
    let t = Instant::now();
    while ids.lock().unwrap().len() < n {
        assert!(t.elapsed() < Duration::from_secs(30), "{} of {n} announced", ids.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ids.lock().unwrap().len(), n);
    assert_eq!(stats()["batches"], 3, "the malformed one is not a batch");
}
