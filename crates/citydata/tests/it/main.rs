//! Integration tests of the `citydata` binary: each test runs the real command in a temporary
//! folder, and servers on a free port that the test stops.

// Test helpers may panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;
mod crash;
mod dashboard;
mod demo;
mod live;
mod mqtt;
mod mqtt_crash;
mod publish;
mod readings;
mod sensors_crash;
mod serve;
mod spatial;
mod tidy;
