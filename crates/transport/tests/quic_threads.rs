//! A QUIC listener with threads of its own ([`QuicServerOptions::threads`]): each connection
//! is placed on the thread with the fewest live connections, its stream is served from that
//! thread's runtime, and a thread freed by a closed connection takes the next one.

mod common;

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
    let mut accepted = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut first = [0u8; 1];
    accepted.stream.read_exact(&mut first).await.unwrap();
    (connected, accepted)
}

/// The name of the thread `accepted`'s tasks run on.
async fn thread_of(accepted: &Accepted) -> String {
    let runtime = accepted
        .quic
        .as_ref()
        .and_then(|quic| quic.runtime())
        .expect("a connection of a threaded listener has a runtime")
        .clone();
    runtime
        .spawn(async { std::thread::current().name().unwrap_or_default().to_owned() })
        .await
        .unwrap()
}

#[tokio::test]
async fn connections_go_to_the_least_busy_thread_and_are_served_there() {
    let fixture = Fixture::new();
    let mut listener = threaded_listener(&fixture, 2).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut pairs = Vec::new();
    for _ in 0..4 {
        pairs.push(connect(&connector, &mut listener).await);
    }
    let mut threads = Vec::new();
    for (_, accepted) in &pairs {
        threads.push(thread_of(accepted).await);
    }
    assert_eq!(
        threads,
        [
            "mquictt-quic-0",
            "mquictt-quic-1",
            "mquictt-quic-0",
            "mquictt-quic-1"
        ]
    );

    // Each stream echoes from its own thread.
    for (index, (connected, accepted)) in pairs.iter_mut().enumerate() {
        let runtime = accepted.quic.as_ref().unwrap().runtime().unwrap().clone();
        let mut stream = std::mem::replace(&mut accepted.stream, Box::new(tokio::io::empty()));
        let echo = runtime.spawn(async move {
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
            stream.flush().await.unwrap();
            stream
        });
        let message = format!("hello{index}");
        connected.stream.write_all(&message.as_bytes()[..5]).await.unwrap();
        let mut back = [0u8; 5];
        tokio::time::timeout(PATIENCE, connected.stream.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back, b"hello");
        accepted.stream = echo.await.unwrap();
    }

    // The first connection closes: its thread has the fewest connections again.
    let (first_client, first_server) = pairs.remove(0);
    drop(first_server);
    drop(first_client);
    let (_, accepted) = connect(&connector, &mut listener).await;
    assert_eq!(thread_of(&accepted).await, "mquictt-quic-0");
}

#[tokio::test]
async fn without_threads_connections_stay_on_the_listeners_runtime() {
    let fixture = Fixture::new();
    let mut listener = threaded_listener(&fixture, 0).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let (_connected, accepted) = connect(&connector, &mut listener).await;
    assert!(accepted.quic.as_ref().unwrap().runtime().is_none());
}
