//! How large QUIC datagrams grow: by default no larger than an Ethernet frame; with the
//! loopback ceiling set on both ends, path MTU discovery finds larger datagrams in both
//! directions; a ceiling on one end also bounds the peer, which never sends more than we
//! announce; and a bulk transfer at full speed over loopback loses no datagram to a full
//! socket buffer.

mod common;

use std::time::Duration;

use common::Fixture;
use mquictt_transport::quic::LOOPBACK_MAX_UDP_PAYLOAD;
use mquictt_transport::{
    ConnectOptions, Connected, Connector, Listener, QuicClientOptions, QuicServerOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest datagram of an Ethernet path, quinn's default ceiling.
const ETHERNET_UDP_PAYLOAD: u16 = 1452;

async fn connect(fixture: &Fixture, listener: &Listener, quic: QuicClientOptions) -> Connected {
    let options = ConnectOptions {
        quic,
        ..ConnectOptions::default()
    };
    let connector = Connector::with_options(&fixture.client_tls(), options).unwrap();
    connector
        .connect(&common::url_for(listener, false))
        .await
        .unwrap()
}

/// The current path MTU of `connection` once it stopped changing for a while (discovery
/// is done), or after [`TIMEOUT`].
async fn settled_mtu(connection: &mquictt_transport::quinn::Connection) -> u16 {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut last = connection.stats().path.current_mtu;
    let mut stable_since = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = connection.stats().path.current_mtu;
        if now != last {
            last = now;
            stable_since = tokio::time::Instant::now();
        } else if stable_since.elapsed() > Duration::from_millis(500) {
            break;
        }
    }
    last
}

/// Connects a client with `client` options to a listener with `server` options and returns
/// both ends' path MTU once discovery has settled.
async fn settled_mtus(server: QuicServerOptions, client: QuicClientOptions) -> (u16, u16) {
    let fixture = Fixture::new();
    let mut listener = fixture.quic_listener(server).await;
    let mut connected = connect(&fixture, &listener, client).await;
    connected.stream.write_all(b"ping").await.unwrap();
    let accepted = common::accept_first(&mut listener, b"ping").await;
    let client_mtu = settled_mtu(connected.quic.as_ref().unwrap().connection()).await;
    let server_mtu = settled_mtu(accepted.quic.as_ref().unwrap().connection()).await;
    (client_mtu, server_mtu)
}

#[tokio::test]
async fn datagrams_stay_ethernet_sized_unless_a_ceiling_is_set() {
    let (client_mtu, server_mtu) =
        settled_mtus(QuicServerOptions::default(), QuicClientOptions::default()).await;
    assert!(
        client_mtu <= ETHERNET_UDP_PAYLOAD,
        "client path MTU {client_mtu}"
    );
    assert!(
        server_mtu <= ETHERNET_UDP_PAYLOAD,
        "server path MTU {server_mtu}"
    );
}

#[tokio::test]
async fn with_the_loopback_ceiling_discovery_finds_larger_datagrams_both_ways() {
    let server = QuicServerOptions {
        // Off by default on a server.
        mtu_discovery: true,
        max_udp_payload: Some(LOOPBACK_MAX_UDP_PAYLOAD),
        ..QuicServerOptions::default()
    };
    let client = QuicClientOptions {
        max_udp_payload: Some(LOOPBACK_MAX_UDP_PAYLOAD),
        ..QuicClientOptions::default()
    };
    let (client_mtu, server_mtu) = settled_mtus(server, client).await;
    assert!(
        client_mtu > ETHERNET_UDP_PAYLOAD && client_mtu <= LOOPBACK_MAX_UDP_PAYLOAD,
        "client path MTU {client_mtu}"
    );
    assert!(
        server_mtu > ETHERNET_UDP_PAYLOAD && server_mtu <= LOOPBACK_MAX_UDP_PAYLOAD,
        "server path MTU {server_mtu}"
    );
}

#[tokio::test]
async fn a_ceiling_on_one_end_bounds_both_directions() {
    let server = QuicServerOptions {
        // Off by default on a server.
        mtu_discovery: true,
        max_udp_payload: Some(LOOPBACK_MAX_UDP_PAYLOAD),
        ..QuicServerOptions::default()
    };
    let client = QuicClientOptions {
        max_udp_payload: Some(1300),
        ..QuicClientOptions::default()
    };
    let (client_mtu, server_mtu) = settled_mtus(server, client).await;
    assert!(client_mtu <= 1300, "client path MTU {client_mtu}");
    // The client announces no more than an Ethernet-sized datagram (it never announces less
    // than quinn's default of 1472), so the server stops there despite its own ceiling.
    assert!(server_mtu <= 1472, "server path MTU {server_mtu}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_transfer_over_loopback_loses_no_datagram() {
    const BYTES: usize = 16 << 20;
    // The connection's flow-control window (1.25 MB by default) bounds the bytes in flight,
    // so a receive buffer of a few MiB cannot overflow; a system that caps socket buffers
    // lower (`net.core.rmem_max`) gives no such guarantee.
    let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok());
    if rmem_max.is_some_and(|max| max < mquictt_transport::quic::DEFAULT_SOCKET_BUFFER) {
        eprintln!("net.core.rmem_max is {rmem_max:?}, below the requested buffer: not checked");
        return;
    }
    let fixture = Fixture::new();
    let mut listener = fixture.quic_listener(QuicServerOptions::default()).await;
    let mut connected = connect(&fixture, &listener, QuicClientOptions::default()).await;
    connected.stream.write_all(b"ping").await.unwrap();
    let mut accepted = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut bytes = [0u8; 4];
    accepted.stream.read_exact(&mut bytes).await.unwrap();
    let server = accepted.quic.clone().unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5a; 64 * 1024];
        for _ in 0..BYTES / chunk.len() {
            accepted.stream.write_all(&chunk).await.unwrap();
        }
        accepted.stream.shutdown().await.unwrap();
    });
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(60), async {
        while received < BYTES {
            let n = connected.stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "stream ended after {received} bytes");
            received += n;
        }
    })
    .await
    .unwrap();
    writer.await.unwrap();
    let path = server.connection().stats().path;
    assert_eq!(path.lost_packets, 0, "{path:?}");
    assert_eq!(path.black_holes_detected, 0, "{path:?}");
}
