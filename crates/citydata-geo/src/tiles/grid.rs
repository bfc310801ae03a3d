//! The Web Mercator tile grid (the "XYZ" scheme of web maps: row 0 at the north edge): tile
//! addresses, their bounds in EPSG:3857 and in WGS 84, and the projection of WGS 84 coordinates into
//! a tile's own integer grid.
//!
//! **Invariant:** a `TileId` exists only with `z <= MAX_ZOOM` and `x, y < 2^z`.

use super::TileError;

/// The highest zoom level a `TileId` may have.
pub const MAX_ZOOM: u8 = 22;

/// Half the width of the Web Mercator square, in metres (pi times the WGS 84 semi-major axis).
pub(crate) const MERCATOR_HALF: f64 = std::f64::consts::PI * 6_378_137.0;

/// The latitude (degrees) at which the Web Mercator square ends, north and south.
pub(crate) const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// One tile of the grid: zoom level `z`, column `x` (from the west), row `y` (from the north).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    z: u8,
    x: u32,
    y: u32,
}

impl TileId {
    /// The tile at zoom `z`, column `x`, row `y`, if it is on the grid: `z` in `0..=22`, `x` and `y`
    /// in `0..2^z`.
    pub fn new(z: u32, x: u32, y: u32) -> Result<TileId, TileError> {
        if z > u32::from(MAX_ZOOM) {
            return Err(TileError::Zoom { z, max: MAX_ZOOM });
        }
        let z = z as u8;
        let max = (1u32 << z) - 1;
        if x > max {
            return Err(TileError::Column { x, z, max });
        }
        if y > max {
            return Err(TileError::Row { y, z, max });
        }
        Ok(TileId { z, x, y })
    }

    /// The tile named by the three parts of a tile path (`/{z}/{x}/{y}`), each a decimal number.
    pub fn parse(z: &str, x: &str, y: &str) -> Result<TileId, TileError> {
        fn number(axis: &'static str, text: &str) -> Result<u32, TileError> {
            let digits = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
            match digits.then(|| text.parse::<u32>().ok()).flatten() {
                Some(n) => Ok(n),
                None => Err(TileError::NotANumber { axis, text: text.chars().take(40).collect() }),
            }
        }
        TileId::new(number("z", z)?, number("x", x)?, number("y", y)?)
    }

    /// The zoom level.
    pub fn z(&self) -> u8 {
        self.z
    }

    /// The column, counted from the west edge (longitude -180).
    pub fn x(&self) -> u32 {
        self.x
    }

    /// The row, counted from the north edge (latitude 85.05...).
    pub fn y(&self) -> u32 {
        self.y
    }

    /// The number of tiles along one side of the grid at this zoom level.
    fn tiles(&self) -> f64 {
        f64::from(1u32 << self.z)
    }

    /// The bounds in Web Mercator metres (EPSG:3857): `[min x, min y, max x, max y]`.
    pub fn bounds_mercator(&self) -> [f64; 4] {
        let size = 2.0 * MERCATOR_HALF / self.tiles();
        let min_x = -MERCATOR_HALF + f64::from(self.x) * size;
        let max_y = MERCATOR_HALF - f64::from(self.y) * size;
        [min_x, max_y - size, min_x + size, max_y]
    }

    /// The bounds in WGS 84 degrees: `[min lon, min lat, max lon, max lat]`.
    pub fn bounds_wgs84(&self) -> [f64; 4] {
        self.grown_bounds_wgs84(0.0)
    }

    /// The bounds in WGS 84 degrees grown by `buffer` units of a tile `extent` units wide on every
    /// side (as [`TileBuilder`](super::TileBuilder) clips), clamped to the Web Mercator square: the
    /// box to look features up with, so that every feature that reaches the buffered tile is found.
    /// An `extent` of 0 is taken as 1.
    pub fn query_bounds_wgs84(&self, buffer: u32, extent: u32) -> [f64; 4] {
        self.grown_bounds_wgs84(f64::from(buffer) / f64::from(extent.max(1)))
    }

    fn grown_bounds_wgs84(&self, grow: f64) -> [f64; 4] {
        let n = self.tiles();
        let (x, y) = (f64::from(self.x), f64::from(self.y));
        let lon = |col: f64| (col / n * 360.0 - 180.0).clamp(-180.0, 180.0);
        let lat = |row: f64| {
            let lat = (std::f64::consts::PI * (1.0 - 2.0 * row / n)).sinh().atan().to_degrees();
            lat.clamp(-MAX_LATITUDE, MAX_LATITUDE)
        };
        [lon(x - grow), lat(y + 1.0 + grow), lon(x + 1.0 + grow), lat(y - grow)]
    }
}

impl std::fmt::Display for TileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// Projects WGS 84 longitude/latitude into one tile's grid of `extent` units (y down, origin at the
/// tile's north-west corner).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projector {
    scale: f64,
    offset_x: f64,
    offset_y: f64,
}

impl Projector {
    pub(crate) fn new(tile: TileId, extent: u32) -> Projector {
        let extent = f64::from(extent);
        Projector {
            scale: tile.tiles() * extent,
            offset_x: f64::from(tile.x) * extent,
            offset_y: f64::from(tile.y) * extent,
        }
    }

    /// The tile-grid position of a longitude/latitude, or `None` if either is not finite. Latitudes
    /// beyond the Web Mercator square are moved onto its edge.
    #[inline]
    pub(crate) fn project(&self, lon: f64, lat: f64) -> Option<[f64; 2]> {
        if !(lon.is_finite() && lat.is_finite()) {
            return None;
        }
        let u = (lon + 180.0) / 360.0;
        let sin = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians().sin();
        let v = 0.5 - ((1.0 + sin) / (1.0 - sin)).ln() / (4.0 * std::f64::consts::PI);
        Some([u * self.scale - self.offset_x, v * self.scale - self.offset_y])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn addresses_on_and_off_the_grid() {
        let cases = [
            ((0, 0, 0), None),
            ((22, (1 << 22) - 1, (1 << 22) - 1), None),
            ((0, 1, 0), Some("tile column x=1 is out of range at zoom 0: x must be 0..=0")),
            ((0, 0, 1), Some("tile row y=1 is out of range at zoom 0: y must be 0..=0")),
            ((23, 0, 0), Some("tile zoom level 23 is out of range: z must be 0..=22")),
            ((u32::MAX, 0, 0), Some("tile zoom level 4294967295 is out of range: z must be 0..=22")),
            ((12, 4096, 0), Some("tile column x=4096 is out of range at zoom 12: x must be 0..=4095")),
            ((12, 4095, 4096), Some("tile row y=4096 is out of range at zoom 12: y must be 0..=4095")),
            ((12, 3344, 1785), None),
        ];
        for ((z, x, y), want) in cases {
            let got = TileId::new(z, x, y).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), want, "{z}/{x}/{y}");
        }
    }

    #[test]
    fn parse_tile_paths() {
        assert_eq!(TileId::parse("12", "3344", "1785").unwrap().to_string(), "12/3344/1785");
        let bad = [
            ("z", "", "0", "0"),
            ("x", "1", "-1", "0"),
            ("y", "1", "0", "1.5"),
            ("z", "99999999999", "0", "0"),
            ("y", "1", "0", "0.mvt"),
        ];
        for (axis, z, x, y) in bad {
            match TileId::parse(z, x, y) {
                Err(TileError::NotANumber { axis: a, .. }) => assert_eq!(a, axis, "{z}/{x}/{y}"),
                other => panic!("{z}/{x}/{y}: {other:?}"),
            }
        }
        assert!(matches!(TileId::parse("3", "8", "0"), Err(TileError::Column { x: 8, z: 3, max: 7 })));
    }

    #[test]
    fn world_tile_bounds() {
        let t = TileId::new(0, 0, 0).unwrap();
        let [a, b, c, d] = t.bounds_mercator();
        assert!(close(a, -20_037_508.342_789_244, 1e-6) && close(c, 20_037_508.342_789_244, 1e-6));
        assert!(close(b, -20_037_508.342_789_244, 1e-6) && close(d, 20_037_508.342_789_244, 1e-6));
        let [a, b, c, d] = t.bounds_wgs84();
        assert_eq!((a, c), (-180.0, 180.0));
        assert!(close(b, -MAX_LATITUDE, 1e-9) && close(d, MAX_LATITUDE, 1e-9), "{b} {d}");
        // Growing the world tile stays inside the world.
        assert_eq!(t.query_bounds_wgs84(64, 4096), t.bounds_wgs84());
    }

    #[test]
    fn hong_kong_tile_bounds() {
        // Tile 12/3344/1785 covers part of Kowloon: lon 113.90625..113.994140625.
        let t = TileId::new(12, 3344, 1785).unwrap();
        let [w, s, e, n] = t.bounds_wgs84();
        assert!(close(w, 113.906_25, 1e-9) && close(e, 113.994_140_625, 1e-9), "{w} {e}");
        assert!(s < n && close(n - s, 0.0815, 0.001), "{s} {n}");
        // 3857 bounds agree with the WGS 84 ones through the projection.
        let [mx0, my0, mx1, my1] = t.bounds_mercator();
        let to_merc_y = |lat: f64| {
            MERCATOR_HALF / 180.0
                * (lat.to_radians() / 2.0 + std::f64::consts::FRAC_PI_4).tan().ln().to_degrees()
        };
        assert!(close(mx0, w / 180.0 * MERCATOR_HALF, 1e-6) && close(mx1, e / 180.0 * MERCATOR_HALF, 1e-6));
        assert!(close(my0, to_merc_y(s), 1e-6) && close(my1, to_merc_y(n), 1e-6), "{my0} {}", to_merc_y(s));
        // A tile is 9,784 m wide at zoom 12.
        assert!(close(mx1 - mx0, 9_783.939_620_5, 1e-3));
        // Growing by 64 of 4096 units adds 1/64 of the tile width on each side.
        let [gw, gs, ge, gn] = t.query_bounds_wgs84(64, 4096);
        let width = e - w;
        assert!(close(w - gw, width / 64.0, 1e-9) && close(ge - e, width / 64.0, 1e-9));
        assert!(gs < s && gn > n && close(gn - n, (n - s) / 64.0, 1e-4));
    }

    #[test]
    fn projection_puts_corners_on_the_grid() {
        let t = TileId::new(12, 3344, 1785).unwrap();
        let p = Projector::new(t, 4096);
        let [w, s, e, n] = t.bounds_wgs84();
        let nw = p.project(w, n).unwrap();
        let se = p.project(e, s).unwrap();
        assert!(close(nw[0], 0.0, 1e-6) && close(nw[1], 0.0, 1e-6), "{nw:?}");
        assert!(close(se[0], 4096.0, 1e-6) && close(se[1], 4096.0, 1e-6), "{se:?}");
        assert_eq!(p.project(f64::NAN, 22.0), None);
        assert_eq!(p.project(114.0, f64::INFINITY), None);
        // The pole is moved to the edge of the square, not to infinity.
        let pole = Projector::new(TileId::new(0, 0, 0).unwrap(), 4096).project(0.0, 90.0).unwrap();
        assert!(close(pole[1], 0.0, 1e-6), "{pole:?}");
    }
}
