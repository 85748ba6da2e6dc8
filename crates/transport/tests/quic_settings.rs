//! QUIC transport settings seen on the wire: with path MTU discovery switched off no datagram
//! in either direction exceeds QUIC's initial 1,200 bytes (and with it on, larger ones do
//! appear on loopback, which shows the measurement can tell), and a listener's stream limit
//! caps the bidirectional streams a client may have open at once.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{echo, url_for, Fixture};
use mquictt_transport::{
    ConnectOptions, Connector, QuicClientOptions, QuicServerOptions, TransportUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(10);

/// QUIC's initial datagram size: every path carries it (RFC 9000 section 14).
const INITIAL_SIZE: usize = 1200;

/// The largest UDP payload seen in each direction by a [`relay`].
#[derive(Default)]
struct Largest {
    to_server: AtomicUsize,
    to_client: AtomicUsize,
}

impl Largest {
    fn both(&self) -> (usize, usize) {
        (
            self.to_server.load(Ordering::Relaxed),
            self.to_client.load(Ordering::Relaxed),
        )
    }
}

/// Forwards UDP between one client and `server`, recording the largest datagram each way.
/// Returns the address clients send to.
async fn relay(server: SocketAddr, largest: Arc<Largest>) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(server).await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        // Loopback allows datagrams up to 64 KiB, far above any QUIC probe.
        let mut from_client = vec![0u8; 65536];
        let mut from_server = vec![0u8; 65536];
        let mut client = None;
        loop {
            tokio::select! {
                Ok((n, peer)) = front.recv_from(&mut from_client) => {
                    client = Some(peer);
                    largest.to_server.fetch_max(n, Ordering::Relaxed);
                    let _ = back.send(&from_client[..n]).await;
                }
                Ok(n) = back.recv(&mut from_server) => {
                    largest.to_client.fetch_max(n, Ordering::Relaxed);
                    if let Some(peer) = client {
                        let _ = front.send_to(&from_server[..n], peer).await;
                    }
                }
            }
        }
    });
    addr
}

fn connector(fixture: &Fixture, mtu_discovery: bool) -> Connector {
    let options = ConnectOptions {
        quic: QuicClientOptions {
            mtu_discovery,
            ..QuicClientOptions::default()
        },
        ..ConnectOptions::default()
    };
    Connector::with_options(&fixture.client_tls(), options).unwrap()
}

/// Connects through a relay to an echo server, with path MTU discovery on or off at both
/// ends, echoes 64 KiB (enough to fill the largest datagrams the path allows), then waits
/// until `done` says the largest datagrams seen are final or `settle` has passed. Returns the
/// largest datagram each way.
async fn largest_datagrams(
    mtu_discovery: bool,
    settle: Duration,
    done: impl Fn((usize, usize)) -> bool,
) -> (usize, usize) {
    let fixture = Fixture::new();
    let mut listener = fixture
        .quic_listener(QuicServerOptions {
            mtu_discovery,
            ..QuicServerOptions::default()
        })
        .await;
    let largest = Arc::new(Largest::default());
    let front = relay(listener.local_addr(), largest.clone()).await;
    tokio::spawn(async move {
        while let Ok(accepted) = listener.accept().await {
            tokio::spawn(echo(accepted));
        }
    });
    let url = TransportUrl::parse(&format!("quic://127.0.0.1:{}", front.port())).unwrap();
    let mut connected =
        tokio::time::timeout(TIMEOUT, connector(&fixture, mtu_discovery).connect(&url))
            .await
            .unwrap()
            .unwrap();
    let message: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    connected.stream.write_all(&message).await.unwrap();
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(TIMEOUT, connected.stream.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, message);
    let deadline = tokio::time::Instant::now() + settle;
    while !done(largest.both()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    largest.both()
}

#[tokio::test]
async fn without_mtu_discovery_no_datagram_exceeds_the_initial_size() {
    // Discovery probes go out right after the handshake on loopback; a second is ample for
    // any to have been sent.
    let (to_server, to_client) = largest_datagrams(false, Duration::from_secs(1), |_| false).await;
    assert!(to_server > 0 && to_client > 0, "the relay saw no traffic");
    assert!(
        to_server <= INITIAL_SIZE && to_client <= INITIAL_SIZE,
        "largest datagrams: {to_server} to the server, {to_client} to the client"
    );
}

#[tokio::test]
async fn with_mtu_discovery_larger_datagrams_appear_on_loopback() {
    let (to_server, to_client) = largest_datagrams(true, TIMEOUT, |(to_server, to_client)| {
        to_server > INITIAL_SIZE && to_client > INITIAL_SIZE
    })
    .await;
    assert!(
        to_server > INITIAL_SIZE && to_client > INITIAL_SIZE,
        "largest datagrams: {to_server} to the server, {to_client} to the client"
    );
}

#[tokio::test]
async fn the_stream_limit_caps_open_bidirectional_streams() {
    let fixture = Fixture::new();
    let mut listener = fixture
        .quic_listener(QuicServerOptions {
            max_bidi_streams: 2,
            ..QuicServerOptions::default()
        })
        .await;
    let url = url_for(&listener, true);
    let mut connected = Connector::new(&fixture.client_tls())
        .unwrap()
        .connect(&url)
        .await
        .unwrap();
    let client = connected.quic.clone().unwrap();
    connected.stream.write_all(b"control").await.unwrap();
    let accepted = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let server = accepted.quic.clone().unwrap();

    // The control stream and one data stream fit; a third stream waits for credit.
    let mut data = client.open_data_stream().await.unwrap();
    data.write_all(b"data").await.unwrap();
    let mut served = tokio::time::timeout(TIMEOUT, server.accept_data_stream())
        .await
        .unwrap()
        .unwrap();
    let third = tokio::time::timeout(Duration::from_millis(300), client.open_data_stream()).await;
    assert!(third.is_err(), "a third stream opened beyond a limit of 2");

    // Ending the data stream on both sides frees its place.
    data.shutdown().await.unwrap();
    let mut rest = Vec::new();
    served.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"data");
    served.shutdown().await.unwrap();
    let mut nothing = Vec::new();
    tokio::time::timeout(TIMEOUT, data.read_to_end(&mut nothing))
        .await
        .unwrap()
        .unwrap();
    drop((data, served));
    let reopened = tokio::time::timeout(TIMEOUT, client.open_data_stream()).await;
    assert!(reopened.is_ok(), "a closed stream did not free its place");
    drop(accepted);
}
