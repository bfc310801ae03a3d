//! Finds the point coordinate columns of a table from column names and value ranges, so a CSV or
//! spreadsheet with latitude/longitude or Hong Kong 1980 Grid easting/northing columns becomes a
//! spatial dataset by itself.
//!
//! Names are read case-insensitively, ignoring units, punctuation, CRS labels and bilingual
//! additions (`Easting (m)`, `Easting 東行`, `LATITUDE(N)`, `lat_wgs84`, `decimalLongitude`):
//! - latitude: `lat`, `latitude`, `緯度`/`纬度`, `北緯`/`北纬`; longitude: `lon`, `lng`, `long`,
//!   `longitude`, `經度`/`经度`, `東經`/`东经`;
//! - easting: `easting`, `東行`/`东行`, `東距`/`东距`; northing: `northing`, `北行`, `北距`;
//! - `x` and `y` alone (with only units or CRS labels beside them), accepted only when the values
//!   fit Hong Kong in WGS 84 or in the HK1980 grid.
//!
//! Ranges decide the CRS and the plausibility: WGS 84 lon/lat anywhere is accepted from lat/lon
//! names, Hong Kong (lon 113.7..114.6, lat 22.0..22.7) preferred; easting/northing must fit the
//! HK1980 grid (E 790000..875000, N 795000..855000).
//!
//! **Invariant:** never a guess. When two pairs are equally plausible, or the names promise
//! coordinates that the values contradict, the answer is [`Detection::Undecided`] with a reason the
//! publisher can show, and the dataset's metadata can name the columns instead. One documented
//! preference: a latitude/longitude pair in Hong Kong wins over an easting/northing pair in the
//! grid (government tables often carry both for the same place; WGS 84 needs no transform).

use geo_types::Point;

use crate::crs::{to_wgs84, Crs};
use crate::geometry::Geometry;
use crate::GeoError;

/// What the detector needs to know about one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    /// The column's name as in the table.
    pub name: String,
    /// Its numeric values' range, `None` when the column is not numeric or has no value.
    pub numeric: Option<NumericStats>,
}

/// The range of a numeric column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericStats {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many non-null values the column has.
    pub count: u64,
}

/// The two columns that hold a point, and their CRS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointColumns {
    /// The east coordinate's column: longitude or easting.
    pub x: String,
    /// The north coordinate's column: latitude or northing.
    pub y: String,
    /// [`Crs::Crs84`] for longitude/latitude, [`Crs::Hk1980`] for easting/northing.
    pub crs: Crs,
}

/// The detector's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// One pair of columns is the most plausible.
    Found(PointColumns),
    /// No column name looks like a coordinate: not a point table.
    Absent,
    /// Some columns look like coordinates, but none or several pairs fit; the reason says which
    /// and why.
    Undecided {
        /// For the publisher's report.
        reason: String,
    },
}

impl Detection {
    /// The columns found, if any.
    pub fn columns(&self) -> Option<&PointColumns> {
        match self {
            Detection::Found(p) => Some(p),
            _ => None,
        }
    }
}

impl PointColumns {
    /// The point of one row's values, in WGS 84 (longitude, latitude). Errors when a value is not
    /// finite or the point falls outside WGS 84's ranges (or, for HK1980, far outside the grid).
    pub fn point(&self, x: f64, y: f64) -> Result<Geometry, GeoError> {
        let bad = |message: &str| GeoError::InvalidPoint {
            x_column: self.x.clone(),
            y_column: self.y.clone(),
            x,
            y,
            message: message.to_string(),
        };
        if !x.is_finite() || !y.is_finite() {
            return Err(bad("coordinates must be finite numbers"));
        }
        if self.crs == Crs::Hk1980 && !(fits(x, GRID_E) && fits(y, GRID_N)) {
            return Err(bad(
                "outside the Hong Kong 1980 Grid (easting 790000..875000, northing 795000..855000)",
            ));
        }
        let (lon, lat) = to_wgs84(self.crs, x, y);
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return Err(bad("outside longitude -180..180 and latitude -90..90"));
        }
        Ok(Geometry::Point(Point::new(lon, lat)))
    }
}

const HK_LON: (f64, f64) = (113.7, 114.6);
const HK_LAT: (f64, f64) = (22.0, 22.7);
const GRID_E: (f64, f64) = (790_000.0, 875_000.0);
const GRID_N: (f64, f64) = (795_000.0, 855_000.0);

fn fits(v: f64, r: (f64, f64)) -> bool {
    v >= r.0 && v <= r.1
}

fn range_fits(s: &NumericStats, r: (f64, f64)) -> bool {
    fits(s.min, r) && fits(s.max, r)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Lat,
    Lon,
    Easting,
    Northing,
    X,
    Y,
}

const LAT_WORDS: [&str; 2] = ["lat", "latitude"];
const LON_WORDS: [&str; 5] = ["lon", "lng", "long", "longitude", "longtitude"];
const EASTING_WORDS: [&str; 2] = ["easting", "eastings"];
const NORTHING_WORDS: [&str; 2] = ["northing", "northings"];
const LAT_CJK: [&str; 4] = ["緯度", "纬度", "北緯", "北纬"];
const LON_CJK: [&str; 4] = ["經度", "经度", "東經", "东经"];
const EASTING_CJK: [&str; 4] = ["東行", "东行", "東距", "东距"];
const NORTHING_CJK: [&str; 2] = ["北行", "北距"];
/// Words that may stand beside `x`/`y` without changing what the column is.
const NEUTRAL: [&str; 34] = [
    "m",
    "metre",
    "metres",
    "meter",
    "meters",
    "deg",
    "degree",
    "degrees",
    "dd",
    "decimal",
    "wgs84",
    "wgs",
    "84",
    "hk1980",
    "hk80",
    "hk",
    "1980",
    "grid",
    "epsg",
    "2326",
    "4326",
    "coord",
    "coords",
    "coordinate",
    "coordinates",
    "value",
    "坐標",
    "座標",
    "坐标",
    "座标",
    "米",
    "度",
    "n",
    "e",
];

/// Splits a column name into lowercase words: at punctuation and blanks, between Latin and other
/// scripts, and at lower-to-upper case changes (`decimalLatitude`).
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for ch in name.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let script_change = p.is_ascii() != ch.is_ascii();
            let camel = p.is_lowercase() && ch.is_uppercase();
            if (script_change || camel) && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(ch.to_lowercase());
        prev = Some(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The coordinate role a column name announces, if exactly one.
fn role(name: &str) -> Option<Role> {
    let ws = words(name);
    let mut roles: Vec<Role> = Vec::new();
    fn add(roles: &mut Vec<Role>, r: Role) {
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    for w in &ws {
        let w = w.as_str();
        if LAT_WORDS.contains(&w) || w.ends_with("latitude") {
            add(&mut roles, Role::Lat);
        }
        if LON_WORDS.contains(&w) || w.ends_with("longitude") {
            add(&mut roles, Role::Lon);
        }
        if EASTING_WORDS.contains(&w) {
            add(&mut roles, Role::Easting);
        }
        if NORTHING_WORDS.contains(&w) {
            add(&mut roles, Role::Northing);
        }
        let has = |list: &[&str]| list.iter().any(|k| w.contains(k));
        if has(&LAT_CJK) {
            add(&mut roles, Role::Lat);
        }
        if has(&LON_CJK) {
            add(&mut roles, Role::Lon);
        }
        if has(&EASTING_CJK) {
            add(&mut roles, Role::Easting);
        }
        if has(&NORTHING_CJK) {
            add(&mut roles, Role::Northing);
        }
    }
    if roles.is_empty() {
        let rest: Vec<&str> = ws.iter().map(String::as_str).filter(|w| !NEUTRAL.contains(w)).collect();
        match rest.as_slice() {
            ["x"] => add(&mut roles, Role::X),
            ["y"] => add(&mut roles, Role::Y),
            _ => {}
        }
    }
    match roles.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    LatLon,
    EastNorth,
    Xy,
}

struct Candidate<'a> {
    x: &'a ColumnStats,
    y: &'a ColumnStats,
    score: u8,
    crs: Crs,
}

/// Finds the point columns of a table. See the module documentation for the rules.
pub fn detect_point_columns(columns: &[ColumnStats]) -> Detection {
    let by_role =
        |r: Role| -> Vec<&ColumnStats> { columns.iter().filter(|c| role(&c.name) == Some(r)).collect() };
    let pairs = [
        (Naming::LatLon, by_role(Role::Lon), by_role(Role::Lat)),
        (Naming::EastNorth, by_role(Role::Easting), by_role(Role::Northing)),
        (Naming::Xy, by_role(Role::X), by_role(Role::Y)),
    ];
    let mut named_any = false;
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for (naming, xs, ys) in &pairs {
        if xs.is_empty() || ys.is_empty() {
            continue;
        }
        named_any = true;
        for x in xs {
            for y in ys {
                match judge(*naming, x, y) {
                    Ok((score, crs)) => candidates.push(Candidate { x, y, score, crs }),
                    Err(p) => problems.push(p),
                }
            }
        }
    }
    if !named_any {
        return Detection::Absent;
    }
    let Some(best) = candidates.iter().map(|c| c.score).max() else {
        return Detection::Undecided { reason: problems.join("; ") };
    };
    let top: Vec<&Candidate<'_>> = candidates.iter().filter(|c| c.score == best).collect();
    if let [only] = top.as_slice() {
        return Detection::Found(PointColumns {
            x: only.x.name.clone(),
            y: only.y.name.clone(),
            crs: only.crs,
        });
    }
    let listed: Vec<String> = top.iter().map(|c| format!("({}, {})", c.x.name, c.y.name)).collect();
    Detection::Undecided {
        reason: format!(
            "{} pairs of columns are equally plausible point coordinates: {}; name the point columns \
             in the dataset's metadata",
            top.len(),
            listed.join(", ")
        ),
    }
}

/// Whether a named pair holds plausible coordinates: `(score, crs)`, or why not. Higher scores are
/// more plausible: 4 lat/lon in Hong Kong, 3 easting/northing in the grid, 2 x/y in Hong Kong
/// (either CRS), 1 lat/lon elsewhere on Earth.
fn judge(naming: Naming, x: &ColumnStats, y: &ColumnStats) -> Result<(u8, Crs), String> {
    let pair = format!("({}, {})", x.name, y.name);
    let (xs, ys) = match (&x.numeric, &y.numeric) {
        (Some(a), Some(b)) if a.count > 0 && b.count > 0 => (a, b),
        _ => {
            let not: Vec<&str> = [x, y]
                .iter()
                .filter(|c| c.numeric.is_none_or(|s| s.count == 0))
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!("{pair}: {} not numeric", not.join(" and ")));
        }
    };
    let hk_wgs = range_fits(xs, HK_LON) && range_fits(ys, HK_LAT);
    let grid = range_fits(xs, GRID_E) && range_fits(ys, GRID_N);
    let world = range_fits(xs, (-180.0, 180.0)) && range_fits(ys, (-90.0, 90.0));
    let show = |s: &NumericStats| format!("{}..{}", s.min, s.max);
    match naming {
        Naming::LatLon if hk_wgs => Ok((4, Crs::Crs84)),
        Naming::LatLon if world => Ok((1, Crs::Crs84)),
        Naming::LatLon if range_fits(ys, HK_LON) && range_fits(xs, HK_LAT) => Err(format!(
            "{pair}: the values look swapped ({} holds {}, a longitude; {} holds {}, a latitude)",
            y.name,
            show(ys),
            x.name,
            show(xs)
        )),
        Naming::LatLon => Err(format!(
            "{pair}: longitude {} or latitude {} outside -180..180 / -90..90",
            show(xs),
            show(ys)
        )),
        Naming::EastNorth if grid => Ok((3, Crs::Hk1980)),
        Naming::EastNorth => Err(format!(
            "{pair}: easting {} / northing {} do not fit the Hong Kong 1980 Grid (about 800000..870000 / \
             800000..850000)",
            show(xs),
            show(ys)
        )),
        Naming::Xy if hk_wgs => Ok((2, Crs::Crs84)),
        Naming::Xy if grid => Ok((2, Crs::Hk1980)),
        Naming::Xy => Err(format!(
            "{pair}: x {} / y {} fit neither Hong Kong's longitude/latitude nor the Hong Kong 1980 Grid",
            show(xs),
            show(ys)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(name: &str, min: f64, max: f64) -> ColumnStats {
        ColumnStats { name: name.to_string(), numeric: Some(NumericStats { min, max, count: 10 }) }
    }

    fn text(name: &str) -> ColumnStats {
        ColumnStats { name: name.to_string(), numeric: None }
    }

    fn found(x: &str, y: &str, crs: Crs) -> Detection {
        Detection::Found(PointColumns { x: x.to_string(), y: y.to_string(), crs })
    }

    #[test]
    fn name_roles() {
        let cases = [
            ("Easting (m)", Some(Role::Easting)),
            ("Easting 東行", Some(Role::Easting)),
            ("東行", Some(Role::Easting)),
            ("东距(米)", Some(Role::Easting)),
            ("Northing北行", Some(Role::Northing)),
            ("LATITUDE", Some(Role::Lat)),
            ("LATITUDE(N)", Some(Role::Lat)),
            ("lat_wgs84", Some(Role::Lat)),
            ("decimalLatitude", Some(Role::Lat)),
            ("緯度", Some(Role::Lat)),
            ("北緯", Some(Role::Lat)),
            ("Longitude 經度", Some(Role::Lon)),
            ("lng", Some(Role::Lon)),
            ("LONGITUDE(E)", Some(Role::Lon)),
            ("東經", Some(Role::Lon)),
            ("X", Some(Role::X)),
            ("x_coord", Some(Role::X)),
            ("X (HK1980 Grid)", Some(Role::X)),
            ("Y坐標", Some(Role::Y)),
            ("Type X", None),
            ("Lat/Long", None),
            ("Easting/Northing", None),
            ("Facility Name", None),
            ("GMID", None),
            ("Year", None),
        ];
        for (name, want) in cases {
            assert_eq!(role(name), want, "{name}");
        }
    }

    /// The columns of the government's weather station dataset, with its real ranges: LATITUDE(N)
    /// and LONGITUDE(E) hold degree-minute-second text, so the grid pair is the one.
    #[test]
    fn real_weather_station_columns() {
        let cols = vec![
            text("GMID"),
            num("Northing", 804859.0, 843207.0),
            num("Easting", 806831.0, 855172.0),
            text("Facility Name"),
            text("設施名稱"),
            text("LATITUDE(N)"),
            text("北緯"),
            text("LONGITUDE(E)"),
            text("東經"),
            num("Elevation of ground above mean sea-level (metres)", 2.0, 955.0),
            num("地面海拔高度 (米)", 2.0, 955.0),
        ];
        assert_eq!(detect_point_columns(&cols), found("Easting", "Northing", Crs::Hk1980));
    }

    #[test]
    fn real_lamppost_columns() {
        let cols = vec![
            text("GMID"),
            num("Northing", 819451.0, 821552.0),
            num("Easting", 839115.0, 841313.0),
            text("Positioning services - Geo-marker"),
            text("定位服務 - 地理標記"),
        ];
        assert_eq!(detect_point_columns(&cols), found("Easting", "Northing", Crs::Hk1980));
    }

    #[test]
    fn chinese_and_bilingual_names() {
        let cols = vec![num("緯度", 22.2, 22.5), num("經度", 113.9, 114.3), text("名稱")];
        assert_eq!(detect_point_columns(&cols), found("經度", "緯度", Crs::Crs84));
        let cols = vec![num("東行 Easting", 830000.0, 840000.0), num("北行 Northing", 815000.0, 820000.0)];
        assert_eq!(detect_point_columns(&cols), found("東行 Easting", "北行 Northing", Crs::Hk1980));
        let cols = vec![num("东距", 830000.0, 840000.0), num("北距", 815000.0, 820000.0)];
        assert_eq!(detect_point_columns(&cols), found("东距", "北距", Crs::Hk1980));
    }

    #[test]
    fn lat_lon_in_hong_kong_beats_the_grid_pair() {
        let cols = vec![
            num("Easting", 830000.0, 840000.0),
            num("Northing", 815000.0, 820000.0),
            num("Latitude", 22.2, 22.5),
            num("Longitude", 113.9, 114.3),
        ];
        assert_eq!(detect_point_columns(&cols), found("Longitude", "Latitude", Crs::Crs84));
    }

    #[test]
    fn x_y_only_when_ranges_decide() {
        let cols = vec![num("X", 830000.0, 840000.0), num("Y", 815000.0, 820000.0)];
        assert_eq!(detect_point_columns(&cols), found("X", "Y", Crs::Hk1980));
        let cols = vec![num("x", 113.9, 114.3), num("y", 22.2, 22.5)];
        assert_eq!(detect_point_columns(&cols), found("x", "y", Crs::Crs84));
        let cols = vec![num("x", 0.0, 10.0), num("y", 0.0, 10.0)];
        let got = detect_point_columns(&cols);
        assert!(matches!(&got, Detection::Undecided { reason } if reason.contains("fit neither")), "{got:?}");
    }

    #[test]
    fn lat_lon_anywhere_accepted_hong_kong_preferred() {
        let cols = vec![num("lat", 51.3, 51.7), num("lon", -0.5, 0.3)];
        assert_eq!(detect_point_columns(&cols), found("lon", "lat", Crs::Crs84));
        let cols =
            vec![num("lat", 51.3, 51.7), num("lon", -0.5, 0.3), num("x", 113.9, 114.3), num("y", 22.2, 22.5)];
        assert_eq!(detect_point_columns(&cols), found("x", "y", Crs::Crs84));
    }

    #[test]
    fn never_guesses_between_equal_pairs() {
        let cols = vec![
            num("Latitude", 22.2, 22.5),
            num("Longitude", 113.9, 114.3),
            num("緯度", 22.2, 22.5),
            num("經度", 113.9, 114.3),
        ];
        let got = detect_point_columns(&cols);
        match &got {
            Detection::Undecided { reason } => {
                assert!(reason.contains("4 pairs") && reason.contains("(經度, 緯度)"), "{reason}")
            }
            other => panic!("expected Undecided, got {other:?}"),
        }
        assert_eq!(got.columns(), None);
    }

    #[test]
    fn contradicting_values_are_explained() {
        let cols = vec![num("lat", 113.9, 114.3), num("lon", 22.2, 22.5)];
        let got = detect_point_columns(&cols);
        assert!(matches!(&got, Detection::Undecided { reason } if reason.contains("swapped")), "{got:?}");
        let cols = vec![num("Easting", 0.0, 100.0), num("Northing", 0.0, 100.0)];
        let got = detect_point_columns(&cols);
        assert!(
            matches!(&got, Detection::Undecided { reason } if reason.contains("do not fit the Hong Kong 1980 Grid")),
            "{got:?}"
        );
        let cols = vec![text("LATITUDE(N)"), text("LONGITUDE(E)")];
        let got = detect_point_columns(&cols);
        assert!(matches!(&got, Detection::Undecided { reason } if reason.contains("not numeric")), "{got:?}");
        assert_eq!(detect_point_columns(&[num("Latitude", 22.2, 22.5)]), Detection::Absent);
        assert_eq!(detect_point_columns(&[text("Name"), num("Count", 1.0, 9.0)]), Detection::Absent);
    }

    #[test]
    fn point_gives_wgs84_lon_lat() {
        let grid = PointColumns { x: "Easting".into(), y: "Northing".into(), crs: Crs::Hk1980 };
        // Causeway Bay air quality station: published as 837114 E, 815695 N and 114.18509009 E,
        // 22.28013296 N (the grid figures are whole metres).
        let Geometry::Point(p) = grid.point(837114.0, 815695.0).unwrap() else { panic!("not a point") };
        assert!((p.x() - 114.18509009).abs() < 2e-5 && (p.y() - 22.28013296).abs() < 2e-5, "{p:?}");
        let err = grid.point(114.18, 22.28).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("Easting") && err.contains("outside the Hong Kong 1980 Grid"), "{err}");
        let wgs = PointColumns { x: "lon".into(), y: "lat".into(), crs: Crs::Crs84 };
        assert_eq!(wgs.point(114.1, 22.3).ok(), Some(Geometry::Point(Point::new(114.1, 22.3))));
        assert!(wgs.point(f64::NAN, 22.3).is_err());
        assert!(wgs.point(22.3, 114.1).is_err());
    }
}
