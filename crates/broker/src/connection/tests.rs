//! Footprint of the connection driver: what every busy connection's task holds, and what a
//! parked idle connection keeps without one (docs/benchmarks.md, "memory per idle
//! connection").

use std::sync::Arc;

use super::*;
use crate::{AllowAll, Broker, BrokerConfig, MemoryStorage};

/// The connection state itself: the protocol machine (656 bytes) and little else; rare
/// states (enhanced authentication, QUIC hooks) are boxed.
const DRIVER_BYTES: usize = 1_536;
/// What an idle, parked TCP connection keeps of it (1,008 bytes when this was written, 1,136
/// before the session kept only the terms of its CONNECT and its packet-identifier maps lost
/// their random seeds): the protocol machine, the attached session's handles and the socket,
/// no buffers.
const PARKED_BYTES: usize = 1_024;
/// The whole future of a busy connection's task in an optimised build (2,888 bytes when this
/// was written, 6,424 before the rare paths were boxed, 3,152 once the loop learnt to park
/// and to read close requests from the connection's signal). An idle connection no longer
/// holds it (it parks). Unoptimised builds keep more locals alive across awaits, so only
/// release builds check it.
const SERVE_FUTURE_BYTES: usize = 3_200;

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
    assert!(
        std::mem::size_of::<ParkedConnection>() <= PARKED_BYTES,
        "parked connection is {} bytes",
        std::mem::size_of::<ParkedConnection>()
    );
    assert!(
        std::mem::size_of::<Driver<tokio::net::TcpStream>>() <= DRIVER_BYTES,
        "TCP driver is {} bytes",
        std::mem::size_of::<Driver<tokio::net::TcpStream>>()
    );
    let (ours, _theirs) = tokio::io::duplex(64);
    let stream: mquictt_transport::BoxStream = Box::new(ours);
    let future = broker.serve_connection(stream, PeerInfo::default());
    let size = std::mem::size_of_val(&future);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(client).unwrap();
    let tcp_future = broker.serve_tcp_connection(tcp, PeerInfo::default());
    let tcp_size = std::mem::size_of_val(&tcp_future);
    if !cfg!(debug_assertions) {
        assert!(size <= SERVE_FUTURE_BYTES, "serve future is {size} bytes");
        assert!(
            tcp_size <= SERVE_FUTURE_BYTES,
            "TCP serve future is {tcp_size} bytes"
        );
    }
}
