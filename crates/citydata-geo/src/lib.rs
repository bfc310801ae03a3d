//! Geometry for citydata: coordinate reference systems (WGS 84, the Hong Kong 1980 Grid, Web
//! Mercator), GeoJSON geometries read, checked, transformed and written, and vector tiles.
//!
//! **Architecture Invariant:** pure computation: no I/O, no database, no HTTP.

pub mod crs;

pub use crs::{from_wgs84, to_wgs84, Crs};

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
}
