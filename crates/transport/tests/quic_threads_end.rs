//! The threads of a QUIC listener outlive it while connections placed on them live, and end
//! once the listener and every connection are gone. (A file of its own: it counts the
//! process's threads, which another test running beside it would change.)

mod common;

use std::time::Duration;

use common::Fixture;
use mquictt_transport::{Connector, QuicServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATIENCE: Duration = Duration::from_secs(10);

/// How many threads of this process carry a QUIC listener's name.
fn quic_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("mquictt-quic-"))
        .count()
}

async fn until_quic_threads(count: usize) {
    tokio::time::timeout(PATIENCE, async {
        while quic_threads() != count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} QUIC threads, expected {count}", quic_threads()));
}

#[tokio::test]
async fn the_threads_live_as_long_as_their_connections() {
    let fixture = Fixture::new();
    let mut listener = fixture
        .quic_listener(QuicServerOptions {
            threads: 2,
            ..QuicServerOptions::default()
        })
        .await;
    // A thread takes its name once it runs.
    until_quic_threads(2).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut connected = connector
        .connect(&common::url_for(&listener, false))
        .await
        .unwrap();
    connected.stream.write_all(b"ping").await.unwrap();
    let mut accepted = common::accept_first(&mut listener, b"ping").await;

    // Without the listener, the connection goes on.
    drop(listener);
    accepted.stream.write_all(b"pong").await.unwrap();
    accepted.stream.flush().await.unwrap();
    let mut bytes = [0u8; 4];
    tokio::time::timeout(PATIENCE, connected.stream.read_exact(&mut bytes))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&bytes, b"pong");
    assert_eq!(quic_threads(), 2);

    drop(accepted);
    drop(connected);
    until_quic_threads(0).await;
}
