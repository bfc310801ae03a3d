//! `citydata serve`: the demo on a new database, the URL printed, a clean stop on SIGTERM.

use crate::common::{ok, Server};

#[test]
fn serve_loads_the_demo_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    assert!(dir.path().join("citydata.db").exists(), "--db defaults to citydata.db in the working directory");
    let list = server.json("/api/v1/datasets");
    let slugs: Vec<&str> =
        list["datasets"].as_array().unwrap().iter().map(|d| d["slug"].as_str().unwrap()).collect();
    assert!(slugs.len() >= 5, "{slugs:?}");
    assert!(slugs.contains(&"smart-city"));
    let d = server.json("/api/v1/datasets/smart-city");
    assert_eq!(d["title"]["zh-Hant"], "智慧城市數字");
    assert_eq!(d["organization"]["slug"], "itib");
    let res = &d["resources"][0];
    assert_eq!(res["row_count"], 10);
    let fields: Vec<(&str, &str)> = res["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert!(fields.contains(&("value", "integer")), "{fields:?}");
    let rows = server.json("/api/v1/datasets/smart-city/resources/figures/rows?_limit=3");
    assert_eq!(rows["records"].as_array().unwrap().len(), 3);
    assert_eq!(rows["records"][1]["programme"], "iAM Smart");
    assert_eq!(rows["records"][1]["value"], 2_700_000);
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<main id=\"main\""));
    // The dataset's page carries its title in the chosen language and a schema.org block.
    let (status, page) = server.get("/datasets/smart-city?lang=zh-Hant");
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("<html lang=\"zh-Hant\">") && page.contains("智慧城市數字"), "{page}");
    assert!(page.contains("\"@type\":\"Dataset\""), "{page}");
    assert_eq!(server.get("/datasets/nope").0, 404);
    let (status, body) = server.get("/api/v1/datasets/nope");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("dataset \\\"nope\\\" not found"));

    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut server.stdout, &mut rest).unwrap();
    assert!(rest.contains("citydata stopped"), "{rest:?}");
    // A second start on the same database does not load the demo again.
    drop(server);
    let again = Server::start(dir.path(), &[]);
    assert_eq!(again.json("/api/v1/datasets")["count"], list["count"]);
    drop(again);
    assert!(ok(dir.path(), &["check"]).contains("ok"));
}

#[test]
fn no_demo_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-demo", "--db", "empty.db"]);
    assert_eq!(server.json("/api/v1/datasets")["count"], 0);
    assert_eq!(server.json("/api/v1/status")["name"], "citydata");
}
