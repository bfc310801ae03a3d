//! Round trips through the test decoder: geometry where it belongs, clipping, winding, keys and
//! values, ids, layers; and the build time of tiles over Hong Kong (printed, not asserted).

use geo_types::{
    line_string, point, polygon, Geometry, GeometryCollection, LineString, MultiPoint, MultiPolygon, Point,
    Polygon,
};

use super::decode::{self, Path, Value};
use super::*;
use crate::tiles::shape::area2;

const R: f64 = 6_378_137.0;

/// The tile holding a WGS 84 position at zoom `z` (computed with the tangent form of Mercator).
fn tile_at(lon: f64, lat: f64, z: u32) -> TileId {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let y_merc = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0).tan().ln();
    let y = ((1.0 - y_merc / std::f64::consts::PI) / 2.0 * n).floor() as u32;
    TileId::new(z, x, y).unwrap()
}

/// The WGS 84 position of tile-grid position (`px`, `py`) of a 4096 tile, through its EPSG:3857 bounds.
fn lonlat(t: TileId, px: f64, py: f64) -> (f64, f64) {
    let [x0, y0, x1, y1] = t.bounds_mercator();
    let mx = x0 + px / 4096.0 * (x1 - x0);
    let my = y1 - py / 4096.0 * (y1 - y0);
    ((mx / R).to_degrees(), (my / R).sinh().atan().to_degrees())
}

fn pt(t: TileId, px: f64, py: f64) -> Point<f64> {
    let (x, y) = lonlat(t, px, py);
    point!(x: x, y: y)
}

fn ring(t: TileId, corners: &[(f64, f64)]) -> LineString<f64> {
    let mut coords: Vec<(f64, f64)> = corners.iter().map(|&(px, py)| lonlat(t, px, py)).collect();
    coords.push(coords[0]);
    LineString::from(coords)
}

fn central() -> TileId {
    tile_at(114.158, 22.282, 14)
}

fn builder(t: TileId) -> TileBuilder {
    TileBuilder::new(t, DEFAULT_EXTENT, DEFAULT_BUFFER).unwrap()
}

fn near(got: [i32; 2], want: (f64, f64)) -> bool {
    (f64::from(got[0]) - want.0).abs() <= 1.0 && (f64::from(got[1]) - want.1).abs() <= 1.0
}

fn none() -> Vec<(&'static str, PropValue)> {
    Vec::new()
}

#[test]
fn points_land_where_they_belong() {
    let t = central();
    let mut b = builder(t);
    let spots = [(0.0, 0.0), (4096.0, 4096.0), (2048.3, 17.8), (-64.0, 4160.0), (1000.0, 3000.0)];
    for (i, &(px, py)) in spots.iter().enumerate() {
        assert!(b.layer("spots").add(&pt(t, px, py).into(), Some(i as u64), none()));
    }
    let layers = decode::tile(&b.finish());
    assert_eq!(layers.len(), 1);
    let l = &layers[0];
    assert_eq!((l.name.as_str(), l.version, l.extent, l.features.len()), ("spots", 2, 4096, spots.len()));
    for (i, (f, want)) in l.features.iter().zip(spots).enumerate() {
        assert_eq!((f.id, f.kind), (Some(i as u64), 1));
        let paths = decode::geometry(&f.geometry);
        assert_eq!(paths.len(), 1);
        assert!(near(paths[0].points[0], want), "{:?} vs {want:?}", paths[0].points);
    }
}

#[test]
fn points_outside_the_buffer_are_dropped() {
    let t = central();
    let mut b = builder(t);
    let layer = b.layer("p");
    assert!(!layer.add(&pt(t, -70.0, 10.0).into(), None, none()));
    assert!(!layer.add(&pt(t, 10.0, 4170.0).into(), None, none()));
    let far = Geometry::Point(point!(x: -74.0, y: 40.7));
    assert!(!layer.add(&far, Some(1), [("name", "New York".into())]));
    assert!(layer.is_empty() && b.is_empty());
    let multi = MultiPoint(vec![pt(t, -500.0, 5.0), pt(t, 100.0, 200.0), pt(t, 9000.0, 5.0)]);
    assert!(b.layer("p").add(&multi.into(), None, none()));
    assert!(!b.is_empty());
    let layers = decode::tile(&b.finish());
    let paths = decode::geometry(&layers[0].features[0].geometry);
    assert_eq!(paths.len(), 1);
    assert!(near(paths[0].points[0], (100.0, 200.0)));
    // A feature that never reached the tile left no key behind.
    assert!(layers[0].keys.is_empty() && layers[0].values.is_empty());
}

#[test]
fn an_empty_tile_is_empty() {
    let t = central();
    let mut b = builder(t);
    assert!(b.is_empty());
    b.layer("nothing");
    assert!(b.is_empty());
    assert!(b.finish().is_empty());
}

#[test]
fn a_polygon_across_the_tile_edge_is_clipped_and_wound() {
    let t = central();
    let mut b = builder(t);
    // Counter-clockwise on screen as given; it must come out clockwise (positive area).
    let square =
        Polygon::new(ring(t, &[(-500.0, 100.0), (-500.0, 900.0), (500.0, 900.0), (500.0, 100.0)]), vec![]);
    assert!(b.layer("areas").add(&square.into(), Some(7), none()));
    let layers = decode::tile(&b.finish());
    let f = &layers[0].features[0];
    assert_eq!((f.kind, f.id), (3, Some(7)));
    let paths = decode::geometry(&f.geometry);
    assert_eq!(paths.len(), 1);
    let Path { points, closed } = &paths[0];
    assert!(*closed);
    assert!(area2(points) > 0, "{points:?}");
    assert_eq!(points.len(), 4, "{points:?}");
    for want in [(-64.0, 100.0), (500.0, 100.0), (500.0, 900.0), (-64.0, 900.0)] {
        assert!(points.iter().any(|&p| near(p, want)), "{want:?} missing from {points:?}");
    }
}

#[test]
fn holes_are_wound_against_their_exterior() {
    let t = central();
    let mut b = builder(t);
    // Exterior clockwise on screen, hole clockwise too: the hole must be turned round.
    let outer = ring(t, &[(100.0, 100.0), (3000.0, 100.0), (3000.0, 3000.0), (100.0, 3000.0)]);
    let hole = ring(t, &[(1000.0, 1000.0), (2000.0, 1000.0), (2000.0, 2000.0), (1000.0, 2000.0)]);
    let tiny_hole = ring(t, &[(500.0, 500.0), (500.3, 500.0), (500.3, 500.3)]);
    let far = Polygon::new(ring(t, &[(9000.0, 9000.0), (9100.0, 9000.0), (9100.0, 9100.0)]), vec![]);
    let mp = MultiPolygon(vec![Polygon::new(outer, vec![hole, tiny_hole]), far]);
    assert!(b.layer("areas").add(&mp.into(), None, none()));
    let layers = decode::tile(&b.finish());
    let paths = decode::geometry(&layers[0].features[0].geometry);
    assert_eq!(paths.len(), 2, "exterior and the one real hole: {paths:?}");
    assert!(paths.iter().all(|p| p.closed));
    assert!(area2(&paths[0].points) > 0 && area2(&paths[1].points) < 0);
    assert!(paths[1].points.iter().any(|&p| near(p, (1000.0, 1000.0))));
}

#[test]
fn a_polygon_around_the_tile_becomes_the_buffered_square() {
    let t = central();
    let mut b = builder(t);
    let big = Polygon::new(
        ring(t, &[(-9000.0, -9000.0), (9000.0, -9000.0), (9000.0, 9000.0), (-9000.0, 9000.0)]),
        vec![],
    );
    assert!(b.layer("district").add(&big.into(), None, none()));
    let layers = decode::tile(&b.finish());
    let paths = decode::geometry(&layers[0].features[0].geometry);
    let mut corners = paths[0].points.clone();
    corners.sort_unstable();
    assert_eq!(corners, vec![[-64, -64], [-64, 4160], [4160, -64], [4160, 4160]]);
}

#[test]
fn a_line_leaving_and_coming_back_becomes_a_multi_line() {
    let t = central();
    let mut b = builder(t);
    let (a, c, d, e) = (
        lonlat(t, 100.0, 100.0),
        lonlat(t, 6000.0, 100.0),
        lonlat(t, 6000.0, 300.0),
        lonlat(t, 100.0, 300.0),
    );
    let line = line_string![(x: a.0, y: a.1), (x: c.0, y: c.1), (x: d.0, y: d.1), (x: e.0, y: e.1)];
    assert!(b.layer("roads").add(&line.into(), Some(3), [("name", "Queen's Road".into())]));
    let layers = decode::tile(&b.finish());
    let f = &layers[0].features[0];
    assert_eq!(f.kind, 2);
    let paths = decode::geometry(&f.geometry);
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.iter().all(|p| !p.closed && p.points.len() == 2));
    assert!(near(paths[0].points[0], (100.0, 100.0)) && near(paths[0].points[1], (4160.0, 100.0)));
    assert!(near(paths[1].points[0], (4160.0, 300.0)) && near(paths[1].points[1], (100.0, 300.0)));
}

#[test]
fn keys_and_values_are_written_once() {
    let t = central();
    let mut b = builder(t);
    let features: [(u64, Vec<(&str, PropValue)>); 3] = [
        (10, vec![("name", "Lamppost A".into()), ("height", 9.5.into()), ("smart", true.into())]),
        (11, vec![("name", "Lamppost B".into()), ("height", 9.5.into()), ("smart", true.into())]),
        (12, vec![("name", "Lamppost A".into()), ("floor", (-2i64).into()), ("count", 7u64.into())]),
    ];
    for (i, (id, props)) in features.iter().enumerate() {
        let p = pt(t, 100.0 * i as f64, 50.0);
        assert!(b.layer("lampposts").add(&p.into(), Some(*id), props.clone()));
    }
    let layers = decode::tile(&b.finish());
    let l = &layers[0];
    assert_eq!(l.keys, vec!["name", "height", "smart", "floor", "count"]);
    assert_eq!(l.values.len(), 6, "{:?}", l.values);
    for (f, (id, props)) in l.features.iter().zip(&features) {
        assert_eq!(f.id, Some(*id));
        let got = decode::properties(l, f);
        let want: Vec<(String, Value)> = props
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    PropValue::String(s) => Value::String(s.clone()),
                    PropValue::Int(i) => Value::Sint(*i),
                    PropValue::Uint(u) => Value::Uint(*u),
                    PropValue::Double(d) => Value::Double(*d),
                    PropValue::Bool(b) => Value::Bool(*b),
                };
                (k.to_string(), v)
            })
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn a_key_is_written_once_per_feature() {
    let t = central();
    let mut b = builder(t);
    let props = [("a", PropValue::from(1i64)), ("b", 2i64.into()), ("a", 3i64.into())];
    assert!(b.layer("l").add(&pt(t, 5.0, 5.0).into(), None, props));
    assert!(b.layer("l").add(&pt(t, 6.0, 6.0).into(), None, [("a", PropValue::from(4i64))]));
    let layers = decode::tile(&b.finish());
    let l = &layers[0];
    assert_eq!(
        decode::properties(l, &l.features[0]),
        vec![("a".into(), Value::Sint(1)), ("b".into(), Value::Sint(2))]
    );
    assert_eq!(decode::properties(l, &l.features[1]), vec![("a".into(), Value::Sint(4))]);
}

#[test]
fn a_collection_becomes_one_feature_per_kind() {
    let t = central();
    let mut b = builder(t);
    let gc = GeometryCollection(vec![
        pt(t, 10.0, 10.0).into(),
        Geometry::GeometryCollection(GeometryCollection(vec![pt(t, 20.0, 20.0).into()])),
        Geometry::LineString(ring(t, &[(0.0, 0.0), (100.0, 0.0)])),
        Polygon::new(ring(t, &[(0.0, 0.0), (100.0, 0.0), (100.0, 100.0)]), vec![]).into(),
    ]);
    assert!(b.layer("mixed").add(&Geometry::GeometryCollection(gc), Some(5), [("kind", "site".into())]));
    let layers = decode::tile(&b.finish());
    let l = &layers[0];
    let kinds: Vec<u32> = l.features.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![1, 2, 3]);
    assert!(l.features.iter().all(|f| f.id == Some(5) && f.tags == vec![0, 0]));
    assert_eq!(decode::geometry(&l.features[0].geometry).len(), 2, "both points, the nested one too");
    assert_eq!(decode::geometry(&l.features[1].geometry)[0].points.len(), 3, "the ring as a line, closed");
}

#[test]
fn layers_by_name_in_order_of_first_use() {
    let t = central();
    let mut b = builder(t);
    b.layer("b").add(&pt(t, 1.0, 1.0).into(), None, none());
    b.layer("a").add(&pt(t, 2.0, 2.0).into(), None, none());
    b.layer("b").add(&pt(t, 3.0, 3.0).into(), None, none());
    assert_eq!(b.layer("b").len(), 2);
    assert_eq!(b.layer("b").name(), "b");
    let layers = decode::tile(&b.finish());
    let names: Vec<(&str, usize)> = layers.iter().map(|l| (l.name.as_str(), l.features.len())).collect();
    assert_eq!(names, vec![("b", 2), ("a", 1)]);
}

#[test]
fn lines_are_simpler_at_lower_zoom() {
    // A 2 km street in Kowloon with a 3 m wiggle every 10 m.
    let coords: Vec<(f64, f64)> = (0..=200)
        .map(|i| (114.17 + f64::from(i) * 0.0001, 22.31 + if i % 2 == 0 { 0.0 } else { 0.000_027 }))
        .collect();
    let line = Geometry::LineString(LineString::from(coords.clone()));
    let count = |t: TileId| {
        let mut b = builder(t);
        b.layer("l").add(&line, None, none());
        let layers = decode::tile(&b.finish());
        let f = &layers[0].features[0];
        decode::geometry(&f.geometry).iter().map(|p| p.points.len()).sum::<usize>()
    };
    let z12 = count(tile_at(114.18, 22.31, 12));
    assert!(z12 <= 3, "the wiggle is far below a pixel at zoom 12: {z12} points");
    // At zoom 18 (under 4 cm a unit) every vertex inside the tile stays.
    let t18 = tile_at(114.18, 22.31, 18);
    let [w, s, e, n] = t18.query_bounds_wgs84(DEFAULT_BUFFER, DEFAULT_EXTENT);
    let inside = coords.iter().filter(|&&(x, y)| x >= w && x <= e && y >= s && y <= n).count();
    let z18 = count(t18);
    assert!(inside > 10 && z18 >= inside, "the wiggle shows at zoom 18: {z18} points of {inside}");
}

#[test]
fn broken_coordinates_are_dropped_not_panicked_on() {
    let t = central();
    let mut b = builder(t);
    let l = b.layer("x");
    assert!(!l.add(&Geometry::Point(point!(x: f64::NAN, y: 22.3)), None, none()));
    let bad_line = line_string![(x: 114.15, y: 22.28), (x: f64::INFINITY, y: 22.28)];
    assert!(!l.add(&bad_line.into(), None, none()));
    let bad_poly = polygon![(x: 114.15, y: 22.28), (x: 114.16, y: f64::NAN), (x: 114.16, y: 22.29)];
    assert!(!l.add(&bad_poly.into(), None, none()));
    assert!(!l.add(&Geometry::LineString(LineString::new(vec![])), None, none()));
    assert!(!l.add(&Geometry::Polygon(Polygon::new(LineString::new(vec![]), vec![])), None, none()));
    assert!(b.is_empty());
}

#[test]
fn unusable_extents_are_refused() {
    let t = central();
    assert!(TileBuilder::new(t, 0, 0).is_err());
    assert!(TileBuilder::new(t, 65_537, 0).is_err());
    let e = TileBuilder::new(t, 256, 512).unwrap_err();
    assert_eq!(e.to_string(), "tile extent 256 with buffer 512 is not usable: extent must be 1..=65536 and the buffer at most the extent");
    let b = TileBuilder::new(t, 512, 8).unwrap();
    assert_eq!(b.query_bounds_wgs84(), t.query_bounds_wgs84(64, 4096));
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Build times of tiles over 45,000 random points and 3,000 small polygons over Hong Kong, printed
/// (run with `--release -- --nocapture` for figures); checks only that the tiles hold the features.
#[test]
fn timings_over_hong_kong() {
    let mut rng = Rng(2026);
    // Clustered like the city: half the points around four centres, the rest spread out.
    let centres = [(114.17, 22.30), (114.16, 22.28), (114.23, 22.31), (114.11, 22.37)];
    let points: Vec<(f64, f64)> = (0..45_000)
        .map(|i| {
            if i % 2 == 0 {
                let (cx, cy) = centres[i % 4];
                (cx + (rng.next() - 0.5) * 0.04, cy + (rng.next() - 0.5) * 0.03)
            } else {
                (113.85 + rng.next() * 0.5, 22.17 + rng.next() * 0.35)
            }
        })
        .collect();
    let geoms: Vec<Geometry<f64>> =
        points.iter().map(|&(x, y)| Geometry::Point(point!(x: x, y: y))).collect();
    for z in 12..=16 {
        // Bucket the points by tile, then build the tiles around the first 200 distinct points.
        let mut buckets: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            let t = tile_at(x, y, z);
            buckets.entry((t.x(), t.y())).or_default().push(i);
        }
        let mut times = Vec::new();
        let mut total_features = 0;
        let mut most = 0;
        let mut tiles: Vec<(u32, u32)> = buckets.keys().copied().collect();
        tiles.sort_unstable();
        let step = (tiles.len() / 200).max(1);
        for &(x, y) in tiles.iter().step_by(step) {
            let t = TileId::new(z, x, y).unwrap();
            let [w, s, e, n] = t.query_bounds_wgs84(DEFAULT_BUFFER, DEFAULT_EXTENT);
            let mut found = Vec::new();
            for dx in [-1i64, 0, 1] {
                for dy in [-1i64, 0, 1] {
                    let key = ((i64::from(x) + dx) as u32, (i64::from(y) + dy) as u32);
                    for &i in buckets.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
                        let (px, py) = points[i];
                        if px >= w && px <= e && py >= s && py <= n {
                            found.push(i);
                        }
                    }
                }
            }
            let props: Vec<[(&str, PropValue); 2]> = found
                .iter()
                .map(|i| {
                    [("name", PropValue::String(format!("Hotspot {}", i % 977))), ("ssid", "Wi-Fi.HK".into())]
                })
                .collect();
            let start = std::time::Instant::now();
            let mut b = builder(t);
            let layer = b.layer("hotspots");
            for (&i, props) in found.iter().zip(props) {
                layer.add(&geoms[i], Some(i as u64), props);
            }
            let count = layer.len();
            let bytes = b.finish();
            times.push(start.elapsed());
            assert!(count >= buckets[&(x, y)].len(), "every point of the tile is in it");
            assert!(!bytes.is_empty());
            total_features += count;
            most = most.max(count);
        }
        let sum: std::time::Duration = times.iter().sum();
        times.sort_unstable();
        println!(
            "points z{z}: {} tiles, {} features (most {most} in one), {:.2} us a feature, p50 {:?}, p99 {:?}, max {:?}",
            times.len(),
            total_features,
            sum.as_secs_f64() * 1e6 / total_features.max(1) as f64,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
    }
    // 3,000 building footprints (10-30 m, 5-8 corners) in one zoom-12 tile.
    let t = tile_at(114.17, 22.30, 12);
    let [w, s, e, n] = t.bounds_wgs84();
    let polygons: Vec<Geometry<f64>> = (0..3000)
        .map(|_| {
            let (cx, cy) = (w + rng.next() * (e - w), s + rng.next() * (n - s));
            let size = 0.0001 + rng.next() * 0.0002;
            let corners = 5 + (rng.next() * 4.0) as usize;
            let coords: Vec<(f64, f64)> = (0..corners)
                .map(|k| {
                    let a = k as f64 / corners as f64 * std::f64::consts::TAU;
                    (cx + size * a.cos(), cy + size * a.sin())
                })
                .collect();
            Polygon::new(LineString::from(coords), vec![]).into()
        })
        .collect();
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let start = std::time::Instant::now();
        let mut b = builder(t);
        let layer = b.layer("buildings");
        for (i, g) in polygons.iter().enumerate() {
            layer.add(g, Some(i as u64), [("height", PropValue::Double(10.0 + (i % 50) as f64))]);
        }
        count = layer.len();
        let bytes = b.finish();
        times.push(start.elapsed());
        assert!(!bytes.is_empty());
    }
    times.sort_unstable();
    assert!(count > 2500, "most footprints of 10+ m survive at zoom 12: {count}");
    println!(
        "polygons z12: 3000 footprints, {count} written, p50 {:?}, max {:?}",
        percentile(&times, 0.5),
        times[times.len() - 1]
    );
}

/// Random geometries of every kind, around random tiles at every zoom level, with several extents:
/// whatever goes in, what comes out obeys the specification (checked by the decoder and here).
#[test]
fn random_geometries_give_valid_tiles() {
    let mut rng = Rng(7);
    let mut kinds = [0usize; 4];
    for round in 0..300 {
        let z = (rng.next() * 23.0) as u32;
        let n = 1u32 << z;
        let t = TileId::new(
            z,
            ((rng.next() * f64::from(n)) as u32).min(n - 1),
            ((rng.next() * f64::from(n)) as u32).min(n - 1),
        )
        .unwrap();
        let extent = [256u32, 512, 4096][round % 3];
        let buffer = [0u32, 8, 64][round % 3];
        let mut b = TileBuilder::new(t, extent, buffer).unwrap().with_tolerance([0.0, 0.25, 2.0][round % 3]);
        let [x0, y0, x1, y1] = t.bounds_mercator();
        // A position a random fraction across the tile, from -1 (a tile to the west) to 2.
        let mut at = |spread: f64| {
            let (fx, fy) = (rng.next() * spread * 3.0 - spread, rng.next() * spread * 3.0 - spread);
            let (mx, my) = (x0 + fx * (x1 - x0), y1 - fy * (y1 - y0));
            ((mx / R).to_degrees(), (my / R).sinh().atan().to_degrees())
        };
        let mut geoms: Vec<Geometry<f64>> = Vec::new();
        for _ in 0..20 {
            let mut path =
                |len: usize, spread: f64| -> Vec<(f64, f64)> { (0..len).map(|_| at(spread)).collect() };
            geoms.push(Point::from(path(1, 1.0)[0]).into());
            geoms.push(LineString::from(path(2 + round % 7, 1.0)).into());
            let outer = LineString::from(path(3 + round % 9, 1.0));
            let holes = vec![LineString::from(path(3 + round % 5, 0.5))];
            geoms.push(Polygon::new(outer, holes).into());
            geoms.push(Geometry::GeometryCollection(GeometryCollection(vec![
                MultiPoint(vec![Point::from(path(1, 1.0)[0]), Point::from(path(1, 1.0)[0])]).into(),
                LineString::from(path(4, 1.0)).into(),
            ])));
        }
        for (i, g) in geoms.iter().enumerate() {
            b.layer("random").add(g, Some(i as u64), [("i", PropValue::from(i as u64))]);
        }
        let layers = decode::tile(&b.finish());
        let (lo, hi) = (-(buffer as i32), (extent + buffer) as i32);
        for l in &layers {
            assert_eq!((l.version, l.extent), (2, u64::from(extent)));
            for f in &l.features {
                let paths = decode::geometry(&f.geometry);
                assert!(!paths.is_empty(), "{t}: a feature without geometry");
                for p in &paths {
                    assert!(
                        p.points.iter().all(|q| (lo..=hi).contains(&q[0]) && (lo..=hi).contains(&q[1])),
                        "{t}: {p:?} outside {lo}..={hi}"
                    );
                    if f.kind != 1 {
                        assert!(p.points.windows(2).all(|w| w[0] != w[1]), "{t}: repeated point in {p:?}");
                    }
                }
                kinds[f.kind.min(3) as usize] += 1;
                match f.kind {
                    1 => assert!(paths.iter().all(|p| p.points.len() == 1 && !p.closed)),
                    2 => assert!(paths.iter().all(|p| p.points.len() >= 2 && !p.closed), "{t}: {paths:?}"),
                    3 => {
                        assert!(
                            paths.iter().all(|p| p.closed && p.points.len() >= 3 && area2(&p.points) != 0),
                            "{t}: {paths:?}"
                        );
                        assert!(
                            area2(&paths[0].points) > 0,
                            "{t}: first ring must be an exterior: {paths:?}"
                        );
                    }
                    k => panic!("{t}: geometry type {k}"),
                }
            }
        }
    }
    assert!(kinds[1..].iter().all(|&k| k > 500), "every kind of feature was tried: {kinds:?}");
    println!("features written by kind (points, lines, polygons): {:?}", &kinds[1..]);
}
