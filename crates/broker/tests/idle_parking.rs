//! Idle plain-TCP connections park (held without a task) and lose nothing by it: a parked
//! client receives what is published to it promptly, can publish and ping, keeps its
//! unacknowledged messages and send window, is closed with its will published when its keep
//! alive runs out, can be taken over, and is closed by a broker shutdown; the connection gauge
//! stays right throughout.

//!
//! The cases live in `idle_parking/cases.rs`; `idle_without_descriptor.rs` runs them again with
//! every parked socket held without a file descriptor.

#[path = "idle_parking/cases.rs"]
mod cases;
mod common;

/// The broker's configuration: the defaults, under which a broker far from its open-file
/// limit keeps every socket's descriptor.
fn config() -> mquictt_broker::BrokerConfig {
    mquictt_broker::BrokerConfig::default()
}

/// Parked sockets keep their descriptors here.
const HELD: bool = false;
