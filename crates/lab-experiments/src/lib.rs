//! The experiments of the MQuicTT study, run on the lab's emulated links ([`mquictt_lab`]):
//! connection cost per transport ([`connection`]), delivery under the study's scenarios
//! ([`delivery`]), the loss sweep with the head-of-line-blocking experiment ([`sweep`]) and the
//! footprint of the binaries ([`footprint`]). Each experiment writes CSV files, charts (SVG and
//! PNG) and its section of `report.md` into one output directory ([`report`]).
//!
//! Brokers run as real processes inside the lab's broker host: our `mquictt broker` (whose
//! path the caller gives, normally the running executable) and Mosquitto for the TCP and TLS
//! rows. Clients run in-process, one thread and one single-threaded tokio runtime per client
//! host, so that their sockets belong to that host's namespace. The crate needs root and
//! `/dev/net/tun`, like the lab; it is separate from the lab crate so that the emulator stays
//! usable without any MQTT code.

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod brokers;
pub mod connection;
pub mod delivery;
mod error;
mod flow;
pub mod footprint;
mod hol;
mod idle_memory;
mod interface;
mod multistream;
pub use mquictt_charts as plot;
mod probe;
pub mod report;
mod run;
mod settings;
pub mod stats;
pub mod sweep;
pub mod table;
pub mod transports;
pub mod workload;

pub use error::ExperimentError;
pub use settings::{NoProgress, Progress, Settings};
