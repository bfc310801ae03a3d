//! Geometry for citydata: coordinate reference systems (WGS 84, the Hong Kong 1980 Grid, Web
//! Mercator), GeoJSON geometries read, checked, transformed and written, and vector tiles.
//!
//! **Architecture Invariant:** pure computation: no I/O, no database, no HTTP.

pub mod tiles;
