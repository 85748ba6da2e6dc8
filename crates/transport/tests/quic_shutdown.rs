//! Closing a QUIC stream ends even when the peer never acknowledges it: its endpoint stops
//! reading its socket (here: the only thread of its runtime blocks), so no ACK ever comes and
//! the connection, with a long idle timeout, stays up. Without a bound on the drain,
//! `shutdown` would wait for that idle timeout.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{url_for, Fixture};
use mquictt_transport::{Connector, QuicServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Only a guard against a hanging test; the drain gives up long before.
const GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn closing_a_stream_ends_when_the_peer_stops_acknowledging() {
    let fixture = Fixture::new();
    let mut listener = fixture
        .quic_listener(QuicServerOptions {
            // Far beyond the drain's limit: the connection must not fail while the stream
            // drains, so that only the limit can end the wait.
            idle_timeout: Duration::from_secs(600),
            ..QuicServerOptions::default()
        })
        .await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let url = url_for(&listener, false);

    let (greeted_tx, greeted_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut connected = connector.connect(&url).await.unwrap();
            connected.stream.write_all(b"hello").await.unwrap();
            let mut reply = [0u8; 2];
            connected.stream.read_exact(&mut reply).await.unwrap();
            greeted_tx.send(()).unwrap();
            // Blocks the runtime's only thread: the client's endpoint neither reads its
            // socket nor acknowledges anything until released.
            release_rx.recv().unwrap();
            drop(connected);
        });
    });

    let mut accepted = tokio::time::timeout(GUARD, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut hello = [0u8; 5];
    accepted.stream.read_exact(&mut hello).await.unwrap();
    accepted.stream.write_all(b"ok").await.unwrap();
    tokio::time::timeout(GUARD, greeted_rx)
        .await
        .unwrap()
        .unwrap();

    // Within the client's stream window, so the write completes; the bytes are never
    // acknowledged.
    accepted.stream.write_all(&[7u8; 64 * 1024]).await.unwrap();
    tokio::time::timeout(GUARD, accepted.stream.shutdown())
        .await
        .expect("closing the stream hung")
        .unwrap();
    // The drain ended by its limit, not because the connection failed.
    let connection = accepted.quic.as_ref().unwrap().connection();
    assert!(
        connection.close_reason().is_none(),
        "{:?}",
        connection.close_reason()
    );

    release_tx.send(()).unwrap();
    client.join().unwrap();
}
