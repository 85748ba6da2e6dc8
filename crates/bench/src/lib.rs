//! `mquictt-bench`: an MQTT load generator in the spirit of emqtt-bench and the side-by-side
//! comparison of two brokers. [`run`] drives one [`LoadSpec`] (connections, publishers,
//! subscribers, fan-in, fan-out, point-to-point, idle connections) against one [`Target`] over
//! any transport and returns a [`ScenarioReport`]: delivered messages per second, losses,
//! end-to-end latency from a timestamp in the payload and connect latency, as HDR percentiles.
//! [`compare`] starts Mosquitto and the MQuicTT broker on loopback and runs the same scenarios
//! against each, alternating, over TCP, TLS and QUIC, writing a table of ratios, and measures
//! the brokers' CPU and memory against the number of subscribers (the load curve). The clients
//! are purpose-built on the protocol crate's codec: they only do what a load test needs, as
//! cheaply as possible, so the broker and not the load generator is what is measured.

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod client;
pub mod compare;
mod error;
mod held;
mod link;
mod pacer;
pub mod payload;
mod progress;
mod report;
mod runner;
mod spec;
mod stats;

pub use error::BenchError;
pub use progress::Progress;
pub use report::{csv_row, summary_table, write_csv, CSV_HEADER};
pub use runner::run;
pub use spec::{LoadSpec, Scenario, Target};
pub use stats::{LatencySummary, LiveCounters, ScenarioReport};
