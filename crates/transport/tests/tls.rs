//! TLS over TCP, WSS and QUIC: version negotiation, client certificates (required and
//! optional), and refusal of a server certificate from an untrusted CA.

mod common;

use std::time::Duration;

use common::{bind, echo, url_for, Fixture};
use mquictt_transport::{
    CertificateAuthority, ClientAuth, ClientTlsSettings, Connector, Listener, TlsVersion,
    TlsVersions, TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Connects with `client`, checks one echoed message, and returns the server's view of the
/// peer's TLS version and client certificate.
async fn echo_once(
    listener: &mut Listener,
    client: &ClientTlsSettings,
) -> (Option<TlsVersion>, Option<Vec<u8>>, Option<TlsVersion>) {
    let url = url_for(listener, true);
    let connector = Connector::new(client).unwrap();
    let (connected, accepted) = tokio::time::timeout(TIMEOUT, async {
        let mut connected = connector.connect(&url).await.unwrap();
        connected.stream.write_all(b"hello").await.unwrap();
        connected.stream.flush().await.unwrap();
        (connected, listener.accept().await.unwrap())
    })
    .await
    .unwrap();
    let server_view = (
        accepted.peer.tls_version,
        accepted.peer.client_cert_der.as_ref().map(|c| c.to_vec()),
    );
    tokio::spawn(echo(accepted));
    let mut stream = connected.stream;
    let mut back = [0u8; 5];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"hello");
    (server_view.0, server_view.1, connected.peer.tls_version)
}

/// Expects the server to refuse the client: the client sees an error (at connect, or at the
/// first read once the server's alert arrives) and the listener counts a failed handshake
/// without handing out a connection.
async fn expect_refused(listener: &mut Listener, client: &ClientTlsSettings) {
    let url = url_for(listener, true);
    let connector = Connector::new(client).unwrap();
    let outcome = tokio::time::timeout(TIMEOUT, async {
        let mut connected = connector.connect(&url).await?;
        connected.stream.write_all(b"hello").await?;
        connected.stream.flush().await?;
        let mut buf = [0u8; 1];
        let n = connected.stream.read(&mut buf).await?;
        Ok::<usize, Box<dyn std::error::Error>>(n)
    })
    .await
    .unwrap();
    match outcome {
        Err(_) | Ok(0) => {}
        Ok(n) => panic!("a refused client read {n} bytes"),
    }
    let counted = tokio::time::timeout(TIMEOUT, async {
        while listener.failed_handshakes() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "the listener did not count the refusal");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a refused client was handed out");
}

#[tokio::test]
async fn tls_12_and_13_are_both_negotiated() {
    let fixture = Fixture::new();
    for kind in [TransportKind::Tls, TransportKind::Wss] {
        let mut listener = bind(kind, &fixture.server_tls()).await;
        for (versions, expected) in [
            (TlsVersions::OnlyTls12, TlsVersion::Tls12),
            (TlsVersions::OnlyTls13, TlsVersion::Tls13),
            (TlsVersions::Tls12AndTls13, TlsVersion::Tls13),
        ] {
            let client = fixture.client_tls().with_versions(versions);
            let (server_version, _, client_version) = echo_once(&mut listener, &client).await;
            assert_eq!(server_version, Some(expected), "{kind} {versions:?}");
            assert_eq!(client_version, Some(expected), "{kind} {versions:?}");
        }
    }
}

#[tokio::test]
async fn a_server_limited_to_tls13_refuses_a_tls12_client() {
    let fixture = Fixture::new();
    let mut server = fixture.server_tls();
    server.versions = TlsVersions::OnlyTls13;
    let mut listener = bind(TransportKind::Tls, &server).await;
    let client = fixture.client_tls().with_versions(TlsVersions::OnlyTls12);
    expect_refused(&mut listener, &client).await;
}

#[tokio::test]
async fn required_client_certificates_refuse_clients_without_one_and_accept_clients_with_one() {
    let fixture = Fixture::new();
    let ca = fixture.dev.authority().unwrap();
    let device = ca.issue_client("device-1").unwrap();
    let server = fixture
        .server_tls()
        .with_client_auth(ClientAuth::Required(vec![ca.cert_der().clone()]));
    for kind in [TransportKind::Tls, TransportKind::Wss, TransportKind::Quic] {
        let mut listener = bind(kind, &server).await;
        expect_refused(&mut listener, &fixture.client_tls()).await;

        let with_cert = fixture.client_tls().with_identity(device.identity());
        let (_, client_cert, _) = echo_once(&mut listener, &with_cert).await;
        assert_eq!(
            client_cert.as_deref(),
            Some(device.cert_der.as_ref()),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn client_certificates_from_another_ca_are_refused() {
    let fixture = Fixture::new();
    let ca = fixture.dev.authority().unwrap();
    let stranger = CertificateAuthority::generate()
        .unwrap()
        .issue_client("intruder")
        .unwrap();
    let server = fixture
        .server_tls()
        .with_client_auth(ClientAuth::Required(vec![ca.cert_der().clone()]));
    for kind in [TransportKind::Tls, TransportKind::Quic] {
        let mut listener = bind(kind, &server).await;
        let client = fixture.client_tls().with_identity(stranger.identity());
        expect_refused(&mut listener, &client).await;
    }
}

#[tokio::test]
async fn optional_client_certificates_accept_clients_with_and_without_one() {
    let fixture = Fixture::new();
    let ca = fixture.dev.authority().unwrap();
    let device = ca.issue_client("device-2").unwrap();
    let server = fixture
        .server_tls()
        .with_client_auth(ClientAuth::Optional(vec![ca.cert_der().clone()]));
    for kind in [TransportKind::Tls, TransportKind::Quic] {
        let mut listener = bind(kind, &server).await;
        let (_, none, _) = echo_once(&mut listener, &fixture.client_tls()).await;
        assert_eq!(none, None, "{kind}");
        let with_cert = fixture.client_tls().with_identity(device.identity());
        let (_, some, _) = echo_once(&mut listener, &with_cert).await;
        assert_eq!(some.as_deref(), Some(device.cert_der.as_ref()), "{kind}");
    }
}

#[tokio::test]
async fn a_server_certificate_from_an_untrusted_ca_is_refused_by_the_client() {
    let fixture = Fixture::new();
    let other = Fixture::new();
    for kind in [TransportKind::Tls, TransportKind::Wss, TransportKind::Quic] {
        let listener = bind(kind, &fixture.server_tls()).await;
        let url = url_for(&listener, true);
        let connector = Connector::new(&other.client_tls()).unwrap();
        let result = tokio::time::timeout(TIMEOUT, connector.connect(&url))
            .await
            .unwrap();
        let err = result.expect_err("connected to a server signed by an unknown CA");
        let message = err.to_string().to_lowercase();
        assert!(
            message.contains("certificate") || message.contains("unknown"),
            "{kind}: {message}"
        );
    }
}

#[tokio::test]
async fn encrypted_transports_need_certificates_on_both_sides() {
    let fixture = Fixture::new();
    let no_certificate = mquictt_transport::ServerTlsSettings::default();
    for kind in [TransportKind::Tls, TransportKind::Wss, TransportKind::Quic] {
        let url = mquictt_transport::ListenUrl::new(kind, "127.0.0.1:0".parse().unwrap());
        let err = Listener::bind(&url, &no_certificate).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{kind}");
        assert!(err.to_string().contains("certificate"), "{err}");

        let listener = bind(kind, &fixture.server_tls()).await;
        let connector = Connector::new(&ClientTlsSettings::default()).unwrap();
        let err = connector
            .connect(&url_for(&listener, true))
            .await
            .unwrap_err();
        assert!(
            matches!(err, mquictt_transport::TransportError::NoTrustedCa),
            "{kind}: {err}"
        );
    }
}
