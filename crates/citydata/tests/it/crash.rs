//! A publish killed with SIGKILL at any moment leaves the previous version serving, unchanged, and no
//! partial dataset anywhere. `RUN_SLOW_TESTS=1` runs more kills on a bigger file.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::common::{bin, ok, Server};

fn slow() -> bool {
    std::env::var_os("RUN_SLOW_TESTS").is_some_and(|v| v != "0")
}

fn big_csv(rows: usize) -> String {
    let mut s = String::with_capacity(rows * 48);
    s.push_str("id,district,reading,date\n");
    for i in 0..rows {
        let _ = writeln!(
            s,
            "{i},District {},{}.{},{:02}/{:02}/2024",
            i % 18,
            i % 997,
            i % 10,
            1 + i % 28,
            1 + i % 12
        );
    }
    s
}

#[test]
fn killing_a_publish_at_any_moment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = "id,district,reading,date\n1,Wan Chai,3.5,01/01/2024\n2,Eastern,4.5,02/01/2024\n";
    std::fs::write(d.join("v1.csv"), small).unwrap();
    ok(d, &["publish", "v1.csv", "--dataset", "air", "--resource", "readings", "--db", "t.db"]);
    let rows = if slow() { 600_000 } else { 150_000 };
    std::fs::write(d.join("v2.csv"), big_csv(rows)).unwrap();

    // How long a whole publish takes here, to spread the kills over it.
    let t = Instant::now();
    ok(d, &["publish", "v2.csv", "--dataset", "air", "--resource", "readings", "--db", "timing.db"]);
    let full = t.elapsed();

    let kills = if slow() { 40 } else { 12 };
    let mut seed: u64 = 0x5eed;
    let mut completed = 0;
    for i in 0..kills {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        // Kill anywhere from the start to a little past the expected end.
        let at = full.mul_f64(f64::from(u32::try_from(seed >> 40).unwrap() % 1100) / 1000.0);
        let mut child = Command::new(bin())
            .args(["publish", "v2.csv", "--dataset", "air", "--resource", "readings", "--db", "t.db"])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let out = ok(d, &["check", "--db", "t.db"]);
        assert!(out.contains("ok"), "kill {i} at {at:?}: {out}");
        let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
        let ds = server.json("/api/v1/datasets/air");
        let res = &ds["resources"][0];
        let versions = res["versions"].as_array().unwrap().len();
        if status.success() {
            completed += 1;
        }
        match versions {
            1 => {
                assert_eq!(res["row_count"], 2, "kill {i}: version 1 serving");
                let page = server.json("/api/v1/datasets/air/resources/readings/rows");
                assert_eq!(page["records"][1]["district"], "Eastern");
                let (_, bytes) = server.get(res["versions"][0]["download_url"].as_str().unwrap());
                assert_eq!(bytes, small.as_bytes());
            }
            2 => {
                // The kill came after the commit: version 2 is whole. Start again from version 1.
                assert_eq!(res["row_count"], rows, "kill {i}: version 2 whole");
                drop(server);
                std::fs::remove_file(d.join("t.db")).unwrap();
                let _ = std::fs::remove_file(d.join("t.db-wal"));
                let _ = std::fs::remove_file(d.join("t.db-shm"));
                ok(d, &["publish", "v1.csv", "--dataset", "air", "--resource", "readings", "--db", "t.db"]);
            }
            n => panic!("kill {i}: {n} versions"),
        }
    }
    assert!(completed < kills, "at least some kills must land during the publish");
    // After all that, the publish still goes through.
    let out = ok(d, &["publish", "v2.csv", "--dataset", "air", "--resource", "readings", "--db", "t.db"]);
    assert!(out.contains(&format!("{rows} rows")), "{out}");
    assert!(ok(d, &["check", "--db", "t.db"]).contains("ok"));
}
