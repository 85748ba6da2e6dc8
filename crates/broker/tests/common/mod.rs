//! Shared test fixtures: a broker on an ephemeral loopback port, polling and timeout
//! functions, and the check that a third-party tool needed by a test is installed.

#![allow(dead_code, unreachable_pub)]

pub mod client;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mquictt_broker::broker::Broker;
use mquictt_broker::{AllowAll, Authenticator, BrokerConfig, MemoryStorage, Storage};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A broker serving TCP on 127.0.0.1 with an ephemeral port.
pub struct TestBroker {
    pub broker: Broker,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::with_config(BrokerConfig::default()).await
    }

    pub async fn with_config(config: BrokerConfig) -> Self {
        Self::with_parts(config, Arc::new(MemoryStorage::new()), Arc::new(AllowAll)).await
    }

    pub async fn with_parts(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
        authenticator: Arc<dyn Authenticator>,
    ) -> Self {
        let broker = Broker::new(config, storage, authenticator)
            .expect("broker starts inside the test runtime");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = broker.clone();
        let task = tokio::spawn(async move {
            serving
                .serve_tcp(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            broker,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting and shuts the broker down gracefully.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("listener task").expect("listener result");
        }
    }
}

/// Polls `condition` every 10 ms until it holds, failing the test after 5 s.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Runs `future` with a 10 s limit so a broken broker fails the test instead of hanging it.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Fails the test, saying how to install it, when a required external tool is missing.
pub fn require_tool(tool: &str, debian_package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "`{tool}` is required by this test but is not installed; install it with \
         `sudo apt-get install {debian_package}`"
    );
}
