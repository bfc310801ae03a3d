//! Integration tests of the `citydata` binary: each test runs the real command in a temporary
//! folder, and servers on a free port that the test stops.

mod common;
mod crash;
mod publish;
mod serve;
