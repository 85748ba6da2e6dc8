//! A QUIC listener with threads of its own ([`QuicServerOptions::threads`]): one endpoint per
//! thread on the listener's port, each connection served on the thread whose endpoint took
//! it, and a client whose address changes still reaching its connection, whichever endpoint
//! its datagrams now arrive at.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Fixture;
use mquictt_transport::{Accepted, Connected, Connector, Listener, QuicServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATIENCE: Duration = Duration::from_secs(10);

async fn threaded_listener(fixture: &Fixture, threads: usize) -> Listener {
    fixture
        .quic_listener(QuicServerOptions {
            threads,
            ..QuicServerOptions::default()
        })
        .await
}

/// Connects a client, writes one byte so that the server sees its stream, and accepts it.
async fn connect(connector: &Connector, listener: &mut Listener) -> (Connected, Accepted) {
    let url = common::url_for(listener, false);
    let mut connected = connector.connect(&url).await.unwrap();
    connected.stream.write_all(b"!").await.unwrap();
    let accepted = common::accept_first(listener, b"!").await;
    (connected, accepted)
}

/// The runtime of the thread `accepted` lives on.
fn runtime_of(accepted: &Accepted) -> tokio::runtime::Handle {
    accepted
        .quic
        .as_ref()
        .and_then(|quic| quic.runtime())
        .expect("a connection of a threaded listener has a runtime")
        .clone()
}

/// Serves `accepted`'s stream from its own thread: every 5 bytes read are written back.
fn echo_on_its_thread(accepted: &mut Accepted) {
    let mut stream = std::mem::replace(&mut accepted.stream, Box::new(tokio::io::empty()));
    runtime_of(accepted).spawn(async move {
        let mut buf = [0u8; 5];
        while stream.read_exact(&mut buf).await.is_ok() {
            if stream.write_all(&buf).await.is_err() || stream.flush().await.is_err() {
                break;
            }
        }
    });
}

async fn round_trip(connected: &mut Connected, message: &[u8; 5]) {
    connected.stream.write_all(message).await.unwrap();
    let mut back = [0u8; 5];
    tokio::time::timeout(PATIENCE, connected.stream.read_exact(&mut back))
        .await
        .expect("the echo came back in time")
        .unwrap();
    assert_eq!(&back, message);
}

#[tokio::test]
async fn connections_are_served_on_the_threads_of_the_endpoints_that_took_them() {
    let fixture = Fixture::new();
    let mut listener = threaded_listener(&fixture, 2).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut threads = BTreeSet::new();
    let mut pairs = Vec::new();
    // The kernel spreads clients over the two endpoints by their addresses: with 16 clients,
    // all on one is a chance of 1 in 32,768.
    for _ in 0..16 {
        let (connected, mut accepted) = connect(&connector, &mut listener).await;
        let name = runtime_of(&accepted)
            .spawn(async { std::thread::current().name().unwrap_or_default().to_owned() })
            .await
            .unwrap();
        threads.insert(name);
        echo_on_its_thread(&mut accepted);
        pairs.push((connected, accepted));
    }
    assert_eq!(
        threads.into_iter().collect::<Vec<_>>(),
        ["mquictt-quic-0", "mquictt-quic-1"]
    );
    for (connected, _) in &mut pairs {
        round_trip(connected, b"hello").await;
    }
}

#[tokio::test]
async fn a_client_that_changes_address_keeps_its_connection() {
    let fixture = Fixture::new();
    let mut listener = threaded_listener(&fixture, 2).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let (mut connected, mut accepted) = connect(&connector, &mut listener).await;
    let server = accepted.quic.clone().unwrap();
    echo_on_its_thread(&mut accepted);
    round_trip(&mut connected, b"first").await;
    // Each new address reaches either endpoint, as the kernel's hash of it falls: ten moves
    // reach the other one at least once but for a chance of 1 in 1,024.
    let client = connected.quic.clone().unwrap();
    for _ in 0..10 {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        client.rebind(socket).unwrap();
        round_trip(&mut connected, b"moved").await;
        assert_eq!(server.connection().remote_address().port(), port);
    }
    assert!(server.connection().close_reason().is_none());
}

#[tokio::test]
async fn a_second_listener_on_the_port_is_refused() {
    let fixture = Fixture::new();
    let listener = threaded_listener(&fixture, 2).await;
    let taken = mquictt_transport::ListenUrl::new(
        mquictt_transport::TransportKind::Quic,
        listener.local_addr(),
    );
    for threads in [0, 2] {
        let options = mquictt_transport::ListenerOptions {
            quic: QuicServerOptions {
                threads,
                ..QuicServerOptions::default()
            },
            ..mquictt_transport::ListenerOptions::default()
        };
        let err = Listener::bind_with_options(&taken, &fixture.server_tls(), options)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::AddrInUse,
            "{threads}: {err}"
        );
    }
}

#[tokio::test]
async fn without_threads_connections_stay_on_the_listeners_runtime() {
    let fixture = Fixture::new();
    let mut listener = threaded_listener(&fixture, 0).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let (_connected, accepted) = connect(&connector, &mut listener).await;
    assert!(accepted.quic.as_ref().unwrap().runtime().is_none());
}
