//! citydata: the binary's library half. The CLI (`main.rs`) is a thin shell over it, and tests use
//! it directly.
//!
//! - [`publish`]: the publishing pipeline (formats in, one store transaction out).
//! - [`demo`]: the built-in Hong Kong demo datasets.
//! - [`readings`]: each day's sensor readings published as a new version of an open dataset.
//! - [`lampposts`]: the sensor simulator's fleet, made from the demo's smart-lamppost layer.

pub mod demo;
pub mod lampposts;
pub mod publish;
pub mod readings;
mod spatial;
