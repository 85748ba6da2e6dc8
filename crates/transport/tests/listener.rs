//! Listener behaviour shared by all transports: a client that never finishes its handshake
//! is dropped after the handshake timeout and does not hold up other clients.

mod common;

use std::time::Duration;

use common::{url_for, Fixture};
use mquictt_transport::{Connector, ListenUrl, Listener, ListenerOptions, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_silent_client_times_out_without_blocking_others() {
    let fixture = Fixture::new();
    for kind in [TransportKind::Tls, TransportKind::Ws, TransportKind::Wss] {
        let options = ListenerOptions {
            handshake_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let url = ListenUrl::new(kind, "127.0.0.1:0".parse().unwrap());
        let mut listener = Listener::bind_with_options(&url, &fixture.server_tls(), options)
            .await
            .unwrap();
        // Opens a socket and says nothing.
        let mut silent = TcpStream::connect(listener.local_addr()).await.unwrap();

        let connector = Connector::new(&fixture.client_tls()).unwrap();
        let mut connected = connector.connect(&url_for(&listener, true)).await.unwrap();
        connected.stream.write_all(b"hi").await.unwrap();
        connected.stream.flush().await.unwrap();
        let mut accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut bytes = [0u8; 2];
        accepted.stream.read_exact(&mut bytes).await.unwrap();
        assert_eq!(&bytes, b"hi");

        // The silent socket is closed by the server once the timeout passes.
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{kind}: {read:?}");
        // The count is taken just after the socket is dropped.
        tokio::time::timeout(Duration::from_secs(5), async {
            while listener.failed_handshakes() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(listener.failed_handshakes(), 1, "{kind}");
    }
}
