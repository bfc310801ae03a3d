//! `citydata dashboard add|list|remove`: definitions checked against the database, stored, served.

use std::path::Path;

use crate::common::{fails, ok, run, Server};

const FIGURES: &str =
    "programme,measure,value,unit\nWi-Fi.HK,hotspots,45000,hotspots\niAM Smart,users,2700000,people\n";

const GOOD: &str = r#"{"id": "mine", "title": {"en": "Mine", "zh-Hant": "我的", "zh-Hans": "我的"},
  "panels": [
    {"kind": "stat", "id": "users", "title": "Users", "dataset": "figures", "resource": "figures",
     "value": "value", "label": ["programme", "measure"], "unit": "unit", "filter": {"programme": "iAM Smart"}},
    {"kind": "live", "id": "air", "title": "Air", "observed_properties": ["PM2.5"], "group_by": "area"}]}"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

#[test]
fn add_list_serve_and_remove_a_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "figures.csv", FIGURES);
    ok(d, &["publish", "figures.csv", "--dataset", "figures", "--db", "t.db"]);

    // Only the built-in dashboard at first.
    let list = ok(d, &["dashboard", "list", "--db", "t.db"]);
    assert!(list.starts_with("city\t") && list.contains("(built in)"), "{list}");
    assert_eq!(list.lines().count(), 1, "{list}");

    write(d, "mine.json", GOOD);
    let out = run(d, &["dashboard", "add", "mine.json", "--db", "t.db"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("dashboard mine: added (2 panels); at /dashboards/mine"), "{said}");
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("warning: panels[1] (\"air\"): no ObservedProperty is named \"PM2.5\" yet"),
        "{warned}"
    );
    let again = ok(d, &["dashboard", "add", "mine.json", "--db", "t.db"]);
    assert!(again.contains("dashboard mine: replaced"), "{again}");
    let list = ok(d, &["dashboard", "list", "--db", "t.db"]);
    assert!(list.contains("mine\t2 panels\tMine\t(added "), "{list}");

    let server = Server::start(d, &["--db", "t.db", "--no-demo", "--no-simulate"]);
    let all = server.json("/api/v1/dashboards");
    let ids: Vec<&str> =
        all["dashboards"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["city", "mine"]);
    let mine = server.json("/api/v1/dashboards/mine");
    assert_eq!(mine["title"]["zh-Hant"], "我的");
    assert_eq!(mine["panels"][0]["filter"]["programme"], "iAM Smart");
    assert_eq!(mine["panels"][1]["window_minutes"], 30);
    // The panel's rows are there for the page to read, as the definition asks for them.
    let rows = server.json("/api/v1/datasets/figures/resources/figures/rows?programme=iAM%20Smart&_limit=1");
    assert_eq!(rows["records"][0]["value"], 2_700_000);
    let (status, page) = server.get("/dashboards/mine");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<html lang=\"en\">"));
    drop(server);

    let out = ok(d, &["dashboard", "remove", "mine", "--db", "t.db"]);
    assert!(out.contains("dashboard mine: removed"), "{out}");
    let err = fails(d, &["dashboard", "remove", "mine", "--db", "t.db"]);
    assert!(err.contains("no dashboard \"mine\" was added"), "{err}");
    let err = fails(d, &["dashboard", "remove", "city", "--db", "t.db"]);
    assert!(err.contains("the built-in city dashboard cannot be removed"), "{err}");
}

#[test]
fn a_bad_definition_is_refused_with_every_problem_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "figures.csv", FIGURES);
    ok(d, &["publish", "figures.csv", "--dataset", "figures", "--db", "t.db"]);
    let bad_shape =
        GOOD.replace("\"stat\"", "\"gauge\"").replace("\"group_by\": \"area\"", "\"group_by\": 5");
    write(d, "shape.json", &bad_shape);
    let err = fails(d, &["dashboard", "add", "shape.json", "--db", "t.db"]);
    assert!(err.contains("shape.json: panels[0] (\"users\"): unknown kind \"gauge\""), "{err}");
    assert!(err.contains("shape.json: panels[1] (\"air\").group_by: must be a string"), "{err}");
    assert!(err.contains("not added (2 problems)"), "{err}");

    let bad_data = GOOD.replace("\"dataset\": \"figures\"", "\"dataset\": \"nowhere\"");
    write(d, "data.json", &bad_data);
    let err = fails(d, &["dashboard", "add", "data.json", "--db", "t.db"]);
    assert!(err.contains("panels[0] (\"users\"): no dataset \"nowhere\" is published"), "{err}");
    let bad_column = GOOD.replace("\"value\": \"value\"", "\"value\": \"measure\"");
    write(d, "column.json", &bad_column);
    let err = fails(d, &["dashboard", "add", "column.json", "--db", "t.db"]);
    assert!(err.contains("value column \"measure\" holds"), "{err}");
    let err = fails(d, &["dashboard", "add", "missing.json", "--db", "t.db"]);
    assert!(err.contains("cannot read missing.json"), "{err}");

    let list = ok(d, &["dashboard", "list", "--db", "t.db"]);
    assert_eq!(list.lines().count(), 1, "only the built-in one: {list}");
    let err = fails(d, &["dashboard", "list", "--db", "other.db"]);
    assert!(err.contains("other.db: no such database"), "{err}");
    assert!(!d.join("other.db").exists(), "listing made no database");
    let help = ok(d, &["dashboard", "add", "--help"]);
    assert!(help.contains("observed_properties") && help.contains("--db"), "{help}");
}

/// The built-in city dashboard passes the same checks against the demo database (slow: the demo
/// loads in a debug build).
#[test]
fn the_city_dashboard_fits_the_demo() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none_or(|v| v == "0") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    drop(Server::start(d, &["--db", "demo.db", "--no-simulate"]));
    let city = concat!(env!("CARGO_MANIFEST_DIR"), "/../citydata-server/src/dashboards/city.json");
    let out = run(d, &["dashboard", "add", city, "--db", "demo.db"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Without the simulator no lamppost has reported yet: the live panels' properties are warned of.
    assert!(err.contains("no ObservedProperty is named \"PM2.5\" yet"), "{err}");
    assert!(!err.contains("dataset"), "{err}");
}
