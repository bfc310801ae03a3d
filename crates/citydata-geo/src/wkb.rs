//! Well-Known Binary (OGC Simple Features, 2D): a compact binary form of a geometry for storage,
//! much cheaper to read back per row than GeoJSON text (no JSON tree, no number parsing).
//!
//! [`write_wkb`] writes little-endian 2D WKB (types 1 to 7; `Line` as a LineString, `Rect` and
//! `Triangle` as Polygons). [`read_wkb`] reads either byte order of the same types.
//!
//! **Invariants:** reading is bounded: every count is checked against the bytes left before
//! anything is allocated, collections nest at most [`MAX_NESTING`] deep and a geometry holds at most
//! [`MAX_POSITIONS`] positions; coordinates read are finite; trailing bytes are an error. What
//! [`read_wkb`] returns passes the same structural rules as [`crate::parse_geojson`] (line strings of
//! 2+ positions, closed rings of 4+), so a blob that did not come from [`write_wkb`] of a checked
//! geometry is refused rather than trusted.

use geo_types::{
    Coord, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
};

use crate::geometry::{Geometry, MAX_NESTING, MAX_POSITIONS};
use crate::GeoError;

const POINT: u32 = 1;
const LINESTRING: u32 = 2;
const POLYGON: u32 = 3;
const MULTIPOINT: u32 = 4;
const MULTILINESTRING: u32 = 5;
const MULTIPOLYGON: u32 = 6;
const COLLECTION: u32 = 7;

/// Appends the geometry as little-endian 2D WKB. An empty Point cannot occur in `geo_types`; an
/// empty Polygon (no exterior positions) is written with zero rings.
pub fn write_wkb(geom: &Geometry, out: &mut Vec<u8>) {
    match geom {
        Geometry::Point(p) => {
            head(out, POINT);
            coord(out, p.0);
        }
        Geometry::Line(l) => {
            head(out, LINESTRING);
            count(out, 2);
            coord(out, l.start);
            coord(out, l.end);
        }
        Geometry::LineString(l) => {
            head(out, LINESTRING);
            line(out, l);
        }
        Geometry::Polygon(p) => {
            head(out, POLYGON);
            polygon(out, p);
        }
        Geometry::MultiPoint(mp) => {
            head(out, MULTIPOINT);
            count(out, mp.0.len());
            for p in &mp.0 {
                write_wkb(&Geometry::Point(*p), out);
            }
        }
        Geometry::MultiLineString(ml) => {
            head(out, MULTILINESTRING);
            count(out, ml.0.len());
            for l in &ml.0 {
                head(out, LINESTRING);
                line(out, l);
            }
        }
        Geometry::MultiPolygon(mp) => {
            head(out, MULTIPOLYGON);
            count(out, mp.0.len());
            for p in &mp.0 {
                head(out, POLYGON);
                polygon(out, p);
            }
        }
        Geometry::Rect(r) => {
            head(out, POLYGON);
            polygon(out, &r.to_polygon());
        }
        Geometry::Triangle(t) => {
            head(out, POLYGON);
            polygon(out, &t.to_polygon());
        }
        Geometry::GeometryCollection(gc) => {
            head(out, COLLECTION);
            count(out, gc.0.len());
            for g in &gc.0 {
                write_wkb(g, out);
            }
        }
    }
}

fn head(out: &mut Vec<u8>, ty: u32) {
    out.push(1);
    out.extend_from_slice(&ty.to_le_bytes());
}

fn count(out: &mut Vec<u8>, n: usize) {
    // Counts beyond u32 cannot be written in WKB; geometries that large are refused at parsing.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn coord(out: &mut Vec<u8>, c: Coord<f64>) {
    out.extend_from_slice(&c.x.to_le_bytes());
    out.extend_from_slice(&c.y.to_le_bytes());
}

fn line(out: &mut Vec<u8>, l: &LineString<f64>) {
    count(out, l.0.len());
    for c in &l.0 {
        coord(out, *c);
    }
}

fn polygon(out: &mut Vec<u8>, p: &Polygon<f64>) {
    if p.exterior().0.is_empty() {
        count(out, 0);
        return;
    }
    count(out, 1 + p.interiors().len());
    line(out, p.exterior());
    for r in p.interiors() {
        line(out, r);
    }
}

/// Reads 2D WKB of either byte order. Errors say what is wrong and at which byte offset.
pub fn read_wkb(bytes: &[u8]) -> Result<Geometry, GeoError> {
    let mut r = Reader { bytes, pos: 0, positions: 0 };
    let g = r.geometry(0)?;
    if r.pos != bytes.len() {
        return Err(r.err(format!("{} bytes after the end of the geometry", bytes.len() - r.pos)));
    }
    Ok(g)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    positions: usize,
}

impl Reader<'_> {
    fn err(&self, message: impl Into<String>) -> GeoError {
        GeoError::InvalidWkb { offset: self.pos, message: message.into() }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], GeoError> {
        let end = self.pos.checked_add(N).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.err(format!("truncated: {N} more bytes needed")));
        };
        let mut a = [0u8; N];
        a.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(a)
    }

    fn u32(&mut self, little: bool) -> Result<u32, GeoError> {
        let b = self.take::<4>()?;
        Ok(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn f64(&mut self, little: bool) -> Result<f64, GeoError> {
        let b = self.take::<8>()?;
        Ok(if little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) })
    }

    /// A count of items of at least `min_size` bytes each, checked against the bytes left.
    fn count(&mut self, little: bool, min_size: usize) -> Result<usize, GeoError> {
        let n = self.u32(little)? as usize;
        let left = self.bytes.len() - self.pos;
        if n.saturating_mul(min_size) > left {
            return Err(self.err(format!("count {n} needs more than the {left} bytes left")));
        }
        Ok(n)
    }

    fn coord(&mut self, little: bool) -> Result<Coord<f64>, GeoError> {
        self.positions += 1;
        if self.positions > MAX_POSITIONS {
            return Err(self.err(format!("geometry has more than {MAX_POSITIONS} positions")));
        }
        let (x, y) = (self.f64(little)?, self.f64(little)?);
        if !x.is_finite() || !y.is_finite() {
            return Err(self.err("coordinates must be finite numbers"));
        }
        Ok(Coord { x, y })
    }

    fn line(&mut self, little: bool, min: usize, what: &str) -> Result<LineString<f64>, GeoError> {
        let n = self.count(little, 16)?;
        if n < min {
            return Err(self.err(format!("{what} needs at least {min} positions, found {n}")));
        }
        let mut pts = Vec::with_capacity(n);
        for _ in 0..n {
            pts.push(self.coord(little)?);
        }
        Ok(LineString(pts))
    }

    fn polygon(&mut self, little: bool) -> Result<Polygon<f64>, GeoError> {
        let n = self.count(little, 4)?;
        let mut rings = Vec::with_capacity(n);
        for _ in 0..n {
            let ring = self.line(little, 4, "a polygon ring")?;
            if ring.0.first() != ring.0.last() {
                return Err(self.err("a polygon ring is not closed"));
            }
            rings.push(ring);
        }
        let mut rings = rings.into_iter();
        let exterior = rings.next().unwrap_or_else(|| LineString(Vec::new()));
        Ok(Polygon::new(exterior, rings.collect()))
    }

    /// The byte order and type of the next geometry, checked against `expected` when given.
    fn header(&mut self, expected: Option<u32>) -> Result<(bool, u32), GeoError> {
        let little = match self.take::<1>()?[0] {
            0 => false,
            1 => true,
            other => return Err(self.err(format!("byte order must be 0 or 1, found {other}"))),
        };
        let ty = self.u32(little)?;
        if let Some(want) = expected {
            if ty != want {
                return Err(self.err(format!("expected WKB type {want} inside a multi-geometry, found {ty}")));
            }
        }
        Ok((little, ty))
    }

    fn geometry(&mut self, depth: usize) -> Result<Geometry, GeoError> {
        let (little, ty) = self.header(None)?;
        Ok(match ty {
            POINT => Geometry::Point(Point(self.coord(little)?)),
            LINESTRING => Geometry::LineString(self.line(little, 2, "a LineString")?),
            POLYGON => Geometry::Polygon(self.polygon(little)?),
            MULTIPOINT => {
                let n = self.count(little, 21)?;
                let mut pts = Vec::with_capacity(n);
                for _ in 0..n {
                    let (l, _) = self.header(Some(POINT))?;
                    pts.push(Point(self.coord(l)?));
                }
                Geometry::MultiPoint(MultiPoint(pts))
            }
            MULTILINESTRING => {
                let n = self.count(little, 9)?;
                let mut lines = Vec::with_capacity(n);
                for _ in 0..n {
                    let (l, _) = self.header(Some(LINESTRING))?;
                    lines.push(self.line(l, 2, "a LineString")?);
                }
                Geometry::MultiLineString(MultiLineString(lines))
            }
            MULTIPOLYGON => {
                let n = self.count(little, 9)?;
                let mut polys = Vec::with_capacity(n);
                for _ in 0..n {
                    let (l, _) = self.header(Some(POLYGON))?;
                    polys.push(self.polygon(l)?);
                }
                Geometry::MultiPolygon(MultiPolygon(polys))
            }
            COLLECTION => {
                if depth >= MAX_NESTING {
                    return Err(self.err(format!("GeometryCollections nested more than {MAX_NESTING} deep")));
                }
                let n = self.count(little, 5)?;
                let mut parts = Vec::with_capacity(n);
                for _ in 0..n {
                    parts.push(self.geometry(depth + 1)?);
                }
                Geometry::GeometryCollection(GeometryCollection(parts))
            }
            other => {
                return Err(self
                    .err(format!("unsupported WKB geometry type {other} (only 2D types 1 to 7 are read)")))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_geojson;
    use serde_json::json;

    fn samples() -> Vec<Geometry> {
        [
            json!({"type":"Point","coordinates":[114.1,22.3]}),
            json!({"type":"MultiPoint","coordinates":[[1,2],[3,4]]}),
            json!({"type":"MultiPoint","coordinates":[]}),
            json!({"type":"LineString","coordinates":[[1,2],[3,4],[5,6]]}),
            json!({"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[[5,6],[7,8]]]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}),
            json!({"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}),
            json!({"type":"GeometryCollection","geometries":[
                {"type":"Point","coordinates":[1,2]},
                {"type":"GeometryCollection","geometries":[{"type":"LineString","coordinates":[[0,0],[1,1]]}]}]}),
        ]
        .iter()
        .map(|v| parse_geojson(v).unwrap())
        .collect()
    }

    #[test]
    fn round_trips_every_type() {
        for g in samples() {
            let mut b = Vec::new();
            write_wkb(&g, &mut b);
            assert_eq!(read_wkb(&b), Ok(g.clone()), "{g:?}");
        }
    }

    #[test]
    fn known_bytes_both_byte_orders() {
        // POINT(1 2), little-endian, as every WKB writer produces it.
        let le = [1u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 63, 0, 0, 0, 0, 0, 0, 0, 64];
        let mut b = Vec::new();
        write_wkb(&Geometry::Point(Point::new(1.0, 2.0)), &mut b);
        assert_eq!(b, le);
        let be = [0u8, 0, 0, 0, 1, 63, 240, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(read_wkb(&be), Ok(Geometry::Point(Point::new(1.0, 2.0))));
    }

    #[test]
    fn bad_input_is_refused_with_an_offset() {
        let mut poly = Vec::new();
        write_wkb(&samples()[5], &mut poly);
        // Every truncation fails cleanly.
        for cut in 0..poly.len() {
            assert!(read_wkb(&poly[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = poly.clone();
        extra.push(0);
        assert!(read_wkb(&extra).err().map(|e| e.to_string()).unwrap_or_default().contains("1 bytes after"));
        // A huge count is refused before allocating.
        let huge = [1u8, 2, 0, 0, 0, 255, 255, 255, 255];
        let err = read_wkb(&huge).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("count 4294967295") && err.contains("offset 9"), "{err}");
        let z = [1u8, 0xe9, 3, 0, 0];
        assert!(read_wkb(&z).err().map(|e| e.to_string()).unwrap_or_default().contains("type 1001"));
        let mut nan = Vec::new();
        write_wkb(&Geometry::Point(Point::new(1.0, 2.0)), &mut nan);
        nan[5..13].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(read_wkb(&nan).err().map(|e| e.to_string()).unwrap_or_default().contains("finite"));
        // An open ring.
        let mut open = Vec::new();
        head(&mut open, POLYGON);
        count(&mut open, 1);
        count(&mut open, 4);
        for (x, y) in [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)] {
            coord(&mut open, Coord { x, y });
        }
        assert!(read_wkb(&open).err().map(|e| e.to_string()).unwrap_or_default().contains("not closed"));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut g = Geometry::Point(Point::new(1.0, 2.0));
        for _ in 0..=MAX_NESTING {
            g = Geometry::GeometryCollection(GeometryCollection(vec![g]));
        }
        let mut b = Vec::new();
        write_wkb(&g, &mut b);
        assert!(read_wkb(&b).err().map(|e| e.to_string()).unwrap_or_default().contains("nested"));
    }
}
