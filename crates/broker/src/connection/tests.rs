//! Footprint of the connection driver: what every connection's task holds for its whole life,
//! idle or not (docs/benchmarks.md, "memory per idle connection").

use std::sync::Arc;

use super::*;
use crate::{AllowAll, Broker, BrokerConfig, MemoryStorage};

/// The connection state itself: the protocol machine (728 bytes) and little else; rare
/// states (enhanced authentication, QUIC hooks) are boxed.
const DRIVER_BYTES: usize = 1_536;
/// The whole future of a connection's task in an optimised build (2,888 bytes when this was
/// written, 6,424 before the rare paths were boxed). Unoptimised builds keep more locals
/// alive across awaits, so only release builds check it.
const SERVE_FUTURE_BYTES: usize = 3_072;

#[tokio::test]
async fn a_connection_s_state_and_future_stay_small() {
    let broker = Broker::new(
        BrokerConfig::default(),
        Arc::new(MemoryStorage::new()),
        Arc::new(AllowAll),
    )
    .unwrap();
    assert!(
        std::mem::size_of::<Driver<mquictt_transport::BoxStream>>() <= DRIVER_BYTES,
        "driver is {} bytes",
        std::mem::size_of::<Driver<mquictt_transport::BoxStream>>()
    );
    let (ours, _theirs) = tokio::io::duplex(64);
    let stream: mquictt_transport::BoxStream = Box::new(ours);
    let future = broker.serve_connection(stream, PeerInfo::default());
    let size = std::mem::size_of_val(&future);
    if !cfg!(debug_assertions) {
        assert!(size <= SERVE_FUTURE_BYTES, "serve future is {size} bytes");
    }
}

#[test]
fn print_sizes_tmp() {
    eprintln!("parked {}", std::mem::size_of::<ParkedConnection>());
    eprintln!("driver tcp {}", std::mem::size_of::<Driver<tokio::net::TcpStream>>());
}
