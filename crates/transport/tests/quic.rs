//! MQTT over QUIC specifics: ALPN `mqtt` is required (a client offering another protocol,
//! or none, is refused), the first client-opened bidirectional stream is the byte stream, and
//! the connection stays reachable from both sides.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bind, Fixture};
use mquictt_transport::quinn;
use mquictt_transport::rustls;
use mquictt_transport::{Connector, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A bare quinn client trusting the development CA and offering `alpn`.
fn raw_client(fixture: &Fixture, alpn: &[&[u8]]) -> quinn::Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    for ca in fixture.dev.ca_certificates().unwrap() {
        roots.add(ca).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

#[tokio::test]
async fn a_client_without_alpn_mqtt_is_refused() {
    let fixture = Fixture::new();
    let mut listener = bind(TransportKind::Quic, &fixture.server_tls()).await;
    let addr = listener.local_addr();
    for (attempt, alpn) in [&[b"h3".as_slice()][..], &[]].into_iter().enumerate() {
        let endpoint = raw_client(&fixture, alpn);
        let outcome = tokio::time::timeout(TIMEOUT, async {
            let connection = endpoint.connect(addr, "localhost").unwrap().await?;
            let (mut send, mut recv) = connection.open_bi().await?;
            send.write_all(b"\x10\x00").await?;
            let mut buf = [0u8; 1];
            recv.read(&mut buf).await?;
            Ok::<(), Box<dyn std::error::Error>>(())
        })
        .await
        .unwrap();
        assert!(outcome.is_err(), "ALPN {alpn:?} was served");
        tokio::time::timeout(TIMEOUT, async {
            while listener.failed_handshakes() < attempt as u64 + 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "a client without ALPN mqtt was handed out"
    );

    // The same bare client offering `mqtt` among others is served.
    let endpoint = raw_client(&fixture, &[b"h3", b"mqtt"]);
    let connection = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(b"\x10\x00").await.unwrap();
    common::accept_first(&mut listener, b"\x10\x00").await;
}

#[tokio::test]
async fn the_connection_is_reachable_from_both_sides() {
    let fixture = Fixture::new();
    let mut listener = bind(TransportKind::Quic, &fixture.server_tls()).await;
    let url = common::url_for(&listener, false);
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut connected = connector.connect(&url).await.unwrap();
    connected.stream.write_all(b"ping").await.unwrap();
    let mut accepted = listener.accept().await.unwrap();
    let server_side = accepted.quic.clone().unwrap();
    let client_side = connected.quic.clone().unwrap();
    assert!(!server_side.early_data());
    assert!(server_side.is_handshake_complete());
    assert!(!client_side.zero_rtt_attempted());
    // The client's endpoint is bound to the wildcard address; the server sees its port.
    assert_eq!(
        server_side.connection().remote_address().port(),
        connected.peer.local.port()
    );
    assert_eq!(
        accepted.peer.remote,
        server_side.connection().remote_address()
    );
    let mut bytes = [0u8; 4];
    accepted.stream.read_exact(&mut bytes).await.unwrap();
    assert_eq!(&bytes, b"ping");
}

/// Sends `sent` from a client and reads it on the server's side of a QUIC listener's stream
/// with `QuicStream::poll_read_append` into `buf` until the end of the stream, calling
/// `after_read` with the buffer and the count after every read.
async fn append_all(
    sent: &[u8],
    buf: &mut bytes::BytesMut,
    mut after_read: impl FnMut(&mut bytes::BytesMut, usize),
) {
    use mquictt_transport::QuicStream;
    let fixture = Fixture::new();
    let mut listener = bind(TransportKind::Quic, &fixture.server_tls()).await;
    let url = common::url_for(&listener, false);
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut connected = connector.connect(&url).await.unwrap();
    let writing = async {
        connected.stream.write_all(sent).await.unwrap();
        connected.stream.shutdown().await.unwrap();
    };
    let reading = async {
        let mut accepted = listener.accept().await.unwrap();
        let quic = accepted
            .stream
            .as_any_mut()
            .downcast_mut::<QuicStream>()
            .expect("a QUIC listener's stream is a QuicStream");
        loop {
            let n = std::future::poll_fn(|cx| quic.poll_read_append(cx, buf))
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            after_read(buf, n);
        }
    };
    tokio::time::timeout(TIMEOUT, async { tokio::join!(writing, reading) })
        .await
        .unwrap();
}

#[tokio::test]
async fn received_chunks_are_appended_in_order_then_the_end_of_the_stream() {
    // More than one datagram's worth, so that several chunks arrive.
    let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut buf = bytes::BytesMut::from(&b"kept:"[..]);
    append_all(&sent, &mut buf, |_, _| {}).await;
    // What the buffer held stays in front of what was appended.
    assert_eq!(&buf[..5], b"kept:");
    assert_eq!(&buf[5..], &sent[..]);
}

#[tokio::test]
async fn a_reader_that_empties_its_buffer_between_reads_gets_every_byte_once() {
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut buf = bytes::BytesMut::new();
    let mut received = Vec::new();
    // As the broker's decoder does: what was read is taken out before the next read.
    append_all(&sent, &mut buf, |buf, n| {
        assert_eq!(buf.len(), n);
        received.extend_from_slice(&buf.split());
    })
    .await;
    assert_eq!(received, sent);
}
