//! Spatial publishing: geometries from GeoJSON (with the legacy `crs` member), from latitude and
//! longitude columns and from Hong Kong 1980 Grid columns, found by themselves or named in the
//! metadata; stored in WGS 84 and served; invalid geometries refused with the record that holds them.

use std::path::Path;

use serde_json::Value;

use crate::common::{fails, ok, Server};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// The features of a collection, all of them.
fn features(s: &Server, collection: &str, query: &str) -> Vec<Value> {
    let body = s.json(&format!("/ogc/collections/{collection}/items?limit=10000{query}"));
    body["features"].as_array().unwrap().clone()
}

fn point(f: &Value) -> (f64, f64) {
    let c = &f["geometry"]["coordinates"];
    (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())
}

/// Metres between two WGS 84 points (haversine), for checks at city scale.
fn metres((lon1, lat1): (f64, f64), (lon2, lat2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let a = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().asin()
}

// Two real libraries with their published grid coordinates; PROJ's `cs2cs EPSG:2326 EPSG:4326` puts
// the first at 22.2495647 N, 114.1543580 E.
const GRID_CSV: &str = "名稱 Name,東行 Easting,北行 Northing,地區 District\n\
Aberdeen Public Library,833947,812311,SOUTHERN\n\
Shek Tong Tsui Public Library,832398,816108,CENTRAL & WESTERN\n\
No location,,,ISLANDS\n";
const ABERDEEN: (f64, f64) = (114.154_358_0, 22.249_564_7);

#[test]
fn grid_columns_are_found_and_transformed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "libraries.csv", GRID_CSV);
    let out = ok(d, &["publish", "libraries.csv", "--dataset", "libraries", "--db", "t.db"]);
    assert!(out.contains("location: points from the columns 東行 Easting and 北行 Northing (Hong Kong 1980 Grid, EPSG:2326)"), "{out}");
    assert!(out.contains("note: 1 rows have no location"), "{out}");
    let s = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let spatial = &s.json("/api/v1/datasets/libraries")["resources"][0]["versions"][0]["spatial"];
    assert_eq!(spatial["column"], "_geom");
    assert_eq!(spatial["count"], 2);
    assert_eq!(spatial["types"], serde_json::json!(["Point"]));
    let fs = features(&s, "libraries", "");
    assert_eq!(fs.len(), 3);
    assert!(metres(point(&fs[0]), ABERDEEN) < 0.05, "{:?}", point(&fs[0]));
    assert!(fs[2]["geometry"].is_null());
    // The original columns stay as they were; the made geometry is not one of them.
    assert_eq!(fs[0]["properties"]["東行 Easting"], 833947);
    assert!(fs[0]["properties"].get("_geom").is_none());
    let rows = s.json("/api/v1/datasets/libraries/resources/libraries/rows");
    assert!(rows["records"][0].get("_geom").is_none(), "{rows}");
    // Back in the grid, northing first as EPSG:2326 orders its axes.
    let grid = features(&s, "libraries", "&crs=http://www.opengis.net/def/crs/EPSG/0/2326");
    let (n, e) = point(&grid[0]);
    assert!((n - 812_311.0).abs() < 0.05 && (e - 833_947.0).abs() < 0.05, "{n} {e}");
    assert!(ok(d, &["check", "--db", "t.db"]).contains("ok"));
}

#[test]
fn latitude_longitude_columns_in_chinese_and_named_in_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "stations.csv", "站 Station,緯度,經度\nCentral,22.2819,114.1581\nSha Tin,22.3823,114.1886\n");
    let out = ok(d, &["publish", "stations.csv", "--dataset", "stations", "--db", "t.db"]);
    assert!(out.contains("location: points from the columns 經度 and 緯度 (EPSG:4326)"), "{out}");
    // Columns the detector cannot know, named in the metadata.
    write(d, "sites.csv", "site,a,b\nP,836000,819000\nQ,837000,820500\n");
    write(d, "meta.json", r#"{"title":"Sites","geometry":{"x":"a","y":"b","crs":"EPSG:2326"}}"#);
    let out = ok(d, &["publish", "sites.csv", "--dataset", "sites", "--meta", "meta.json", "--db", "t.db"]);
    assert!(out.contains("points from the columns a and b (Hong Kong 1980 Grid, EPSG:2326)"), "{out}");
    write(d, "bad.json", r#"{"geometry":{"x":"a","y":"nope"}}"#);
    let err = fails(d, &["publish", "sites.csv", "--dataset", "sites", "--meta", "bad.json", "--db", "t.db"]);
    assert!(err.contains("the metadata's geometry names the column \"nope\""), "{err}");
    let s = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let st = features(&s, "stations", "");
    assert_eq!(point(&st[0]), (114.1581, 22.2819));
    let sites = features(&s, "sites", "");
    // cs2cs puts (E 836000, N 819000) at 22.3099721 N, 114.1742733 E.
    assert!(metres(point(&sites[0]), (114.174_273_3, 22.309_972_1)) < 0.05, "{:?}", point(&sites[0]));
}

#[test]
fn geojson_in_the_grid_with_a_legacy_crs_member() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2326"}},
      "features":[{"type":"Feature","properties":{"name":"Lot A"},"geometry":{"type":"Polygon","coordinates":[[[833900,812300],[834000,812300],[834000,812400],[833900,812400],[833900,812300]]]}}]}"#;
    write(d, "lots.geojson", grid);
    let out = ok(d, &["publish", "lots.geojson", "--dataset", "lots", "--db", "t.db"]);
    assert!(out.contains("GeoJSON geometries in EPSG:2326, transformed to WGS 84"), "{out}");
    let s = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let f = &features(&s, "lots", "")[0];
    let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
    let first = (ring[0][0].as_f64().unwrap(), ring[0][1].as_f64().unwrap());
    // cs2cs puts (E 833900, N 812300) at 22.2494653 N, 114.1539020 E.
    assert!(metres(first, (114.153_902_0, 22.249_465_3)) < 0.05, "{first:?}");
    // The box of Aberdeen finds it; a box elsewhere does not.
    assert_eq!(features(&s, "lots", "&bbox=114.15,22.24,114.16,22.26").len(), 1);
    assert_eq!(features(&s, "lots", "&bbox=114.0,22.4,114.1,22.5").len(), 0);
}

#[test]
fn an_invalid_geometry_names_its_record_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"n":1},"geometry":{"type":"Point","coordinates":[114.1,22.3]}}]}"#;
    write(d, "p.geojson", good);
    ok(d, &["publish", "p.geojson", "--dataset", "p", "--db", "t.db"]);
    let open_ring = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"n":1},"geometry":{"type":"Point","coordinates":[114.1,22.3]}},
      {"type":"Feature","properties":{"n":2},"geometry":{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22.2]]]}}]}"#;
    write(d, "p.geojson", open_ring);
    let err = fails(d, &["publish", "p.geojson", "--dataset", "p", "--db", "t.db"]);
    assert!(err.contains("record 2") && err.contains("not closed"), "{err}");
    let grid_without_crs = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"n":1},"geometry":{"type":"Point","coordinates":[833947,812311]}}]}"#;
    write(d, "p.geojson", grid_without_crs);
    let err = fails(d, &["publish", "p.geojson", "--dataset", "p", "--db", "t.db"]);
    assert!(err.contains("record 1"), "{err}");
    let s = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let versions = &s.json("/api/v1/datasets/p")["resources"][0]["versions"];
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(features(&s, "p", "").len(), 1);
}
