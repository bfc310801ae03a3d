//! The Hong Kong demo: the synthetic layers' generator (deterministic, counts, placement inside the
//! real districts, bilingual properties, valid polygons), `citydata generate`, and the demo as `serve`
//! publishes it.

use std::collections::HashSet;
use std::path::PathBuf;

use citydata::demo::{generate, City, Layer};
use serde_json::Value;

use crate::common::{ok, sha256_hex, Server};

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo")
}

/// The district polygons as plain rings, for a point-in-polygon test written independently of the
/// generator's index: even-odd over every ring of a district, all edges, no shortcuts.
/// A district: its English name, its bounding box and its rings.
struct District {
    name: String,
    bbox: [f64; 4],
    rings: Vec<Vec<(f64, f64)>>,
}

fn districts() -> Vec<District> {
    let text = std::fs::read_to_string(demo_dir().join("hk-districts/districts.geojson")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let g = &f["geometry"];
            let polys: Vec<&Value> = if g["type"] == "Polygon" {
                vec![&g["coordinates"]]
            } else {
                g["coordinates"].as_array().unwrap().iter().collect()
            };
            let rings: Vec<Vec<(f64, f64)>> = polys
                .iter()
                .flat_map(|p| p.as_array().unwrap())
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
                        .collect()
                })
                .collect();
            let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            for &(x, y) in rings.iter().flatten() {
                bbox = [bbox[0].min(x), bbox[1].min(y), bbox[2].max(x), bbox[3].max(y)];
            }
            District { name: f["properties"]["DC_ENG"].as_str().unwrap().to_owned(), bbox, rings }
        })
        .collect()
}

fn inside(rings: &[Vec<(f64, f64)>], (x, y): (f64, f64)) -> bool {
    let mut odd = false;
    for r in rings {
        for i in 0..r.len() {
            let (a, b) = (r[i], r[(i + 1) % r.len()]);
            if (a.1 > y) != (b.1 > y) && x < a.0 + (y - a.1) * (b.0 - a.0) / (b.1 - a.1) {
                odd = !odd;
            }
        }
    }
    odd
}

/// The name of the district that holds the point, if any.
fn district_of(ds: &[District], p: (f64, f64)) -> Option<&str> {
    ds.iter()
        .find(|d| {
            let [x0, y0, x1, y1] = d.bbox;
            (x0..=x1).contains(&p.0) && (y0..=y1).contains(&p.1) && inside(&d.rings, p)
        })
        .map(|d| d.name.as_str())
}

fn features(text: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["type"], "FeatureCollection");
    doc["features"].as_array().unwrap().clone()
}

fn positions(g: &Value) -> Vec<(f64, f64)> {
    let pt = |c: &Value| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
    match g["type"].as_str().unwrap() {
        "Point" => vec![pt(&g["coordinates"])],
        "Polygon" => g["coordinates"][0].as_array().unwrap().iter().map(pt).collect(),
        other => panic!("unexpected geometry {other}"),
    }
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
    let city = City::hong_kong().unwrap();
    for layer in [Layer::Buildings, Layer::Parcels, Layer::Hotspots, Layer::Lampposts] {
        let a = generate(&city, layer, 300, 7).unwrap();
        let b = generate(&City::hong_kong().unwrap(), layer, 300, 7).unwrap();
        assert!(a == b, "{layer:?}: two runs with seed 7 differ");
        let c = generate(&city, layer, 300, 8).unwrap();
        assert!(a != c, "{layer:?}: seeds 7 and 8 gave the same bytes");
        let want = if layer == Layer::Lampposts { 350 } else { 300 };
        assert_eq!(features(&a).len(), want, "{layer:?}");
        assert_eq!(features(&generate(&city, layer, 0, 7).unwrap()).len(), want - 300, "{layer:?} of 0");
    }
}

#[test]
fn every_synthetic_position_lies_inside_a_real_district() {
    let city = City::hong_kong().unwrap();
    let ds = districts();
    for (layer, n) in
        [(Layer::Buildings, 2000), (Layer::Parcels, 300), (Layer::Hotspots, 2000), (Layer::Lampposts, 400)]
    {
        let text = generate(&city, layer, n, 11).unwrap();
        for f in features(&text) {
            let p = &f["properties"];
            if p["real"] == true {
                continue;
            }
            let pos = positions(&f["geometry"]);
            for &xy in &pos {
                assert!(district_of(&ds, xy).is_some(), "{layer:?} {}: {xy:?} is in no district", p["id"]);
            }
            // The district named is the one that holds the feature: its centre (the middle of its
            // bounding box) or, for a footprint that straddles a border, one of its vertices.
            let (x0, x1) = pos.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
            let (y0, y1) = pos.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
            let named = p["district_en"].as_str().unwrap();
            let holders: Vec<Option<&str>> = pos
                .iter()
                .chain([&((x0 + x1) / 2.0, (y0 + y1) / 2.0)])
                .map(|&xy| district_of(&ds, xy))
                .collect();
            assert!(holders.contains(&Some(named)), "{layer:?} {}: {named} not in {holders:?}", p["id"]);
        }
    }
}

#[test]
fn polygons_are_closed_counter_clockwise_and_simple() {
    let city = City::hong_kong().unwrap();
    for (layer, n) in [(Layer::Buildings, 2000), (Layer::Parcels, 500)] {
        for f in features(&generate(&city, layer, n, 3).unwrap()) {
            let g = &f["geometry"];
            assert_eq!(g["type"], "Polygon");
            assert_eq!(g["coordinates"].as_array().unwrap().len(), 1, "one exterior ring, no holes");
            let ring = positions(g);
            assert!(ring.len() >= 4, "{ring:?}");
            assert_eq!(ring.first(), ring.last(), "closed ring");
            let n = ring.len() - 1;
            let area2: f64 = (0..n).map(|i| ring[i].0 * ring[i + 1].1 - ring[i + 1].0 * ring[i].1).sum();
            assert!(area2 > 0.0, "{}: exterior ring not counter-clockwise", f["properties"]["id"]);
            // No two non-adjacent edges cross.
            let cross = |a: (f64, f64), b: (f64, f64), c: (f64, f64)| {
                (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
            };
            for i in 0..n {
                for j in i + 2..n {
                    if i == 0 && j == n - 1 {
                        continue;
                    }
                    let (p1, p2, q1, q2) = (ring[i], ring[i + 1], ring[j], ring[j + 1]);
                    let proper = cross(p1, p2, q1) * cross(p1, p2, q2) < 0.0
                        && cross(q1, q2, p1) * cross(q1, q2, p2) < 0.0;
                    assert!(!proper, "{}: edges {i} and {j} cross", f["properties"]["id"]);
                }
            }
            // Footprint sizes: buildings 10-60 m a side, so 100 to 3600 m².
            let p = &f["properties"];
            if layer == Layer::Buildings {
                let a = p["footprint_m2"].as_f64().unwrap();
                assert!((50.0..=3600.0).contains(&a), "{}: footprint {a}", p["id"]);
                // The area of the ring, in m², agrees with the property.
                let m2 = area2 / 2.0 * 102_980.0 * 110_770.0;
                assert!((m2 - a).abs() < a * 0.03 + 5.0, "{}: ring {m2} m², property {a}", p["id"]);
            }
        }
    }
}

#[test]
fn buildings_do_not_overlap() {
    let city = City::hong_kong().unwrap();
    let boxes: Vec<[f64; 4]> = features(&generate(&city, Layer::Buildings, 3000, 4).unwrap())
        .iter()
        .map(|f| {
            let ring = positions(&f["geometry"]);
            let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            for (x, y) in ring {
                b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            }
            b
        })
        .collect();
    let mut sorted = boxes.clone();
    sorted.sort_by(|a, b| a[0].total_cmp(&b[0]));
    for (i, a) in sorted.iter().enumerate() {
        for b in sorted[i + 1..].iter().take_while(|b| b[0] <= a[2]) {
            let apart = b[1] > a[3] || a[1] > b[3];
            assert!(apart, "bounding boxes {a:?} and {b:?} overlap");
        }
    }
}

#[test]
fn properties_are_bilingual_and_non_empty() {
    let city = City::hong_kong().unwrap();
    for layer in [Layer::Buildings, Layer::Parcels, Layer::Hotspots, Layer::Lampposts] {
        let mut ids = HashSet::new();
        for f in features(&generate(&city, layer, 1000, 5).unwrap()) {
            let p = f["properties"].as_object().unwrap();
            let id = p["id"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{layer:?}: duplicate id {id}");
            for (k, v) in p {
                if let Some(s) = v.as_str() {
                    assert!(!s.trim().is_empty(), "{layer:?} {id}: {k} is empty");
                    if k.ends_with("_zh") {
                        assert!(has_cjk(s), "{layer:?} {id}: {k} = {s:?} has no Chinese");
                    }
                    if k.ends_with("_en") {
                        assert!(!has_cjk(s), "{layer:?} {id}: {k} = {s:?} is not English");
                    }
                }
            }
            let en = p.keys().filter(|k| k.ends_with("_en")).count();
            let zh = p.keys().filter(|k| k.ends_with("_zh")).count();
            assert!(en >= 1 && en == zh, "{layer:?}: {en} English and {zh} Chinese properties");
        }
    }
}

#[test]
fn buildings_look_like_the_city() {
    let city = City::hong_kong().unwrap();
    let fs = features(&generate(&city, Layer::Buildings, 5000, 1).unwrap());
    let prefix = |p: &Value| p["id"].as_str().unwrap().starts_with("BLDG-");
    assert!(fs.iter().all(|f| prefix(&f["properties"])));
    let urban = ["Yau Tsim Mong", "Central & Western", "Wan Chai", "Kwun Tong"];
    let tall = |f: &&Value| f["properties"]["height_m"].as_f64().unwrap() > 100.0;
    let in_urban = |f: &&Value| urban.contains(&f["properties"]["district_en"].as_str().unwrap());
    let share = |pred: &dyn Fn(&&Value) -> bool, of: &dyn Fn(&&Value) -> bool| {
        let all: Vec<&Value> = fs.iter().filter(|f| of(f)).collect();
        all.iter().filter(|f| pred(f)).count() as f64 / all.len().max(1) as f64
    };
    let rural = ["Islands", "North", "Sai Kung", "Tai Po"];
    let in_rural = |f: &&Value| rural.contains(&f["properties"]["district_en"].as_str().unwrap());
    let urban_tall = share(&tall, &in_urban);
    let rural_tall = share(&tall, &in_rural);
    assert!(urban_tall > 2.0 * rural_tall, "towers: {urban_tall} of urban, {rural_tall} elsewhere");
    let villages: Vec<&Value> = fs.iter().filter(|f| f["properties"]["use_en"] == "Village house").collect();
    assert!(villages.len() > 100, "{} village houses", villages.len());
    for v in &villages {
        let p = &v["properties"];
        assert!(p["floors"].as_i64().unwrap() <= 3 && p["height_m"].as_f64().unwrap() < 9.0, "{p}");
        assert!(!urban.contains(&p["district_en"].as_str().unwrap()), "{p}");
    }
    for f in &fs {
        let p = &f["properties"];
        let (h, floors, year) = (
            p["height_m"].as_f64().unwrap(),
            p["floors"].as_i64().unwrap(),
            p["year_built"].as_i64().unwrap(),
        );
        assert!(
            (2.0..400.0).contains(&h) && (1..=80).contains(&floors) && (1940..=2025).contains(&year),
            "{p}"
        );
        assert!(h >= floors as f64 * 2.5, "{p}");
    }
    // Addresses are on real streets taken from the facility datasets.
    let streets: HashSet<&str> = city.streets.iter().map(|s| s.en.as_str()).collect();
    let on_street = fs
        .iter()
        .filter(|f| streets.iter().any(|s| f["properties"]["address_en"].as_str().unwrap().contains(s)))
        .count();
    assert!(on_street > fs.len() / 2, "{on_street} of {} on a real street", fs.len());
}

#[test]
fn lampposts_hold_the_real_ones_in_four_areas() {
    let city = City::hong_kong().unwrap();
    let fs = features(&generate(&city, Layer::Lampposts, 400, citydata::demo::DEMO_SEED).unwrap());
    assert_eq!(fs.len(), 450);
    let real: Vec<&Value> = fs.iter().filter(|f| f["properties"]["real"] == true).collect();
    assert_eq!(real.len(), 50);
    let aa = real.iter().find(|f| f["properties"]["id"] == "AA6337").expect("the real AA6337");
    assert_eq!(aa["properties"]["street_zh"], "常悅道");
    assert_eq!(aa["geometry"]["coordinates"][0], 114.211141);
    let areas: HashSet<&str> = fs.iter().map(|f| f["properties"]["area_en"].as_str().unwrap()).collect();
    assert_eq!(areas.len(), 4, "{areas:?}");
    // Ids like the real ones: one or two capital letters and four digits ("AA6337", "E7685").
    let id_ok = |s: &str| {
        let letters = s.chars().take_while(char::is_ascii_uppercase).count();
        (1..=2).contains(&letters)
            && s.len() == letters + 4
            && s[letters..].chars().all(|c| c.is_ascii_digit())
    };
    for f in &fs {
        let id = f["properties"]["id"].as_str().unwrap();
        assert!(id_ok(id), "{id}");
    }
    let sensors = fs.iter().filter(|f| f["properties"]["air_quality"] == true).count();
    assert!(sensors > 10, "{sensors} with air quality sensors");
    // The typed list is the same lampposts, in the same order.
    let list = citydata::demo::smart_lampposts(&city, 400, citydata::demo::DEMO_SEED).unwrap();
    assert_eq!(list.len(), fs.len());
    for (l, f) in list.iter().zip(&fs) {
        let p = &f["properties"];
        assert_eq!(p["id"], l.id.as_str());
        assert_eq!(p["real"], l.real);
        assert_eq!(p["air_quality"], l.has("air_quality"));
        assert_eq!(f["geometry"]["coordinates"][1].as_f64(), Some(l.lat));
    }
}

#[test]
fn generate_writes_the_generators_geojson() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["generate", "hotspots", "--count", "500", "--seed", "9", "--out", "h.geojson"]);
    let stdout = ok(d, &["generate", "hotspots", "--count", "500", "--seed", "9"]);
    let file = std::fs::read_to_string(d.join("h.geojson")).unwrap();
    assert!(file == stdout, "--out and standard output differ");
    let lib = generate(&City::hong_kong().unwrap(), Layer::Hotspots, 500, 9).unwrap();
    assert!(file == lib, "the command and the library differ");
    assert_eq!(features(&file).len(), 500);
    let help = ok(d, &["generate", "--help"]);
    for word in ["buildings", "hotspots", "--count", "--seed", "--out"] {
        assert!(help.contains(word), "{word} not in {help}");
    }
    let err = crate::common::fails(d, &["generate", "buildings", "--count", "999999999"]);
    assert!(err.contains("at most"), "{err}");
    let err = crate::common::fails(d, &["generate", "roads"]);
    assert!(err.contains("buildings"), "{err}");
}

/// `serve` on a new database publishes every demo dataset: the real files byte for byte with their
/// attribution, the synthetic layers marked synthetic and identical to `citydata generate`'s output.
#[test]
fn serve_publishes_the_whole_demo() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--db", "demo.db"]);
    let list = server.json("/api/v1/datasets?limit=100");
    assert_eq!(list["count"], 32, "5 figures, the districts, 22 facility datasets, 4 synthetic layers");
    let real = std::fs::read_dir(demo_dir().join("hk-geodata"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "geojson"))
        .count();
    assert_eq!(real, 22);
    for (slug, file, rows) in [
        ("districts", "hk-districts/districts.geojson", 18),
        ("beaches", "hk-geodata/Beaches.geojson", 42),
        ("smart-lamppost-functions", "hk-geodata/Summary_of_Functions_on_Smart_Lampposts.geojson", 50),
        ("street-posting-boxes", "hk-geodata/Street_Posting_Boxes.geojson", 1157),
    ] {
        let d = server.json(&format!("/api/v1/datasets/{slug}"));
        assert!(d["source"].as_str().unwrap().contains("the Government of the Hong Kong SAR"), "{slug}: {d}");
        assert!(d["description"]["en"].as_str().unwrap().contains("Source:"), "{slug}");
        assert!(!d["title"]["zh-Hans"].as_str().unwrap().is_empty(), "{slug}");
        assert!(!d["tags"].as_array().unwrap().iter().any(|t| t == "synthetic"), "{slug}");
        let v = &d["resources"][0]["versions"][0];
        assert_eq!(v["row_count"], rows, "{slug}");
        let bytes = std::fs::read(demo_dir().join(file)).unwrap();
        assert_eq!(v["sha256"], sha256_hex(&bytes), "{slug}: the original bytes");
    }
    let posting = server.json("/api/v1/datasets/street-posting-boxes");
    assert_eq!(posting["organization"]["slug"], "hongkongpost");
    assert_eq!(posting["title"]["zh-Hant"], "郵筒");
    assert_eq!(server.json("/api/v1/datasets/districts")["theme"], "Framework: District");
    let gen = |layer: &str, count: &str| {
        let out = ok(dir.path(), &["generate", layer, "--count", count]);
        sha256_hex(out.as_bytes())
    };
    for (slug, layer, count, rows) in [
        ("buildings", "buildings", "40000", 40_000),
        ("land-parcels", "parcels", "3000", 3000),
        ("wifi-hk-hotspots", "hotspots", "45000", 45_000),
        ("smart-lampposts", "lampposts", "400", 450),
    ] {
        let d = server.json(&format!("/api/v1/datasets/{slug}"));
        assert!(d["tags"].as_array().unwrap().iter().any(|t| t == "synthetic"), "{slug}");
        assert!(d["title"]["en"].as_str().unwrap().contains("synthetic"), "{slug}");
        assert!(d["description"]["en"].as_str().unwrap().starts_with("SYNTHETIC DATA"), "{slug}");
        assert!(d["description"]["zh-Hant"].as_str().unwrap().contains("合成數據"), "{slug}");
        let v = &d["resources"][0]["versions"][0];
        assert_eq!(v["row_count"], rows, "{slug}");
        assert_eq!(v["sha256"], gen(layer, count), "{slug}: the demo's bytes are the generator's");
    }
    assert_eq!(server.json("/api/v1/datasets/buildings")["theme"], "Framework: Building");
    let rows = server.json("/api/v1/datasets/buildings/resources/buildings/rows?_limit=2");
    let r = &rows["records"][0];
    assert!(r["name_zh"].as_str().is_some_and(has_cjk), "{r}");
    assert!(r["geometry"].to_string().contains("Polygon"), "{r}");
}
