//! Test fixtures: the MQuicTT broker started in-process on 127.0.0.1:0 and a bench target
//! pointing at it.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mquictt_bench::{LoadSpec, Scenario, Target};
use mquictt_broker::{AllowAll, Broker, BrokerConfig, MemoryStorage};
use mquictt_transport::ClientTlsSettings;
use tokio::net::TcpListener;

/// A broker serving plain TCP on an ephemeral loopback port until the test's runtime ends.
pub async fn start_broker() -> SocketAddr {
    let config = BrokerConfig {
        // A drain-free comparison of what was sent and received needs queues that do not drop.
        max_queued_messages: 100_000,
        sys_interval: None,
        // Load tests measure the broker, not its per-client throttles.
        publish_rate: None,
        connection_rate: None,
        ..BrokerConfig::default()
    };
    let broker = Broker::new(
        config,
        Arc::new(MemoryStorage::default()),
        Arc::new(AllowAll),
    )
    .expect("broker starts inside the runtime");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = broker.serve_tcp(listener, std::future::pending()).await;
    });
    addr
}

/// A bench target for `mqtt://addr`.
pub fn tcp_target(addr: SocketAddr) -> Target {
    Target::parse(&format!("mqtt://{addr}"), &ClientTlsSettings::default()).expect("valid URL")
}

/// A short spec: one second of load at a moderate rate, so that no queue overflows and every
/// count can be checked exactly.
pub fn short_spec(scenario: Scenario, clients: usize) -> LoadSpec {
    LoadSpec {
        duration: Duration::from_millis(800),
        rate: Some(200.0),
        drain: Duration::from_secs(5),
        ..LoadSpec::new(scenario, clients)
    }
}
