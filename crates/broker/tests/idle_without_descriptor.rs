//! Parked TCP sockets held without a file descriptor (`idle_without_descriptor = "always"`):
//! every case of `idle_parking.rs` once more, each connection's socket held so while it is
//! parked, and what only such sockets do: the process's table of descriptors shrinks by one per
//! parked connection, and a client that vanishes is still noticed.

#[path = "idle_parking/cases.rs"]
mod cases;
mod common;

use common::client::{connect_packet, publish, will, TestClient};
use common::{wait_until, within, TestBroker};
use mquictt_broker::{BrokerConfig, IdleWithoutDescriptor};
use mquictt_protocol::{ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};

/// Every parked socket leaves the table of descriptors.
fn config() -> BrokerConfig {
    require_io_uring();
    BrokerConfig {
        idle_without_descriptor: IdleWithoutDescriptor::Always,
        ..BrokerConfig::default()
    }
}

/// The cases check that each parked socket is held without a descriptor.
const HELD: bool = true;

/// Fails at once, saying why, where sockets cannot be held without descriptors; the broker
/// would keep them (and every case would time out waiting for them to be held).
fn require_io_uring() {
    if let Err(e) = mquictt_socket_rings::SocketRings::new(1) {
        panic!(
            "these tests need io_uring with FIXED_FD_INSTALL (Linux 6.8 or later, not switched \
             off by kernel.io_uring_disabled or a seccomp filter): {e}"
        );
    }
}

/// Open file descriptors of this process (the test's clients and the broker alike).
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
}

#[tokio::test]
async fn parked_sockets_give_up_their_descriptors_and_get_them_back_to_deliver() {
    const CLIENTS: usize = 40;
    let broker = TestBroker::with_config(config()).await;
    let (mut publisher, _) =
        TestClient::connect(broker.addr, ProtocolVersion::V5, "publisher", true).await;
    wait_until("the publisher is held", || {
        broker.broker.connections_without_descriptor() == 1
    })
    .await;
    let before = open_descriptors();
    let mut subscribers = Vec::new();
    for i in 0..CLIENTS {
        let (mut client, _) =
            TestClient::connect(broker.addr, ProtocolVersion::V3_1_1, &format!("s{i}"), true).await;
        client
            .subscribe("all", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
            .await;
        subscribers.push(client);
    }
    wait_until("every subscriber is held", || {
        broker.broker.connections_without_descriptor() == CLIENTS + 1
    })
    .await;
    // The clients' own sockets are in this process too: with descriptors kept, it would hold
    // two per connection.
    let added = open_descriptors() - before;
    assert!(
        added <= CLIENTS + 2,
        "{added} descriptors for {CLIENTS} connections"
    );
    // Operators see it in the metrics and under `$SYS`.
    let metrics = broker.broker.render_prometheus();
    let held = CLIENTS + 1;
    assert!(
        metrics.contains(&format!(
            "\nmquictt_connections_without_descriptor {held}\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("\nmquictt_connections_parked {held}\n")),
        "{metrics}"
    );
    let snapshot = broker.broker.sys_snapshot();
    assert_eq!(snapshot.clients_without_descriptor, held as u64);
    assert_eq!(snapshot.clients_parked, held as u64);

    publisher
        .publish(publish("all", b"wake", QoS::AtLeastOnce, 1))
        .await;
    for subscriber in &mut subscribers {
        let received = within("the message", subscriber.expect_publish()).await;
        assert_eq!(&received.payload[..], b"wake");
        subscriber.ack(&received).await;
    }
    // Idle again, they are held again.
    wait_until("every subscriber is held again", || {
        broker.broker.connections_without_descriptor() == CLIENTS + 1
    })
    .await;
    broker.stop().await;
}

#[tokio::test]
async fn a_held_client_that_vanishes_is_noticed_and_its_will_published() {
    let broker = TestBroker::with_config(config()).await;
    let (mut watcher, _) =
        TestClient::connect(broker.addr, ProtocolVersion::V5, "watcher", true).await;
    watcher
        .subscribe("wills/#", SubscriptionOptions::default(), 1)
        .await;
    let mut connect = connect_packet(ProtocolVersion::V5, "vanishing", true);
    connect.keep_alive = 600;
    connect.will = Some(will("wills/vanishing", b"lost", None));
    let (vanishing, ack) = TestClient::connect_with(broker.addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    wait_until("both are held", || {
        broker.broker.connections_without_descriptor() == 2
    })
    .await;
    // Gone without DISCONNECT: only the held socket's watch can tell, long before keep alive.
    drop(vanishing);
    let will = within("the will", watcher.expect_publish()).await;
    assert_eq!(will.topic.as_str(), "wills/vanishing");
    assert_eq!(&will.payload[..], b"lost");
    broker.stop().await;
}
