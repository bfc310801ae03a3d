//! Tiles written by `citydata_geo::tiles` read back by GDAL's MVT driver (`ogrinfo`, from
//! gdal-bin): layers, geometry types, feature counts, properties and EPSG:3857 coordinates.
//!
//! `ogrinfo` must be on the PATH; without it the test fails, unless `CITYDATA_SKIP_GDAL=1` is set.

// Test helpers may panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use citydata_geo::tiles::{PropValue, TileBuilder, TileId, DEFAULT_BUFFER, DEFAULT_EXTENT};
use geo_types::{Geometry, LineString, Point, Polygon};

const R: f64 = 6_378_137.0;

fn mercator(lon: f64, lat: f64) -> (f64, f64) {
    (R * lon.to_radians(), R * (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0).tan().ln())
}

fn tile_at(lon: f64, lat: f64, z: u32) -> TileId {
    let n = f64::from(1u32 << z);
    let (_, my) = mercator(lon, lat);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let y = ((1.0 - my / (std::f64::consts::PI * R)) / 2.0 * n).floor() as u32;
    TileId::new(z, x, y).unwrap()
}

/// The WGS 84 position of a fraction (`fx`, `fy`) across the tile from its north-west corner.
fn at(t: TileId, fx: f64, fy: f64) -> (f64, f64) {
    let [x0, y0, x1, y1] = t.bounds_mercator();
    let (mx, my) = (x0 + fx * (x1 - x0), y1 - fy * (y1 - y0));
    ((mx / R).to_degrees(), (my / R).sinh().atan().to_degrees())
}

fn ogrinfo(path: &Path) -> Option<String> {
    let out = match Command::new("ogrinfo").arg("-ro").arg("-al").arg(path).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("CITYDATA_SKIP_GDAL").as_deref() == Ok("1") {
                eprintln!("ogrinfo not found; skipped because CITYDATA_SKIP_GDAL=1");
                return None;
            }
            panic!("ogrinfo not found: install gdal-bin, or set CITYDATA_SKIP_GDAL=1 to skip this test");
        }
        Err(e) => panic!("running ogrinfo: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ogrinfo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    Some(stdout)
}

/// The text of one layer's part of `ogrinfo -al` output.
fn layer_section<'a>(report: &'a str, name: &str) -> &'a str {
    let head = format!("Layer name: {name}\n");
    let start = report.find(&head).unwrap_or_else(|| panic!("no layer {name} in:\n{report}"));
    let rest = &report[start + head.len()..];
    &rest[..rest.find("Layer name: ").unwrap_or(rest.len())]
}

/// The numbers in the WKT lines of a section (`POINT (x y)`, `LINESTRING (...)`, ...).
fn wkt_coordinates(section: &str, kind: &str) -> Vec<Vec<(f64, f64)>> {
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(kind))
        .map(|l| {
            let inner: String = l[kind.len()..].chars().filter(|c| !"()".contains(*c)).collect();
            inner
                .split(',')
                .map(|pair| {
                    let mut n = pair.split_whitespace().map(|v| v.parse::<f64>().unwrap());
                    (n.next().unwrap(), n.next().unwrap())
                })
                .collect()
        })
        .collect()
}

fn near(got: (f64, f64), want: (f64, f64), metres: f64) -> bool {
    (got.0 - want.0).abs() <= metres && (got.1 - want.1).abs() <= metres
}

#[test]
fn gdal_reads_our_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let t = tile_at(114.158, 22.282, 14);
    // One tile unit at zoom 14 is about 0.6 m; allow two.
    let unit = (t.bounds_mercator()[2] - t.bounds_mercator()[0]) / f64::from(DEFAULT_EXTENT);
    let tolerance = 2.0 * unit;

    let mut b = TileBuilder::new(t, DEFAULT_EXTENT, DEFAULT_BUFFER).unwrap();
    let spots = [(0.25, 0.25), (0.5, 0.75), (0.9, 0.1)];
    for (i, &(fx, fy)) in spots.iter().enumerate() {
        let (lon, lat) = at(t, fx, fy);
        let props: Vec<(&str, PropValue)> = vec![
            ("name", format!("Lamppost {i} 燈柱").into()),
            ("floors", PropValue::Int(-(i as i64))),
            ("height", PropValue::Double(9.5 + i as f64)),
            ("smart", PropValue::Bool(i % 2 == 0)),
        ];
        assert!(b.layer("lampposts").add(
            &Geometry::Point(Point::new(lon, lat)),
            Some(100 + i as u64),
            props
        ));
    }
    // Outside the tile: left out.
    let (lon, lat) = at(t, 1.5, 0.5);
    assert!(!b.layer("lampposts").add(&Geometry::Point(Point::new(lon, lat)), Some(999), Vec::new()));

    let road = LineString::from(vec![at(t, 0.1, 0.5), at(t, 0.6, 0.5), at(t, 0.6, 0.9)]);
    assert!(b.layer("roads").add(&road.into(), Some(1), [("name", PropValue::from("Des Voeux Road"))]));

    let outer = LineString::from(vec![at(t, 0.2, 0.2), at(t, 0.8, 0.2), at(t, 0.8, 0.8), at(t, 0.2, 0.8)]);
    let hole = LineString::from(vec![at(t, 0.4, 0.4), at(t, 0.6, 0.4), at(t, 0.6, 0.6), at(t, 0.4, 0.6)]);
    let park = Polygon::new(outer, vec![hole]);
    assert!(b.layer("parks").add(&park.into(), Some(7), [("area_ha", PropValue::Uint(12))]));

    let path = dir.path().join(format!("{}/{}/{}.pbf", t.z(), t.x(), t.y()));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b.finish()).unwrap();

    let Some(report) = ogrinfo(&path) else { return };

    let lampposts = layer_section(&report, "lampposts");
    assert!(lampposts.contains("Geometry: Point"), "{lampposts}");
    assert!(lampposts.contains("Feature Count: 3"), "{lampposts}");
    for want in [
        "name (String) = Lamppost 1 燈柱",
        "floors (Integer",
        "= -2",
        "height (Real) = 10.5",
        "smart (Integer(Boolean)) = 1",
        "mvt_id (Integer64) = 102",
    ] {
        assert!(lampposts.contains(want), "{want:?} missing:\n{lampposts}");
    }
    let points = wkt_coordinates(lampposts, "POINT");
    assert_eq!(points.len(), 3, "{lampposts}");
    for (got, &(fx, fy)) in points.iter().zip(&spots) {
        let (lon, lat) = at(t, fx, fy);
        assert!(near(got[0], mercator(lon, lat), tolerance), "{got:?} vs {:?}", mercator(lon, lat));
    }

    let roads = layer_section(&report, "roads");
    assert!(roads.contains("Geometry: Line String") && roads.contains("Feature Count: 1"), "{roads}");
    assert!(roads.contains("name (String) = Des Voeux Road"), "{roads}");
    let line = &wkt_coordinates(roads, "LINESTRING")[0];
    let want: Vec<(f64, f64)> = [(0.1, 0.5), (0.6, 0.5), (0.6, 0.9)]
        .iter()
        .map(|&(fx, fy)| {
            let (lon, lat) = at(t, fx, fy);
            mercator(lon, lat)
        })
        .collect();
    assert_eq!(line.len(), 3, "{roads}");
    assert!(line.iter().zip(&want).all(|(g, w)| near(*g, *w, tolerance)), "{line:?} vs {want:?}");

    // GDAL's MVT driver reports polygon layers as multi-polygons.
    let parks = layer_section(&report, "parks");
    assert!(parks.contains("Geometry: Multi Polygon") && parks.contains("Feature Count: 1"), "{parks}");
    assert!(parks.contains("area_ha (Integer") && parks.contains("= 12"), "{parks}");
    let rings = wkt_coordinates(parks, "MULTIPOLYGON");
    assert_eq!(rings.len(), 1, "{parks}");
    // One polygon with one interior ring: GDAL took the second ring, wound against the exterior,
    // as a hole and not as a second polygon.
    assert!(parks.contains("),(") && !parks.contains(")),(("), "{parks}");
    assert_eq!(rings[0].len(), 10, "two rings of 4 corners and a closing point: {parks}");
    for (fx, fy) in [(0.2, 0.2), (0.8, 0.8), (0.4, 0.4), (0.6, 0.6)] {
        let (lon, lat) = at(t, fx, fy);
        assert!(rings[0].iter().any(|&p| near(p, mercator(lon, lat), tolerance)), "({fx}, {fy}): {parks}");
    }
}
