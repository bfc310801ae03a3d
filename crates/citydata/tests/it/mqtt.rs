//! The MQTT side of the integration tests: a real mosquitto on a free port (started by the test,
//! stopped on drop) and a device that publishes at QoS 1 and waits for each PUBACK.

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
        mo.set_keep_alive(Duration::from_secs(5));
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
