//! QUIC beyond one stream: multi-stream mode (a control stream plus data streams, each its own
//! byte stream with its id, independent of each other), 0-RTT (accepted on resumption, and
//! rejected early bytes sent again transparently), and migration to a new local port.

mod common;

use std::time::Duration;

use common::{bind, echo, url_for, Fixture};
use mquictt_transport::{
    ConnectOptions, Connected, Connector, Listener, QuicClientOptions, ServerTlsSettings,
    TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn exchange(connected: &mut Connected, message: &[u8]) {
    connected.stream.write_all(message).await.unwrap();
    connected.stream.flush().await.unwrap();
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(TIMEOUT, connected.stream.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, message);
}

fn zero_rtt_connector(fixture: &Fixture) -> Connector {
    let options = ConnectOptions {
        quic: QuicClientOptions {
            zero_rtt: true,
            ..Default::default()
        },
        ..Default::default()
    };
    Connector::with_options(&fixture.client_tls(), options).unwrap()
}

async fn zero_rtt_listener(fixture: &Fixture) -> Listener {
    let settings: ServerTlsSettings = fixture.server_tls().with_quic_zero_rtt(true);
    bind(TransportKind::Quic, &settings).await
}

#[tokio::test]
async fn data_streams_are_separate_byte_streams_with_their_ids() {
    let fixture = Fixture::new();
    let mut listener = bind(TransportKind::Quic, &fixture.server_tls()).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut connected = connector.connect(&url_for(&listener, true)).await.unwrap();
    let client = connected.quic.clone().unwrap();
    connected.stream.write_all(b"control").await.unwrap();
    let mut accepted = listener.accept().await.unwrap();
    let server = accepted.quic.clone().unwrap();
    assert_eq!(server.control_stream_id(), 0);

    let mut first = client.open_data_stream().await.unwrap();
    let mut second = client.open_data_stream().await.unwrap();
    assert_eq!((first.id(), second.id()), (4, 8));

    // QUIC opens streams in id order, so a frame on stream 8 also opens stream 4: the server
    // accepts both, in id order. Stream 8 is written first and must be readable while stream
    // 4 stays silent: no head-of-line blocking between streams.
    second.write_all(b"second").await.unwrap();
    let mut server_first = tokio::time::timeout(TIMEOUT, server.accept_data_stream())
        .await
        .unwrap()
        .unwrap();
    let mut server_second = tokio::time::timeout(TIMEOUT, server.accept_data_stream())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((server_first.id(), server_second.id()), (4, 8));
    let mut bytes = [0u8; 6];
    tokio::time::timeout(TIMEOUT, server_second.read_exact(&mut bytes))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&bytes, b"second");

    first.write_all(b"first").await.unwrap();
    let mut bytes = [0u8; 5];
    server_first.read_exact(&mut bytes).await.unwrap();
    assert_eq!(&bytes, b"first");

    // Each stream answers on itself; closing a data stream leaves the others open.
    server_first.write_all(b"ack-1").await.unwrap();
    server_first.shutdown().await.unwrap();
    let mut reply = Vec::new();
    first.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"ack-1");
    let mut control = [0u8; 7];
    accepted.stream.read_exact(&mut control).await.unwrap();
    assert_eq!(&control, b"control");
    server_second.write_all(b"ack-2").await.unwrap();
    let mut reply = [0u8; 5];
    second.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"ack-2");
}

#[tokio::test]
async fn losing_the_control_stream_closes_with_error_1() {
    let fixture = Fixture::new();
    let mut listener = bind(TransportKind::Quic, &fixture.server_tls()).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut connected = connector.connect(&url_for(&listener, true)).await.unwrap();
    connected.stream.write_all(b"x").await.unwrap();
    let accepted = listener.accept().await.unwrap();
    accepted.quic.unwrap().close_for_lost_control_stream();
    let reason = tokio::time::timeout(TIMEOUT, connected.quic.unwrap().connection().closed())
        .await
        .unwrap();
    match reason {
        mquictt_transport::quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 1)
        }
        other => panic!("expected an application close, got {other}"),
    }
}

#[tokio::test]
async fn a_resumed_connection_sends_its_first_bytes_in_0rtt() {
    let fixture = Fixture::new();
    let mut listener = zero_rtt_listener(&fixture).await;
    let url = url_for(&listener, true);
    let connector = zero_rtt_connector(&fixture);

    // First connection: full handshake, which leaves a session ticket with the connector.
    let mut first = connector.connect(&url).await.unwrap();
    assert!(!first.quic.as_ref().unwrap().zero_rtt_attempted());
    first.stream.write_all(b"one").await.unwrap();
    let accepted = listener.accept().await.unwrap();
    assert!(!accepted.quic.as_ref().unwrap().early_data());
    tokio::spawn(echo(accepted));
    let mut back = [0u8; 3];
    first.stream.read_exact(&mut back).await.unwrap();
    exchange(&mut first, b"-first").await;
    drop(first);

    // Second connection: the first bytes go out before the handshake completes.
    let mut second = connector.connect(&url).await.unwrap();
    let client = second.quic.clone().unwrap();
    assert!(client.zero_rtt_attempted());
    second.stream.write_all(b"early").await.unwrap();
    let accepted = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let server = accepted.quic.clone().unwrap();
    assert!(server.early_data(), "the server did not see 0-RTT data");
    tokio::spawn(echo(accepted));
    let mut back = [0u8; 5];
    second.stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"early");
    assert!(client.zero_rtt_accepted().await.unwrap());
    server.handshake_complete().await.unwrap();
    assert!(server.is_handshake_complete());
    exchange(&mut second, b"after the handshake").await;
}

#[tokio::test]
async fn rejected_0rtt_bytes_are_sent_again() {
    let fixture = Fixture::new();
    let connector = zero_rtt_connector(&fixture);
    // A ticket from one server process...
    let mut issuer = zero_rtt_listener(&fixture).await;
    let mut first = connector.connect(&url_for(&issuer, true)).await.unwrap();
    first.stream.write_all(b"x").await.unwrap();
    tokio::spawn(echo(issuer.accept().await.unwrap()));
    let mut back = [0u8; 1];
    first.stream.read_exact(&mut back).await.unwrap();
    drop(first);

    // ...is unknown to another one with the same name and certificate, which refuses the
    // early data but completes the handshake.
    let mut listener = zero_rtt_listener(&fixture).await;
    let mut second = connector.connect(&url_for(&listener, true)).await.unwrap();
    let client = second.quic.clone().unwrap();
    assert!(client.zero_rtt_attempted());
    second.stream.write_all(b"CONNECT").await.unwrap();
    // Like an MQTT client waiting for CONNACK, keep a read pending: that read meets the
    // rejection and sends the early bytes again on a new stream.
    let reading = tokio::spawn(async move {
        let mut back = [0u8; 7];
        tokio::time::timeout(TIMEOUT, second.stream.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back, b"CONNECT");
        second
    });
    let accepted = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    assert!(!accepted.quic.as_ref().unwrap().early_data());
    tokio::spawn(echo(accepted));
    let mut second = reading.await.unwrap();
    assert!(!client.zero_rtt_accepted().await.unwrap());
    exchange(&mut second, b"and then more").await;
}

#[tokio::test]
async fn the_connection_survives_a_new_local_port() {
    let fixture = Fixture::new();
    let mut listener = bind(TransportKind::Quic, &fixture.server_tls()).await;
    let connector = Connector::new(&fixture.client_tls()).unwrap();
    let mut connected = connector.connect(&url_for(&listener, false)).await.unwrap();
    connected.stream.write_all(b"before").await.unwrap();
    let accepted = listener.accept().await.unwrap();
    let server = accepted.quic.clone().unwrap();
    tokio::spawn(echo(accepted));
    let mut back = [0u8; 6];
    connected.stream.read_exact(&mut back).await.unwrap();
    let old_remote = server.connection().remote_address();

    let client = connected.quic.clone().unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let new_port = socket.local_addr().unwrap().port();
    assert_ne!(new_port, old_remote.port());
    client.rebind(socket).unwrap();
    assert_eq!(client.endpoint().local_addr().unwrap().port(), new_port);

    exchange(&mut connected, b"after the move").await;
    // Same connection, new path: the server now sends to the new port.
    assert_eq!(server.connection().remote_address().port(), new_port);
    assert_ne!(server.connection().remote_address(), old_remote);
    assert!(server.connection().close_reason().is_none());
}
