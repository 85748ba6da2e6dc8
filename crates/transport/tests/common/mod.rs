//! Shared test fixtures: development certificates in a temporary directory, a listener bound
//! to an ephemeral loopback port for any transport, accepting a client by its first bytes, and
//! an echo server.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use mquictt_transport::{
    Accepted, ClientTlsSettings, DevCertificates, ListenUrl, Listener, ServerTlsSettings,
    TransportKind, TransportUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub dev: DevCertificates,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let dev = DevCertificates::load_or_create(dir.path()).unwrap();
        Fixture { dir, dev }
    }

    pub fn server_tls(&self) -> ServerTlsSettings {
        ServerTlsSettings::from_dev_certificates(&self.dev).unwrap()
    }

    pub fn client_tls(&self) -> ClientTlsSettings {
        ClientTlsSettings::trusting_ca_file(&self.dev.ca_cert).unwrap()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A QUIC listener on an ephemeral loopback port with these QUIC options.
    #[cfg(feature = "quic")]
    pub async fn quic_listener(&self, quic: mquictt_transport::QuicServerOptions) -> Listener {
        let url = ListenUrl::new(TransportKind::Quic, "127.0.0.1:0".parse().unwrap());
        let options = mquictt_transport::ListenerOptions {
            quic,
            ..mquictt_transport::ListenerOptions::default()
        };
        Listener::bind_with_options(&url, &self.server_tls(), options)
            .await
            .unwrap()
    }
}

pub const ALL_KINDS: [TransportKind; 5] = [
    TransportKind::Tcp,
    TransportKind::Tls,
    TransportKind::Ws,
    TransportKind::Wss,
    TransportKind::Quic,
];

/// Binds `kind` on 127.0.0.1 port 0.
pub async fn bind(kind: TransportKind, tls: &ServerTlsSettings) -> Listener {
    let url = ListenUrl::new(kind, "127.0.0.1:0".parse().unwrap());
    Listener::bind(&url, tls).await.unwrap()
}

/// The URL a client uses to reach `listener`, by name (`localhost`) so the certificate's DNS
/// name is checked, or by IP.
pub fn url_for(listener: &Listener, by_name: bool) -> TransportUrl {
    let url = listener.url();
    let host = if by_name {
        "localhost".to_owned()
    } else {
        "127.0.0.1".to_owned()
    };
    let path = if url.kind.is_websocket() {
        url.path.as_str()
    } else {
        ""
    };
    TransportUrl::parse(&format!(
        "{}://{}:{}{}",
        url.kind.scheme(),
        host,
        listener.local_addr().port(),
        path
    ))
    .unwrap()
}

/// Accepts the next connection of `listener` (within 10 s) and reads its first bytes, which
/// must be `first`: a QUIC server sees a client's stream only once the client wrote to it.
pub async fn accept_first(listener: &mut Listener, first: &[u8]) -> Accepted {
    let mut accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("a connection within 10 s")
        .unwrap();
    let mut bytes = vec![0u8; first.len()];
    accepted.stream.read_exact(&mut bytes).await.unwrap();
    assert_eq!(bytes, first);
    accepted
}

/// Echoes everything read back until end of stream, then closes its sending side.
pub async fn echo(accepted: Accepted) -> std::io::Result<()> {
    let (mut reader, mut writer) = tokio::io::split(accepted.stream);
    tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await
}
