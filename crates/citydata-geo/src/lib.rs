//! Geometry for citydata: coordinate reference systems (WGS 84, the Hong Kong 1980 Grid, Web
//! Mercator), GeoJSON geometries read, checked, transformed and written, point columns found in
//! tables, and vector tiles.
//!
//! - [`crs`]: the supported CRSs ([`Crs`]), their names (OGC URIs, `EPSG:` codes, legacy URNs), the
//!   EPSG axis order, and the transforms to and from WGS 84 (EPSG:2326 agrees with PROJ to under a
//!   millimetre).
//! - [`geometry`]: [`parse_geojson`] with located structural errors, [`legacy_crs`],
//!   [`transform`], [`check_wgs84`], [`validate`], [`write_geojson`], [`bbox`], the CQL2 spatial
//!   predicates ([`SpatialOp`], [`relate`]) and [`distance_m`].
//! - [`wkb`]: [`write_wkb`] and [`read_wkb`], the compact binary form for storage.
//! - [`detect`]: [`detect_point_columns`] finds latitude/longitude or easting/northing columns by
//!   name and value range.
//!
//! How the rest of citydata uses it: the publish pipeline reads GeoJSON (honouring a legacy `crs`
//! member) or point columns, transforms to WGS 84 and checks; the store keeps WGS 84 (CRS84 order)
//! and calls [`relate`], [`bbox`] and [`distance_m`] from SQL functions, row by row; the OGC API
//! server parses `crs`/`bbox-crs` with [`Crs::from_uri`] and writes other CRSs with [`transform`]
//! and [`write_geojson`] (swapping axes where [`Crs::swaps_axes`] says so).
//!
//! **Architecture Invariant:** pure computation: no I/O, no database, no HTTP.
//!
//! **Architecture Invariant:** in memory, coordinates are always x = east (longitude, easting),
//! y = north; the EPSG axis order exists only at the edges, as an explicit argument.

pub mod crs;
pub mod detect;
pub mod geometry;
pub mod tiles;
pub mod wkb;

pub use crs::{from_wgs84, to_wgs84, transform_point, Crs};
pub use detect::{detect_point_columns, ColumnStats, Detection, NumericStats, PointColumns};
/// The geometry types crate, for building geometries without naming it as a dependency.
pub use geo_types;
pub use geometry::{
    bbox, check_wgs84, distance_m, legacy_crs, parse_geojson, relate, transform, try_relate, validate,
    write_geojson, Geometry, SpatialOp,
};
pub use wkb::{read_wkb, write_wkb};

/// What went wrong with a CRS, a geometry or a coordinate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// A CRS name that is not one of the supported ones.
    #[error("unknown coordinate reference system {given:?}; supported: {supported}")]
    UnknownCrs {
        /// The name as given.
        given: String,
        /// The supported CRSs, listed for the user.
        supported: String,
    },
    /// A GeoJSON geometry that breaks the structure RFC 7946 requires.
    #[error("invalid GeoJSON geometry{}: {message}", at_suffix(.at))]
    InvalidGeometry {
        /// Where in the geometry object: `coordinates[1][4]`, `geometries[2].type`; empty for the
        /// object itself.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A geometry that breaks the Simple Features validity rules.
    #[error("invalid geometry: {0}")]
    InvalidTopology(String),
    /// Well-Known Binary that cannot be read.
    #[error("invalid WKB at byte offset {offset}: {message}")]
    InvalidWkb {
        /// Where in the bytes the problem was found.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A legacy GeoJSON `crs` member that cannot be read.
    #[error("invalid GeoJSON crs member: {0}")]
    InvalidCrsMember(String),
    /// A coordinate outside WGS 84's longitude and latitude ranges.
    #[error(
        "coordinate {index} ({x}, {y}) is outside WGS 84 longitude -180..180 and latitude -90..90{hint}"
    )]
    NotWgs84 {
        /// The coordinate's position in the geometry, counted from 0 in writing order.
        index: usize,
        /// Its x (should be a longitude).
        x: f64,
        /// Its y (should be a latitude).
        y: f64,
        /// What the values look like instead, starting with "; ", or empty.
        hint: String,
    },
    /// A row's point coordinates that cannot be a point.
    #[error("point ({x}, {y}) from columns {x_column:?} and {y_column:?}: {message}")]
    InvalidPoint {
        /// The east coordinate's column.
        x_column: String,
        /// The north coordinate's column.
        y_column: String,
        /// The east value.
        x: f64,
        /// The north value.
        y: f64,
        /// What is wrong.
        message: String,
    },
}

fn at_suffix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    }
}
