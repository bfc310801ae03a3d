//! GeoJSON geometries: read with structural checks, transformed between CRSs, checked against
//! WGS 84 ranges, written compactly, and compared (spatial predicates, bounding boxes, distance).
//!
//! The in-memory type is [`geo_types::Geometry<f64>`] (re-exported as [`Geometry`]).
//!
//! **Invariants:**
//! - [`parse_geojson`] only returns geometries whose coordinates are finite, whose line strings have
//!   at least 2 positions and whose polygon rings are closed with at least 4; it refuses a geometry of
//!   more than [`MAX_POSITIONS`] positions or with geometry collections nested deeper than
//!   [`MAX_NESTING`], so its work is bounded by the size of its input.
//! - Coordinates are x = east (longitude or easting), y = north everywhere in memory; the EPSG axis
//!   order is applied only when writing ([`write_geojson`]'s `swap_axes`).
//! - Nothing here panics on any input.

use std::fmt::Write as _;

use geo::{BoundingRect, Contains, Intersects, MapCoordsInPlace, Relate};
use geo_types::{Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use serde_json::Value;

use crate::crs::{transform_point, Crs, WGS84_A, WGS84_F};
use crate::GeoError;

/// The geometry type used throughout citydata (x = east, y = north).
pub type Geometry = geo_types::Geometry<f64>;

/// The most positions one geometry may have (a large building footprint has thousands; a
/// coastline polygon a few hundred thousand).
pub const MAX_POSITIONS: usize = 5_000_000;
/// The deepest nesting of GeometryCollections accepted (RFC 7946 discourages any).
pub const MAX_NESTING: usize = 8;

/// Where in a geometry object a problem is: a chain of members and indexes, rendered only on error.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    seg: Seg<'a>,
}

impl<'a> Loc<'a> {
    fn key(&'a self, k: &'a str) -> Loc<'a> {
        Loc { parent: Some(self), seg: Seg::Key(k) }
    }
    fn index(&'a self, i: usize) -> Loc<'a> {
        Loc { parent: Some(self), seg: Seg::Index(i) }
    }
    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(l) = cur {
            segs.push(l.seg);
            cur = l.parent;
        }
        let mut out = String::new();
        for s in segs.iter().rev() {
            match s {
                Seg::Root => {}
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
    fn err(&self, message: impl Into<String>) -> GeoError {
        GeoError::InvalidGeometry { at: self.render(), message: message.into() }
    }
}

struct Parser {
    positions: usize,
    max_positions: usize,
}

/// Reads a GeoJSON geometry object (RFC 7946): Point, MultiPoint, LineString, MultiLineString,
/// Polygon, MultiPolygon or GeometryCollection. Positions may carry a third and a fourth number
/// (elevation, measure), which are checked and dropped. Multi-geometries and collections may be empty; other types may not.
///
/// Errors name the place (`coordinates[1][4]`, `geometries[2].coordinates`) and the problem.
pub fn parse_geojson(value: &Value) -> Result<Geometry, GeoError> {
    parse_bounded(value, MAX_POSITIONS)
}

fn parse_bounded(value: &Value, max_positions: usize) -> Result<Geometry, GeoError> {
    let root = Loc { parent: None, seg: Seg::Root };
    Parser { positions: 0, max_positions }.geometry(value, &root, 0)
}

impl Parser {
    fn geometry(&mut self, v: &Value, at: &Loc<'_>, depth: usize) -> Result<Geometry, GeoError> {
        let obj = v.as_object().ok_or_else(|| {
            at.err(format!("a geometry must be a JSON object with \"type\", found {}", kind(v)))
        })?;
        let ty = match obj.get("type") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(at.key("type").err(format!("must be a string, found {}", kind(other))))
            }
            None => return Err(at.err("geometry has no \"type\" member")),
        };
        if ty == "GeometryCollection" {
            if depth >= MAX_NESTING {
                return Err(at.err(format!("GeometryCollections nested more than {MAX_NESTING} deep")));
            }
            let at_g = at.key("geometries");
            let list = match obj.get("geometries") {
                Some(Value::Array(a)) => a,
                Some(other) => return Err(at_g.err(format!("must be an array, found {}", kind(other)))),
                None => return Err(at.err("GeometryCollection has no \"geometries\" member")),
            };
            let mut out = Vec::with_capacity(list.len());
            for (i, g) in list.iter().enumerate() {
                out.push(self.geometry(g, &at_g.index(i), depth + 1)?);
            }
            return Ok(Geometry::GeometryCollection(geo_types::GeometryCollection(out)));
        }
        let at_c = at.key("coordinates");
        let c = match obj.get("coordinates") {
            Some(c) => c,
            None if matches!(
                ty,
                "Point" | "MultiPoint" | "LineString" | "MultiLineString" | "Polygon" | "MultiPolygon"
            ) =>
            {
                return Err(at.err(format!("{ty} has no \"coordinates\" member")))
            }
            None => return Err(unknown_type(ty, at)),
        };
        Ok(match ty {
            "Point" => Geometry::Point(Point(self.position(c, &at_c)?)),
            "MultiPoint" => {
                let list = array(c, &at_c)?;
                let mut pts = Vec::with_capacity(list.len());
                for (i, p) in list.iter().enumerate() {
                    pts.push(Point(self.position(p, &at_c.index(i))?));
                }
                Geometry::MultiPoint(MultiPoint(pts))
            }
            "LineString" => Geometry::LineString(self.line(c, &at_c)?),
            "MultiLineString" => {
                let list = array(c, &at_c)?;
                let mut lines = Vec::with_capacity(list.len());
                for (i, l) in list.iter().enumerate() {
                    lines.push(self.line(l, &at_c.index(i))?);
                }
                Geometry::MultiLineString(MultiLineString(lines))
            }
            "Polygon" => Geometry::Polygon(self.polygon(c, &at_c)?),
            "MultiPolygon" => {
                let list = array(c, &at_c)?;
                let mut polys = Vec::with_capacity(list.len());
                for (i, p) in list.iter().enumerate() {
                    polys.push(self.polygon(p, &at_c.index(i))?);
                }
                Geometry::MultiPolygon(MultiPolygon(polys))
            }
            other => return Err(unknown_type(other, at)),
        })
    }

    fn position(&mut self, v: &Value, at: &Loc<'_>) -> Result<Coord<f64>, GeoError> {
        self.positions += 1;
        if self.positions > self.max_positions {
            return Err(at.err(format!("geometry has more than {} positions", self.max_positions)));
        }
        let a = match v {
            Value::Array(a) => a,
            other => {
                return Err(at.err(format!("a position must be an array of numbers, found {}", kind(other))))
            }
        };
        if a.len() < 2 || a.len() > 4 {
            let n = a.len();
            let what = match at.seg {
                Seg::Index(i) => format!("position {i}"),
                _ => "the position".to_string(),
            };
            let s = if n == 1 { "" } else { "s" };
            return Err(at.err(format!("{what} has {n} number{s}; a position needs 2 (x, y) to 4")));
        }
        let num = |i: usize| -> Result<f64, GeoError> {
            match a[i].as_f64() {
                Some(x) if x.is_finite() => Ok(x),
                Some(_) => Err(at.index(i).err("coordinates must be finite numbers")),
                None => {
                    Err(at.index(i).err(format!("coordinates must be finite numbers, found {}", kind(&a[i]))))
                }
            }
        };
        let (x, y) = (num(0)?, num(1)?);
        for i in 2..a.len() {
            num(i)?;
        }
        Ok(Coord { x, y })
    }

    fn positions(&mut self, v: &Value, at: &Loc<'_>) -> Result<Vec<Coord<f64>>, GeoError> {
        let list = array(v, at)?;
        let mut out = Vec::with_capacity(list.len().min(self.max_positions));
        for (i, p) in list.iter().enumerate() {
            out.push(self.position(p, &at.index(i))?);
        }
        Ok(out)
    }

    fn line(&mut self, v: &Value, at: &Loc<'_>) -> Result<LineString<f64>, GeoError> {
        let pts = self.positions(v, at)?;
        if pts.len() < 2 {
            return Err(at.err(format!("LineString needs at least 2 positions, found {}", pts.len())));
        }
        Ok(LineString(pts))
    }

    fn polygon(&mut self, v: &Value, at: &Loc<'_>) -> Result<Polygon<f64>, GeoError> {
        let list = array(v, at)?;
        if list.is_empty() {
            return Err(at.err("Polygon needs at least one ring (the exterior)"));
        }
        let mut rings = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let at_r = at.index(i);
            let pts = self.positions(r, &at_r)?;
            if pts.len() < 4 {
                return Err(at_r.err(format!(
                    "polygon ring {i} needs at least 4 positions (a closed triangle), found {}",
                    pts.len()
                )));
            }
            if pts.first() != pts.last() {
                return Err(
                    at_r.err(format!("polygon ring {i} is not closed: its first and last positions differ"))
                );
            }
            rings.push(LineString(pts));
        }
        let mut rings = rings.into_iter();
        let exterior = rings.next().unwrap_or_else(|| LineString(Vec::new()));
        Ok(Polygon::new(exterior, rings.collect()))
    }
}

fn array<'v>(v: &'v Value, at: &Loc<'_>) -> Result<&'v Vec<Value>, GeoError> {
    v.as_array().ok_or_else(|| at.err(format!("must be an array, found {}", kind(v))))
}

fn unknown_type(ty: &str, at: &Loc<'_>) -> GeoError {
    let hint = match ty {
        "Feature" => " (pass the feature's \"geometry\" member)",
        "FeatureCollection" => " (pass each feature's \"geometry\" member)",
        _ => "",
    };
    at.key("type").err(format!(
        "unknown geometry type {ty:?}{hint}; expected Point, MultiPoint, LineString, MultiLineString, \
         Polygon, MultiPolygon or GeometryCollection"
    ))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads the pre-2016 GeoJSON `crs` member of a FeatureCollection, Feature or geometry:
/// `{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2326"}}`. `Ok(None)` when there
/// is none (or it is null): RFC 7946 GeoJSON is always CRS84.
///
/// The coordinates of such a file are x = east, y = north whatever CRS is named (GeoJSON's own
/// rule, and how GDAL writes and reads it): `EPSG:4326` or `EPSG:2326` here names the datum and
/// projection, not an axis order, so read with [`parse_geojson`] and [`transform`] from the CRS
/// returned, without swapping.
pub fn legacy_crs(value: &Value) -> Result<Option<Crs>, GeoError> {
    let crs = match value.get("crs") {
        None | Some(Value::Null) => return Ok(None),
        Some(c) => c,
    };
    let bad = |m: &str| GeoError::InvalidCrsMember(m.to_string());
    match crs.get("type").and_then(Value::as_str) {
        Some("name") => {}
        Some("link") => return Err(bad("a linked crs (\"type\": \"link\") is not supported; name the CRS")),
        Some(other) => return Err(bad(&format!("unknown crs type {other:?}; expected \"name\""))),
        None => return Err(bad("the crs member needs \"type\": \"name\"")),
    }
    let name = crs
        .get("properties")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the crs member needs \"properties\": {\"name\": ...}"))?;
    Crs::from_uri(name).map(Some)
}

/// Checks the geometry against the OGC Simple Features validity rules (rings that do not cross
/// themselves or each other, holes inside their exterior, polygons of a MultiPolygon that do not
/// overlap, ...). [`parse_geojson`] checks structure only; this checks topology, at a cost that
/// grows faster than the number of positions, so the publish pipeline runs it once per record.
pub fn validate(geom: &Geometry) -> Result<(), GeoError> {
    use geo::Validation;
    geom.check_validation().map_err(|e| GeoError::InvalidTopology(e.to_string()))
}

/// Transforms every coordinate of a geometry from one CRS to another (x = east, y = north on both
/// sides). A no-op between CRS84 and EPSG:4326 (the axis order is not a transform).
pub fn transform(geom: &mut Geometry, from: Crs, to: Crs) {
    if from == to || (from.is_geographic() && to.is_geographic()) {
        return;
    }
    geom.map_coords_in_place(|c| {
        let (x, y) = transform_point(from, to, c.x, c.y);
        Coord { x, y }
    });
}

/// Checks that every coordinate is a WGS 84 longitude (-180..180) and latitude (-90..90). The
/// error names the first coordinate outside and, when the values look like Hong Kong 1980 Grid
/// metres or swapped latitude/longitude, says so.
pub fn check_wgs84(geom: &Geometry) -> Result<(), GeoError> {
    use geo::CoordsIter;
    for (index, c) in geom.coords_iter().enumerate() {
        if (-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y) {
            continue;
        }
        let hint = if (780_000.0..=890_000.0).contains(&c.x) && (780_000.0..=870_000.0).contains(&c.y) {
            "; the values look like Hong Kong 1980 Grid easting and northing (EPSG:2326): declare the \
             CRS (a \"crs\" member naming urn:ogc:def:crs:EPSG::2326, or the dataset's CRS setting)"
        } else if (-90.0..=90.0).contains(&c.x) && (-180.0..=180.0).contains(&c.y) {
            "; the values look like latitude, longitude in that order: GeoJSON puts longitude first"
        } else if c.x.abs() <= 20_037_509.0 && c.y.abs() <= 20_037_509.0 {
            "; the values look like metres of a projected CRS: declare the CRS"
        } else {
            ""
        };
        return Err(GeoError::NotWgs84 { index, x: c.x, y: c.y, hint: hint.to_string() });
    }
    Ok(())
}

/// Writes a geometry as compact GeoJSON: numbers in plain decimal notation (never exponents) with at
/// most `decimals` decimals and trailing zeros trimmed (7 keeps about a centimetre in degrees, 3 a
/// millimetre in metres). `swap_axes` writes y before x (for EPSG:4326 and EPSG:2326 output in the
/// EPSG axis order). `Line`, `Rect` and `Triangle` are written as LineString and Polygon.
/// Non-finite numbers (never produced by [`parse_geojson`]) are written as `null`.
pub fn write_geojson(geom: &Geometry, decimals: u32, swap_axes: bool, out: &mut String) {
    let w = Writer { decimals: decimals.min(15) as usize, swap: swap_axes };
    w.geometry(geom, out);
}

struct Writer {
    decimals: usize,
    swap: bool,
}

impl Writer {
    fn geometry(&self, g: &Geometry, out: &mut String) {
        let head = |out: &mut String, ty: &str| {
            out.push_str("{\"type\":\"");
            out.push_str(ty);
            out.push_str("\",\"coordinates\":");
        };
        match g {
            Geometry::Point(p) => {
                head(out, "Point");
                self.coord(p.0, out);
            }
            Geometry::MultiPoint(mp) => {
                head(out, "MultiPoint");
                self.list(mp.0.iter(), out, |p, out| self.coord(p.0, out));
            }
            Geometry::Line(l) => {
                head(out, "LineString");
                self.list([l.start, l.end].iter(), out, |c, out| self.coord(*c, out));
            }
            Geometry::LineString(ls) => {
                head(out, "LineString");
                self.line(ls, out);
            }
            Geometry::MultiLineString(ml) => {
                head(out, "MultiLineString");
                self.list(ml.0.iter(), out, |l, out| self.line(l, out));
            }
            Geometry::Polygon(p) => {
                head(out, "Polygon");
                self.polygon(p, out);
            }
            Geometry::MultiPolygon(mp) => {
                head(out, "MultiPolygon");
                self.list(mp.0.iter(), out, |p, out| self.polygon(p, out));
            }
            Geometry::Rect(r) => {
                head(out, "Polygon");
                self.polygon(&r.to_polygon(), out);
            }
            Geometry::Triangle(t) => {
                head(out, "Polygon");
                self.polygon(&t.to_polygon(), out);
            }
            Geometry::GeometryCollection(gc) => {
                out.push_str("{\"type\":\"GeometryCollection\",\"geometries\":");
                self.list(gc.0.iter(), out, |g, out| self.geometry(g, out));
            }
        }
        out.push('}');
    }

    fn list<'a, T: 'a>(
        &self,
        items: impl Iterator<Item = &'a T>,
        out: &mut String,
        mut each: impl FnMut(&'a T, &mut String),
    ) {
        out.push('[');
        for (i, it) in items.enumerate() {
            if i > 0 {
                out.push(',');
            }
            each(it, out);
        }
        out.push(']');
    }

    fn line(&self, l: &LineString<f64>, out: &mut String) {
        self.list(l.0.iter(), out, |c, out| self.coord(*c, out));
    }

    fn polygon(&self, p: &Polygon<f64>, out: &mut String) {
        if p.exterior().0.is_empty() {
            out.push_str("[]");
            return;
        }
        out.push('[');
        self.line(p.exterior(), out);
        for r in p.interiors() {
            out.push(',');
            self.line(r, out);
        }
        out.push(']');
    }

    fn coord(&self, c: Coord<f64>, out: &mut String) {
        let (a, b) = if self.swap { (c.y, c.x) } else { (c.x, c.y) };
        out.push('[');
        write_number(a, self.decimals, out);
        out.push(',');
        write_number(b, self.decimals, out);
        out.push(']');
    }
}

/// Writes `v` in plain decimal notation with at most `decimals` decimals, trailing zeros (and a
/// trailing point) trimmed, and no negative zero. More than 15 decimals are taken as 15 (beyond
/// what an f64 coordinate holds).
///
/// Fast path: `v` scaled by 10^decimals and rounded to an integer, written digit by digit (exact
/// while the scaled value stays below 2^53, which covers degrees at 7 decimals and metres at 3);
/// larger values go through the standard formatter.
pub fn write_number(v: f64, decimals: usize, out: &mut String) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let decimals = decimals.min(15);
    const POW10: [u64; 16] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
        10_000_000_000,
        100_000_000_000,
        1_000_000_000_000,
        10_000_000_000_000,
        100_000_000_000_000,
        1_000_000_000_000_000,
    ];
    if let Some(&scale) = POW10.get(decimals) {
        let m = (v * scale as f64).round();
        if m.abs() < 9_007_199_254_740_992.0 {
            let neg = m < 0.0;
            let m = m.abs() as u64;
            if m == 0 {
                out.push('0');
                return;
            }
            // Digits written right to left: the fraction without its trailing zeros, the point,
            // the integer part, the sign.
            let mut buf = [0u8; 40];
            let mut i = buf.len();
            let (mut int, mut frac) = (m / scale, m % scale);
            if frac != 0 {
                let mut width = decimals;
                while frac.is_multiple_of(10) {
                    frac /= 10;
                    width -= 1;
                }
                for _ in 0..width {
                    i -= 1;
                    buf[i] = b'0' + (frac % 10) as u8;
                    frac /= 10;
                }
                i -= 1;
                buf[i] = b'.';
            }
            loop {
                i -= 1;
                buf[i] = b'0' + (int % 10) as u8;
                int /= 10;
                if int == 0 {
                    break;
                }
            }
            if neg {
                i -= 1;
                buf[i] = b'-';
            }
            out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("null"));
            return;
        }
    }
    let start = out.len();
    let _ = write!(out, "{v:.decimals$}");
    if out[start..].contains('.') {
        let trimmed = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(trimmed);
    }
    if &out[start..] == "-0" {
        out.truncate(start);
        out.push('0');
    }
}

/// The bounding box `[minx, miny, maxx, maxy]` of a geometry, `None` when it is empty.
pub fn bbox(geom: &Geometry) -> Option<[f64; 4]> {
    geom.bounding_rect().map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

/// A spatial predicate of CQL2 (OGC API - Features Part 3) and the Simple Features model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpatialOp {
    /// The geometries share at least one point.
    Intersects,
    /// The geometries share no point.
    Disjoint,
    /// The first lies inside the second (interiors meet, nothing of the first outside).
    Within,
    /// The second lies inside the first.
    Contains,
    /// The geometries meet only at their boundaries.
    Touches,
    /// The geometries cross (interiors meet in a lower dimension than the larger of the two).
    Crosses,
    /// Same dimension, interiors meet, neither contains the other.
    Overlaps,
    /// Topologically equal.
    Equals,
}

impl SpatialOp {
    /// Every operator, in CQL2's order.
    pub const ALL: [SpatialOp; 8] = [
        SpatialOp::Intersects,
        SpatialOp::Disjoint,
        SpatialOp::Within,
        SpatialOp::Contains,
        SpatialOp::Touches,
        SpatialOp::Crosses,
        SpatialOp::Overlaps,
        SpatialOp::Equals,
    ];

    /// The operator named by CQL2 (`S_INTERSECTS`, ...), case-insensitive; the `S_` prefix may be
    /// left out (`intersects`).
    pub fn from_name(name: &str) -> Option<SpatialOp> {
        let n = name.trim();
        let n = match n.get(..2) {
            Some(p) if p.eq_ignore_ascii_case("s_") => &n[2..],
            _ => n,
        };
        SpatialOp::ALL.into_iter().find(|op| op.name()[2..].eq_ignore_ascii_case(n))
    }

    /// The relation with its operands swapped (`a within b` is `b contains a`).
    #[must_use]
    pub fn converse(self) -> SpatialOp {
        match self {
            SpatialOp::Within => SpatialOp::Contains,
            SpatialOp::Contains => SpatialOp::Within,
            other => other,
        }
    }

    /// The CQL2 name: `S_INTERSECTS`, `S_DISJOINT`, ...
    pub fn name(self) -> &'static str {
        match self {
            SpatialOp::Intersects => "S_INTERSECTS",
            SpatialOp::Disjoint => "S_DISJOINT",
            SpatialOp::Within => "S_WITHIN",
            SpatialOp::Contains => "S_CONTAINS",
            SpatialOp::Touches => "S_TOUCHES",
            SpatialOp::Crosses => "S_CROSSES",
            SpatialOp::Overlaps => "S_OVERLAPS",
            SpatialOp::Equals => "S_EQUALS",
        }
    }
}

fn boxes_meet(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/// Whether `op(a, b)` holds, in planar geometry on the coordinates as given (both in the same CRS).
/// Bounding boxes are compared first, so far-apart geometries cost only the boxes; S_INTERSECTS,
/// S_DISJOINT, S_CONTAINS and S_WITHIN use direct tests, the others the DE-9IM matrix.
///
/// `false` when the answer cannot be computed (see [`try_relate`]).
pub fn relate(a: &Geometry, b: &Geometry, op: SpatialOp) -> bool {
    try_relate(a, b, op).unwrap_or(false)
}

/// [`relate`], with an error where the answer cannot be computed: the `geo` crate's topology graph
/// gives up (by panicking, caught here) on some invalid inputs, notably a GeometryCollection whose
/// polygons overlap. Such a panic is still reported by the process's panic hook.
pub fn try_relate(a: &Geometry, b: &Geometry, op: SpatialOp) -> Result<bool, GeoError> {
    let meet = match (bbox(a), bbox(b)) {
        (Some(ba), Some(bb)) => boxes_meet(&ba, &bb),
        // An empty geometry meets nothing and relates to nothing (except being disjoint).
        _ => false,
    };
    if !meet {
        return Ok(op == SpatialOp::Disjoint);
    }
    let run = || match op {
        SpatialOp::Intersects => a.intersects(b),
        SpatialOp::Disjoint => !a.intersects(b),
        SpatialOp::Contains => a.contains(b),
        SpatialOp::Within => b.contains(a),
        SpatialOp::Touches => a.relate(b).is_touches(),
        SpatialOp::Crosses => a.relate(b).is_crosses(),
        SpatialOp::Overlaps => a.relate(b).is_overlaps(),
        SpatialOp::Equals => a.relate(b).is_equal_topo(),
    };
    std::panic::catch_unwind(run).map_err(|_| {
        GeoError::InvalidTopology(format!(
            "{} cannot be computed for these geometries (an invalid geometry, or a \
             GeometryCollection whose parts overlap)",
            op.name()
        ))
    })
}

/// The geometry of a GeoJSON geometry, Feature or FeatureCollection (its features' geometries as one
/// collection), as [`parse_geojson`] reads it.
///
/// # Errors
/// As [`parse_geojson`]; a Feature without a geometry.
pub fn parse_geojson_any(value: &Value) -> Result<Geometry, GeoError> {
    let invalid = |m: &str| GeoError::InvalidGeometry { at: String::new(), message: m.to_owned() };
    match value.get("type").and_then(Value::as_str) {
        Some("Feature") => match value.get("geometry") {
            Some(g) if !g.is_null() => parse_geojson(g),
            _ => Err(invalid("the Feature has no geometry")),
        },
        Some("FeatureCollection") => {
            let features =
                value.get("features").and_then(Value::as_array).ok_or_else(|| invalid("no features"))?;
            if features.len() > MAX_POSITIONS {
                return Err(invalid("too many features"));
            }
            let parts = features
                .iter()
                .filter_map(|f| f.get("geometry").filter(|g| !g.is_null()))
                .map(parse_geojson)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Geometry::GeometryCollection(geo_types::GeometryCollection(parts)))
        }
        _ => parse_geojson(value),
    }
}

/// The planar (Euclidean) distance between two geometries in their coordinates' own units; 0 when
/// they meet.
pub fn planar_distance(a: &Geometry, b: &Geometry) -> f64 {
    use geo::{Distance, Euclidean};
    Euclidean.distance(a, b)
}

/// The planar length of a geometry's lines and polygon rings, in its coordinates' own units.
pub fn planar_length(g: &Geometry) -> f64 {
    use geo::{Euclidean, Length};
    match g {
        Geometry::Line(l) => Euclidean.length(l),
        Geometry::LineString(l) => Euclidean.length(l),
        Geometry::MultiLineString(m) => Euclidean.length(m),
        Geometry::Polygon(p) => {
            std::iter::once(p.exterior()).chain(p.interiors()).map(|r| Euclidean.length(r)).sum()
        }
        Geometry::MultiPolygon(m) => m.iter().map(|p| planar_length(&Geometry::Polygon(p.clone()))).sum(),
        Geometry::Rect(r) => planar_length(&Geometry::Polygon(r.to_polygon())),
        Geometry::Triangle(t) => planar_length(&Geometry::Polygon(t.to_polygon())),
        Geometry::GeometryCollection(c) => c.iter().map(planar_length).sum(),
        Geometry::Point(_) | Geometry::MultiPoint(_) => 0.0,
    }
}

/// Metres from a WGS 84 point (longitude, latitude in degrees) to the nearest part of a WGS 84
/// geometry: 0 inside a polygon or on the geometry; `f64::INFINITY` for an empty geometry.
///
/// Method: the geometry is projected on a local equirectangular plane centred on the point, using
/// the WGS 84 ellipsoid's meridian and parallel radii of curvature at the point's latitude, and the
/// planar distance to each segment is taken. At Hong Kong's scale (tens of kilometres, latitude
/// 22°) the error is under 0.3% (the scale of a parallel changes by tan(lat)·Δlat across the
/// distance); it grows with distance and towards the poles. No allocation, one pass.
pub fn distance_m(lon: f64, lat: f64, geom: &Geometry) -> f64 {
    let e2 = WGS84_F * (2.0 - WGS84_F);
    let (s, c) = lat.to_radians().sin_cos();
    let w = (1.0 - e2 * s * s).sqrt();
    let ky = (WGS84_A * (1.0 - e2) / (w * w * w)).to_radians();
    let kx = (WGS84_A / w * c).to_radians();
    let plane = Plane { lon, lat, kx, ky };
    let d2 = plane.geometry(geom);
    d2.sqrt()
}

struct Plane {
    lon: f64,
    lat: f64,
    kx: f64,
    ky: f64,
}

impl Plane {
    /// The point's offset from the query point in metres.
    fn xy(&self, c: Coord<f64>) -> (f64, f64) {
        let mut dlon = c.x - self.lon;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        (dlon * self.kx, (c.y - self.lat) * self.ky)
    }

    /// Squared distance from the origin to segment a-b.
    fn seg2(&self, a: Coord<f64>, b: Coord<f64>) -> f64 {
        let (ax, ay) = self.xy(a);
        let (bx, by) = self.xy(b);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
        let (px, py) = (ax + t * dx, ay + t * dy);
        px * px + py * py
    }

    /// One pass over a line: the squared distance from the origin to it, and whether a ray from
    /// the origin towards +x crosses it an odd number of times (inside, for a closed ring). Each
    /// vertex is projected once.
    fn scan(&self, l: &LineString<f64>) -> (f64, bool) {
        let mut pts = l.0.iter();
        let Some(first) = pts.next() else { return (f64::INFINITY, false) };
        let (mut ax, mut ay) = self.xy(*first);
        let mut best = ax * ax + ay * ay;
        let mut odd = false;
        for c in pts {
            let (bx, by) = self.xy(*c);
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
            let (px, py) = (ax + t * dx, ay + t * dy);
            best = best.min(px * px + py * py);
            if (ay > 0.0) != (by > 0.0) && ax - dx * ay / dy > 0.0 {
                odd = !odd;
            }
            (ax, ay) = (bx, by);
        }
        (best, odd)
    }

    fn polygon2(&self, p: &Polygon<f64>) -> f64 {
        let (mut d, inside) = self.scan(p.exterior());
        let mut in_hole = false;
        for r in p.interiors() {
            let (dr, odd) = self.scan(r);
            d = d.min(dr);
            in_hole |= odd;
        }
        if inside && !in_hole {
            0.0
        } else {
            d
        }
    }

    fn geometry(&self, g: &Geometry) -> f64 {
        match g {
            Geometry::Point(p) => {
                let (x, y) = self.xy(p.0);
                x * x + y * y
            }
            Geometry::MultiPoint(mp) => mp.0.iter().fold(f64::INFINITY, |m, p| {
                let (x, y) = self.xy(p.0);
                m.min(x * x + y * y)
            }),
            Geometry::Line(l) => self.seg2(l.start, l.end),
            Geometry::LineString(l) => self.scan(l).0,
            Geometry::MultiLineString(ml) => ml.0.iter().fold(f64::INFINITY, |m, l| m.min(self.scan(l).0)),
            Geometry::Polygon(p) => self.polygon2(p),
            Geometry::MultiPolygon(mp) => mp.0.iter().fold(f64::INFINITY, |m, p| m.min(self.polygon2(p))),
            Geometry::Rect(r) => self.polygon2(&r.to_polygon()),
            Geometry::Triangle(t) => self.polygon2(&t.to_polygon()),
            Geometry::GeometryCollection(gc) => {
                gc.0.iter().fold(f64::INFINITY, |m, g| m.min(self.geometry(g)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Geometry, String> {
        parse_geojson(&v).map_err(|e| e.to_string())
    }

    fn round_trip(v: Value) -> String {
        let g = parse(v).unwrap();
        let mut out = String::new();
        write_geojson(&g, 7, false, &mut out);
        out
    }

    #[test]
    fn all_seven_types_round_trip() {
        let cases = [
            (
                json!({"type":"Point","coordinates":[114.1,22.3]}),
                r#"{"type":"Point","coordinates":[114.1,22.3]}"#,
            ),
            (
                json!({"type":"Point","coordinates":[114.1,22.3,5.5]}),
                r#"{"type":"Point","coordinates":[114.1,22.3]}"#,
            ),
            (
                json!({"type":"MultiPoint","coordinates":[[1,2],[3,4]]}),
                r#"{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}"#,
            ),
            (json!({"type":"MultiPoint","coordinates":[]}), r#"{"type":"MultiPoint","coordinates":[]}"#),
            (
                json!({"type":"LineString","coordinates":[[1,2],[3,4]]}),
                r#"{"type":"LineString","coordinates":[[1,2],[3,4]]}"#,
            ),
            (
                json!({"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[[5,6],[7,8],[9,10]]]}),
                r#"{"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[[5,6],[7,8],[9,10]]]}"#,
            ),
            (
                json!({"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}),
                r#"{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}"#,
            ),
            (
                json!({"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]]]}),
                r#"{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]]]}"#,
            ),
            (
                json!({"type":"GeometryCollection","geometries":[
                    {"type":"Point","coordinates":[1,2]},
                    {"type":"GeometryCollection","geometries":[]}]}),
                r#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"GeometryCollection","geometries":[]}]}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(round_trip(input), want);
        }
    }

    #[test]
    fn structural_errors_say_what_and_where() {
        let cases = [
            (json!({"type":"Point","coordinates":[1]}), "at coordinates: the position has 1 number"),
            (
                json!({"type":"LineString","coordinates":[[1,2],[3,4],[5,6],[7,8],[9,10],[11]]}),
                "at coordinates[5]: position 5 has 1 number",
            ),
            (
                json!({"type":"Point","coordinates":[1,"2"]}),
                "at coordinates[1]: coordinates must be finite numbers",
            ),
            (
                json!({"type":"Point","coordinates":[1,null]}),
                "at coordinates[1]: coordinates must be finite numbers",
            ),
            (
                json!({"type":"LineString","coordinates":[[1,2]]}),
                "LineString needs at least 2 positions, found 1",
            ),
            (
                json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}),
                "at coordinates[0]: polygon ring 0 needs at least 4 positions",
            ),
            (
                json!({"type":"Polygon","coordinates":[
                    [[0,0],[9,0],[9,9],[0,0]],[[1,1],[2,1],[2,2],[1,1]],[[3,3],[4,3],[4,4],[3,4]]]}),
                "at coordinates[2]: polygon ring 2 is not closed",
            ),
            (
                json!({"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[0,0],[1,0],[1,1],[0,1]]]]}),
                "at coordinates[1][0]: polygon ring 0 is not closed",
            ),
            (
                json!({"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},
                    {"type":"LineString","coordinates":[]}]}),
                "at geometries[1].coordinates: LineString needs at least 2 positions, found 0",
            ),
            (json!({"type":"Circle","coordinates":[1,2]}), "at type: unknown geometry type \"Circle\""),
            (json!({"type":"Feature","geometry":null}), "pass the feature's \"geometry\" member"),
            (json!({"coordinates":[1,2]}), "no \"type\" member"),
            (json!({"type":"Polygon"}), "Polygon has no \"coordinates\" member"),
            (json!({"type":"Polygon","coordinates":[]}), "Polygon needs at least one ring"),
            (json!([1, 2]), "must be a JSON object"),
            (
                json!({"type":"MultiPoint","coordinates":{"a":1}}),
                "at coordinates: must be an array, found an object",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input.clone()).err().unwrap_or_default();
            assert!(err.contains(want), "{input}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn absurd_nesting_is_refused() {
        let mut v = json!({"type":"Point","coordinates":[1,2]});
        for _ in 0..MAX_NESTING {
            v = json!({"type":"GeometryCollection","geometries":[v]});
        }
        assert!(parse(v.clone()).is_ok());
        let v = json!({"type":"GeometryCollection","geometries":[v]});
        let err = parse(v).err().unwrap_or_default();
        assert!(err.contains("nested more than 8 deep"), "{err}");
    }

    #[test]
    fn too_many_positions_is_refused() {
        let pts: Vec<Value> = (0..101).map(|i| json!([i as f64, 0.0])).collect();
        let v = json!({"type":"GeometryCollection","geometries":[
            {"type":"MultiPoint","coordinates":pts[..50]},{"type":"LineString","coordinates":pts[50..]}]});
        assert!(parse_bounded(&v, 101).is_ok());
        let err = parse_bounded(&v, 100).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("at geometries[1].coordinates[50]: geometry has more than 100 positions"),
            "{err}"
        );
    }

    #[test]
    fn legacy_crs_member() {
        let fc = json!({"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2326"}},"features":[]});
        assert_eq!(legacy_crs(&fc), Ok(Some(Crs::Hk1980)));
        assert_eq!(legacy_crs(&json!({"type":"FeatureCollection","features":[]})), Ok(None));
        assert_eq!(legacy_crs(&json!({"crs":null})), Ok(None));
        let bad = legacy_crs(&json!({"crs":{"type":"name","properties":{"name":"EPSG:27700"}}}));
        assert!(matches!(bad, Err(GeoError::UnknownCrs { .. })));
        let link = legacy_crs(&json!({"crs":{"type":"link","properties":{"href":"x"}}}));
        assert!(link.err().map(|e| e.to_string()).unwrap_or_default().contains("linked crs"));
        let noname = legacy_crs(&json!({"crs":{"type":"name"}}));
        assert!(noname.is_err());
    }

    #[test]
    fn transform_hk1980_polygon_to_wgs84_and_back() {
        let src = json!({"type":"Polygon","coordinates":[[[836694.05,819069.8],[836794.05,819069.8],[836794.05,819169.8],[836694.05,819069.8]]]});
        let mut g = parse_geojson(&src).unwrap();
        let original = g.clone();
        assert!(check_wgs84(&g).err().map(|e| e.to_string()).unwrap_or_default().contains("Hong Kong 1980"));
        transform(&mut g, Crs::Hk1980, Crs::Crs84);
        check_wgs84(&g).unwrap();
        let b = bbox(&g).unwrap();
        assert!(b[0] > 114.17 && b[2] < 114.19 && b[1] > 22.30 && b[3] < 22.32, "{b:?}");
        transform(&mut g, Crs::Crs84, Crs::Hk1980);
        let (b0, b1) = (bbox(&original).unwrap(), bbox(&g).unwrap());
        for i in 0..4 {
            assert!((b0[i] - b1[i]).abs() < 1e-3, "{b0:?} {b1:?}");
        }
        let mut out = String::new();
        write_geojson(&g, 3, true, &mut out);
        assert!(out.starts_with(r#"{"type":"Polygon","coordinates":[[[819069.8,836694.05],"#), "{out}");
    }

    #[test]
    fn check_wgs84_hints() {
        let swapped = parse_geojson(&json!({"type":"Point","coordinates":[22.3,114.2]})).unwrap();
        let err = check_wgs84(&swapped).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("latitude, longitude in that order"), "{err}");
        let fine = parse_geojson(&json!({"type":"LineString","coordinates":[[-180,-90],[180,90]]})).unwrap();
        assert!(check_wgs84(&fine).is_ok());
    }

    #[test]
    fn numbers_are_plain_and_trimmed() {
        let cases = [
            (1.0, 7, "1"),
            (114.123456789, 7, "114.1234568"),
            (1e-9, 7, "0"),
            (-1e-9, 7, "0"),
            (1e21, 3, "1000000000000000000000"),
            (-0.5, 3, "-0.5"),
            (836694.0500001, 3, "836694.05"),
            (f64::NAN, 3, "null"),
            (0.000_000_5, 7, "0.0000005"),
            (-114.05, 7, "-114.05"),
            (22.1000001, 7, "22.1000001"),
            (12345.6789, 0, "12346"),
            (0.1, 20, "0.1"),
            (-9.99999999, 7, "-10"),
        ];
        for (v, d, want) in cases {
            let mut s = String::new();
            write_number(v, d, &mut s);
            assert_eq!(s, want, "{v}");
        }
        // The fast path and the standard formatter agree on ordinary coordinates.
        let mut seed: u64 = 7;
        for _ in 0..10_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 400.0;
            let mut fast = String::new();
            write_number(v, 7, &mut fast);
            let slow = format!("{v:.7}");
            let slow = slow.trim_end_matches('0').trim_end_matches('.');
            let slow = if slow == "-0" { "0" } else { slow };
            assert!(
                fast == slow || (fast.parse::<f64>().unwrap() - v).abs() <= 0.5e-7 + 1e-12,
                "{v}: {fast} {slow}"
            );
        }
    }

    #[test]
    fn spatial_op_names() {
        assert_eq!(SpatialOp::from_name("S_INTERSECTS"), Some(SpatialOp::Intersects));
        assert_eq!(SpatialOp::from_name("s_within"), Some(SpatialOp::Within));
        assert_eq!(SpatialOp::from_name("Equals"), Some(SpatialOp::Equals));
        assert_eq!(SpatialOp::from_name("S_NEAR"), None);
        assert_eq!(SpatialOp::from_name(""), None);
        for op in SpatialOp::ALL {
            assert_eq!(SpatialOp::from_name(op.name()), Some(op));
        }
    }

    #[test]
    fn relate_predicates() {
        let g = |v: Value| parse_geojson(&v).unwrap();
        let square = g(json!({"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]]]}));
        let inner = g(json!({"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,2],[1,1]]]}));
        let beside = g(json!({"type":"Polygon","coordinates":[[[4,0],[6,0],[6,4],[4,4],[4,0]]]}));
        let half = g(json!({"type":"Polygon","coordinates":[[[2,2],[6,2],[6,6],[2,6],[2,2]]]}));
        let far = g(json!({"type":"Point","coordinates":[100,100]}));
        let inside_pt = g(json!({"type":"Point","coordinates":[3,3]}));
        let across = g(json!({"type":"LineString","coordinates":[[-1,2],[5,2]]}));
        let same = g(json!({"type":"Polygon","coordinates":[[[4,0],[4,4],[0,4],[0,0],[4,0]]]}));
        use SpatialOp::*;
        let cases: [(&Geometry, &Geometry, SpatialOp, bool); 16] = [
            (&square, &inner, Intersects, true),
            (&square, &far, Intersects, false),
            (&square, &far, Disjoint, true),
            (&square, &inner, Disjoint, false),
            (&inner, &square, Within, true),
            (&square, &inner, Within, false),
            (&square, &inner, Contains, true),
            (&square, &inside_pt, Contains, true),
            (&inside_pt, &square, Within, true),
            (&square, &beside, Touches, true),
            (&square, &half, Touches, false),
            (&across, &square, Crosses, true),
            (&square, &half, Overlaps, true),
            (&square, &inner, Overlaps, false),
            (&square, &same, Equals, true),
            (&square, &half, Equals, false),
        ];
        for (i, (a, b, op, want)) in cases.iter().enumerate() {
            assert_eq!(relate(a, b, *op), *want, "case {i}: {op:?}");
        }
    }

    #[test]
    fn distance_matches_geodesic_within_half_a_percent() {
        use geo::{Distance, Geodesic};
        // Central, Hong Kong; targets up to ~40 km away in every direction.
        let (lon, lat) = (114.1588, 22.2819);
        let mut worst = 0.0_f64;
        for i in 0..72 {
            let ang = (i as f64 * 5.0).to_radians();
            for r in [0.001, 0.01, 0.05, 0.2, 0.4] {
                let (tlon, tlat) = (lon + r * ang.cos(), lat + r * ang.sin());
                let want = Geodesic.distance(Point::new(lon, lat), Point::new(tlon, tlat));
                let got = distance_m(lon, lat, &Geometry::Point(Point::new(tlon, tlat)));
                worst = worst.max((got - want).abs() / want);
            }
        }
        assert!(worst < 0.005, "worst relative error {worst}");
    }

    #[test]
    fn distance_to_lines_and_polygons() {
        let g = |v: Value| parse_geojson(&v).unwrap();
        let square = g(json!({"type":"Polygon","coordinates":[
            [[114.0,22.0],[114.1,22.0],[114.1,22.1],[114.0,22.1],[114.0,22.0]],
            [[114.04,22.04],[114.06,22.04],[114.06,22.06],[114.04,22.06],[114.04,22.04]]]}));
        assert_eq!(distance_m(114.02, 22.05, &square), 0.0);
        // In the hole: 0.01 degree of longitude from its west edge... nearest edge is 0.01 deg away.
        let in_hole = distance_m(114.05, 22.05, &square);
        assert!((in_hole - 1032.0).abs() < 10.0, "{in_hole}");
        // East of the square by 0.01 degree of longitude at 22.05 N: about 1032 m.
        let east = distance_m(114.11, 22.05, &square);
        assert!((east - 1032.0).abs() < 10.0, "{east}");
        let line = g(json!({"type":"LineString","coordinates":[[114.0,22.0],[114.0,22.2]]}));
        let d = distance_m(114.001, 22.1, &line);
        assert!((d - 103.2).abs() < 1.0, "{d}");
        let empty = Geometry::MultiPoint(MultiPoint(Vec::new()));
        assert_eq!(distance_m(114.0, 22.0, &empty), f64::INFINITY);
    }
}

#[cfg(test)]
mod degenerate_tests {
    use super::*;
    use serde_json::json;

    /// Valid-by-structure but odd geometries must not panic in any predicate or in distance.
    #[test]
    fn odd_geometries_never_panic() {
        let raw = [
            json!({"type":"Polygon","coordinates":[[[1,1],[1,1],[1,1],[1,1]]]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[2,2],[2,0],[0,2],[0,0]]]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[2,0],[0,0]]]}),
            json!({"type":"LineString","coordinates":[[1,1],[1,1]]}),
            json!({"type":"MultiPolygon","coordinates":[
                [[[0,0],[2,0],[2,2],[0,2],[0,0]]],[[[1,1],[3,1],[3,3],[1,3],[1,1]]]]}),
            json!({"type":"GeometryCollection","geometries":[
                {"type":"Point","coordinates":[1,1]},
                {"type":"Polygon","coordinates":[[[0,0],[2,0],[2,2],[0,2],[0,0]]]},
                {"type":"Polygon","coordinates":[[[1,1],[3,1],[3,3],[1,3],[1,1]]]},
                {"type":"LineString","coordinates":[[0,0],[5,5]]}]}),
            json!({"type":"GeometryCollection","geometries":[]}),
            json!({"type":"MultiPoint","coordinates":[[1,1],[1,1]]}),
            json!({"type":"Point","coordinates":[1,1]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]],[[0,0],[1,0],[1,1],[0,0]]]}),
        ];
        let geoms: Vec<Geometry> = raw.iter().map(|v| parse_geojson(v).unwrap()).collect();
        let mut trues = 0;
        for a in &geoms {
            for b in &geoms {
                for op in SpatialOp::ALL {
                    trues += usize::from(relate(a, b, op));
                }
                let _ = distance_m(1.0, 1.0, b);
            }
        }
        assert!(trues > 0);
        // A collection of overlapping parts still answers sensibly.
        let gc = &geoms[5];
        let pt = Geometry::Point(Point::new(2.5, 2.5));
        assert!(relate(gc, &pt, SpatialOp::Intersects));
        assert!(relate(&pt, gc, SpatialOp::Within));
        assert_eq!(distance_m(2.5, 2.5, gc), 0.0);
        // The topology graph cannot be built for a collection of overlapping polygons: an error
        // from try_relate, false from relate.
        let square = &geoms[4];
        let err = try_relate(gc, square, SpatialOp::Touches).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("S_TOUCHES"), "{err}");
        assert!(!relate(gc, square, SpatialOp::Touches));
        assert_eq!(try_relate(&pt, square, SpatialOp::Touches), Ok(false));
        assert!(validate(&geoms[1])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("self-intersection"));
        assert!(validate(&geoms[8]).is_ok());
    }
}
