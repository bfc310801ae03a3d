//! Vector tiles: the Web Mercator tile grid (`TileId`) and a Mapbox Vector Tile 2.1 writer
//! (`TileBuilder`, `LayerBuilder`).
//!
//! A tile is built from WGS 84 geometries (`geo_types::Geometry<f64>`, x = longitude, y = latitude).
//! Each feature goes through one pipeline, in this order:
//! 1. projected to Web Mercator and on to the tile's integer grid (`extent` units a side, y down);
//!    a part with a non-finite coordinate is dropped;
//! 2. clipped to the tile square grown by `buffer` units on every side: points outside are dropped,
//!    lines are cut into parts (Liang-Barsky per segment), polygon rings are clipped with
//!    Sutherland-Hodgman (a ring clipped on a concave side may run along the buffer edge; that edge
//!    lies outside the visible tile);
//! 3. simplified with Douglas-Peucker at a tolerance in tile units (default
//!    [`DEFAULT_TOLERANCE`], a quarter of a pixel of a 256-pixel tile), so the same tolerance on the
//!    ground halves at each zoom level;
//! 4. rounded to integers; repeated points are dropped, then lines with fewer than 2 points and rings
//!    with fewer than 3 points or no area; rings smaller than the tolerance squared are dropped, and
//!    a ring that simplification would flatten is kept unsimplified instead; a polygon whose
//!    exterior ring is dropped loses its holes too;
//! 5. wound as the specification requires: exterior rings have a positive area by the surveyor's
//!    formula in tile coordinates (clockwise on screen), holes a negative one.
//!
//! Multi-geometries become one feature; a geometry collection becomes one feature per geometry type
//! it holds (points, lines, polygons), all with its id and properties.
//!
//! Not promised: polygons valid in the OGC sense. Sutherland-Hodgman joins the parts of a concave
//! polygon that leave and re-enter the tile with edges along the buffer's edge (outside the visible
//! tile), and rounding to the grid can make a vertex that nearly touches another edge cross it.
//! Map renderers draw such polygons correctly; GEOS-based readers may complain (GDAL's MVT driver
//! then keeps the feature unclipped). Nothing wraps across the antimeridian.
//!
//! **Invariants:** the encoding is written here by hand (no protobuf crate); every command count and
//! coordinate fits the specification's 29-bit command count and 32-bit zigzag parameters because
//! coordinates are clipped to the buffered tile first; a layer holds each key and each value once.
//! Nothing here panics on any input geometry.

mod grid;
mod mvt;
mod shape;

pub use grid::{TileId, MAX_ZOOM};
pub use mvt::{LayerBuilder, PropValue, TileBuilder, DEFAULT_BUFFER, DEFAULT_EXTENT, DEFAULT_TOLERANCE};

/// What was wrong with a tile address or tile option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The zoom level is above [`MAX_ZOOM`].
    #[error("tile zoom level {z} is out of range: z must be 0..={max}")]
    Zoom {
        /// The zoom level asked for.
        z: u32,
        /// The highest zoom level served.
        max: u8,
    },
    /// The column is not on the grid of its zoom level.
    #[error("tile column x={x} is out of range at zoom {z}: x must be 0..={max}")]
    Column {
        /// The column asked for.
        x: u32,
        /// The zoom level.
        z: u8,
        /// The last column at that zoom level.
        max: u32,
    },
    /// The row is not on the grid of its zoom level.
    #[error("tile row y={y} is out of range at zoom {z}: y must be 0..={max}")]
    Row {
        /// The row asked for.
        y: u32,
        /// The zoom level.
        z: u8,
        /// The last row at that zoom level.
        max: u32,
    },
    /// A tile address part is not a whole number.
    #[error("tile {axis} {text:?} is not a whole number")]
    NotANumber {
        /// Which part: `z`, `x` or `y`.
        axis: &'static str,
        /// The text given (cut to 40 characters).
        text: String,
    },
    /// The tile extent or buffer is not usable.
    #[error("tile extent {extent} with buffer {buffer} is not usable: extent must be 1..=65536 and the buffer at most the extent")]
    Extent {
        /// The extent asked for.
        extent: u32,
        /// The buffer asked for.
        buffer: u32,
    },
}
