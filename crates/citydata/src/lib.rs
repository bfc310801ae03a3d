//! citydata: the binary's library half. The CLI (`main.rs`) is a thin shell over it, and tests use
//! it directly.
//!
//! - [`publish`]: the publishing pipeline (formats in, one store transaction out).
//! - [`demo`]: the built-in Hong Kong demo datasets.

pub mod demo;
pub mod publish;
mod spatial;
