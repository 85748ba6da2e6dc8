//! Our broker in the test process, behind a QUIC listener on a loopback port with development
//! certificates in a temporary directory: started on an ephemeral port, stopped (a graceful
//! shutdown that disconnects every client) and started again on the same port to make
//! clients reconnect. Plus the client options that trust it.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mquictt_broker::{AllowAll, Broker, BrokerConfig, MemoryStorage, QuicServing};
use mquictt_client::{ClientOptions, ClientTlsSettings, ReconnectPolicy};
use mquictt_transport::{
    DevCertificates, ListenUrl, Listener, ListenerOptions, ServerTlsSettings, TransportKind,
};
use tempfile::TempDir;

/// Bounded wait for anything a test waits on: generous, only there to turn a hang into a
/// failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A broker serving MQTT over QUIC on 127.0.0.1.
pub struct QuicBroker {
    dir: TempDir,
    certs: DevCertificates,
    port: u16,
    running: Option<Running>,
}

struct Running {
    broker: Broker,
    accept: tokio::task::JoinHandle<()>,
}

impl QuicBroker {
    /// A broker on an ephemeral port.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = DevCertificates::load_or_create(dir.path()).expect("dev certificates");
        let mut broker = QuicBroker {
            dir,
            certs,
            port: 0,
            running: None,
        };
        broker.run().await;
        broker
    }

    /// `quic://localhost:PORT` (the development certificate names `localhost`).
    pub fn url(&self) -> String {
        format!("quic://localhost:{}", self.port)
    }

    /// Client options for this broker, trusting its development CA, reconnecting quickly.
    pub fn options(&self, client_id: &str) -> ClientOptions {
        let tls = ClientTlsSettings::trusting_ca_file(&self.certs.ca_cert).expect("CA file");
        ClientOptions::new(&self.url())
            .expect("URL")
            .tls(tls)
            .client_id(client_id)
            .connect_timeout(Duration::from_secs(2))
            .reconnect(ReconnectPolicy {
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                ..ReconnectPolicy::default()
            })
    }

    /// Shuts the broker down: every client gets DISCONNECT 0x8B (Server shutting down).
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.accept.abort();
            let _ = running.accept.await;
            running.broker.shutdown().await;
        }
    }

    /// Starts a fresh broker (no sessions) on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    async fn run(&mut self) {
        let broker = Broker::new(
            BrokerConfig::default(),
            Arc::new(MemoryStorage::new()),
            Arc::new(AllowAll),
        )
        .expect("broker in a runtime");
        let tls = ServerTlsSettings::from_dev_certificates(&self.certs).expect("server identity");
        let url = ListenUrl::new(
            TransportKind::Quic,
            format!("127.0.0.1:{}", self.port).parse().expect("address"),
        );
        // The port of a stopped broker may be held for a moment by connections closing.
        let deadline = Instant::now() + PATIENCE;
        let mut listener = loop {
            match Listener::bind_with_options(&url, &tls, ListenerOptions::default()).await {
                Ok(listener) => break listener,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("binding {url}: {error}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot bind {url}: {error}"),
            }
        };
        self.port = listener.local_addr().port();
        let serving = QuicServing::default();
        let accept = {
            let broker = broker.clone();
            tokio::spawn(async move {
                while let Ok(accepted) = listener.accept().await {
                    let broker = broker.clone();
                    let serving = serving.clone();
                    tokio::spawn(
                        async move { broker.serve_accepted(accepted, None, &serving).await },
                    );
                }
            })
        };
        self.running = Some(Running { broker, accept });
    }
}

impl Drop for QuicBroker {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.accept.abort();
        }
    }
}
