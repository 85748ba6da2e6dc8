//! Every transport over real loopback sockets: bind on port 0, connect, and echo bytes both
//! ways, in one large write (past QUIC, TLS record and WebSocket frame sizes) and in many
//! small ones.

mod common;

use std::time::Duration;

use common::{bind, echo, url_for, Fixture, ALL_KINDS};
use mquictt_transport::{Connector, TlsVersion, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(20);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Writes `chunks` in order on one half while reading the echo on the other, then checks the
/// echo is the exact concatenation and ends with end of stream.
async fn round_trip(kind: TransportKind, chunks: Vec<Vec<u8>>) {
    let fixture = Fixture::new();
    let mut listener = bind(kind, &fixture.server_tls()).await;
    let url = url_for(&listener, true);
    let server = tokio::spawn(async move {
        let accepted = listener.accept().await.unwrap();
        assert_eq!(accepted.peer.transport, kind);
        assert_eq!(accepted.peer.local, listener.local_addr());
        assert_eq!(accepted.quic.is_some(), kind == TransportKind::Quic);
        echo(accepted).await.unwrap();
    });
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let connected = connector.connect(&url).await.unwrap();
    assert_eq!(connected.peer.transport, kind);
    assert_eq!(connected.peer.remote.port(), url.port);
    let expected_version = kind.is_encrypted().then_some(TlsVersion::Tls13);
    assert_eq!(connected.peer.tls_version, expected_version);

    let expected: Vec<u8> = chunks.concat();
    let (mut reader, mut writer) = tokio::io::split(connected.stream);
    let writing = tokio::spawn(async move {
        for chunk in chunks {
            writer.write_all(&chunk).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer.shutdown().await.unwrap();
    });
    let mut echoed = Vec::new();
    reader.read_to_end(&mut echoed).await.unwrap();
    assert_eq!(echoed.len(), expected.len(), "{kind}: echo length");
    assert!(echoed == expected, "{kind}: echo content differs");
    writing.await.unwrap();
    server.await.unwrap();
}

async fn large_write(kind: TransportKind) {
    tokio::time::timeout(TIMEOUT, round_trip(kind, vec![pattern(1024 * 1024 + 17)]))
        .await
        .unwrap();
}

async fn many_small_writes(kind: TransportKind) {
    let chunks = (0..2000).map(|i| pattern(1 + i % 13)).collect();
    tokio::time::timeout(TIMEOUT, round_trip(kind, chunks))
        .await
        .unwrap();
}

#[tokio::test]
async fn tcp_echoes_large_and_small_writes() {
    large_write(TransportKind::Tcp).await;
    many_small_writes(TransportKind::Tcp).await;
}

#[tokio::test]
async fn tls_echoes_large_and_small_writes() {
    large_write(TransportKind::Tls).await;
    many_small_writes(TransportKind::Tls).await;
}

#[tokio::test]
async fn ws_echoes_large_and_small_writes() {
    large_write(TransportKind::Ws).await;
    many_small_writes(TransportKind::Ws).await;
}

#[tokio::test]
async fn wss_echoes_large_and_small_writes() {
    large_write(TransportKind::Wss).await;
    many_small_writes(TransportKind::Wss).await;
}

#[tokio::test]
async fn quic_echoes_large_and_small_writes() {
    large_write(TransportKind::Quic).await;
    many_small_writes(TransportKind::Quic).await;
}

#[tokio::test]
async fn every_transport_serves_several_clients_at_once() {
    for kind in ALL_KINDS {
        let fixture = Fixture::new();
        let mut listener = bind(kind, &fixture.server_tls()).await;
        let url = url_for(&listener, false);
        let server = tokio::spawn(async move {
            for _ in 0..3 {
                let accepted = listener.accept().await.unwrap();
                tokio::spawn(echo(accepted));
            }
        });
        let connector = Connector::new(&fixture.client_tls()).unwrap();
        let mut clients = Vec::new();
        for i in 0..3u8 {
            let connector = connector.clone();
            let url = url.clone();
            clients.push(tokio::spawn(async move {
                let mut stream = connector.connect(&url).await.unwrap().stream;
                stream.write_all(&[i; 100]).await.unwrap();
                stream.flush().await.unwrap();
                let mut back = [0u8; 100];
                stream.read_exact(&mut back).await.unwrap();
                assert_eq!(back, [i; 100]);
            }));
        }
        for client in clients {
            tokio::time::timeout(TIMEOUT, client)
                .await
                .unwrap()
                .unwrap();
        }
        server.await.unwrap();
    }
}
