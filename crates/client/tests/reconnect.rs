//! Reconnecting against Mosquitto: the broker is stopped and started again while the client
//! runs. A persistent session is resumed (Session Present) and the publishes made while the
//! broker was down are delivered; a broker that lost the session gets the subscriptions
//! again; the offline queue is bounded and drains once a broker appears.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{wait_for_status, within, BrokerSettings, Mosquitto, Relay};
use mquictt_client::{
    Client, ClientError, ClientOptions, ConnectionStatus, Message, Messages, ProtocolVersion, QoS,
    ReconnectPolicy, Subscription,
};

/// Retries quickly so the tests do not wait long for the broker to come back.
fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..ReconnectPolicy::default()
    }
}

async fn next(messages: &mut Messages) -> Message {
    within("a message", messages.recv())
        .await
        .expect("the client stopped")
}

fn is_connected(status: &ConnectionStatus) -> bool {
    matches!(status, ConnectionStatus::Connected(_))
}

fn is_reconnecting(status: &ConnectionStatus) -> bool {
    matches!(status, ConnectionStatus::Reconnecting { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_is_resumed_and_offline_publishes_delivered() {
    for version in common::VERSIONS {
        let mut broker = Mosquitto::start_with(BrokerSettings {
            persistence: true,
            ..Default::default()
        });
        // Through a relay, so that the link is lost before the broker stops (a network
        // failure, then a broker restart).
        let relay = Relay::start(broker.port()).await;
        let mut options = ClientOptions::new(&relay.url())
            .unwrap()
            .protocol(version)
            .client_id(format!("resumer-{}", version.level()))
            .reconnect(fast_reconnect());
        // Mosquitto 2.0 writes to disk only sessions that started with Clean Start 0.
        options = options.clean_start(false);
        if version.is_v5() {
            options = options.session_expiry(Duration::from_secs(300));
        }
        let (client, mut messages) = Client::connect(options).await.unwrap();
        let mut status = client.status_changes();
        client
            .subscribe(Subscription::new("resume/#", QoS::AtLeastOnce).unwrap())
            .await
            .unwrap();
        client
            .publish(
                Message::new("resume/before", "0")
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .unwrap()
            .await
            .unwrap();
        assert_eq!(next(&mut messages).await.payload, "0");
        // Our PUBACK for "0" leaves before this PUBLISH on the same connection: once this one
        // is acknowledged, the broker has the PUBACK too. Cut before that, and the resumed
        // session would rightly deliver "0" again (QoS 1 is at least once).
        client
            .publish(
                Message::new("sync/acked", "")
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .unwrap()
            .await
            .unwrap();

        relay.cut();
        wait_for_status(&mut status, "the client to notice", is_reconnecting).await;
        broker.stop();
        let mut handles = Vec::new();
        for i in 1..=3 {
            let message = Message::new("resume/offline", i.to_string())
                .unwrap()
                .qos(QoS::AtLeastOnce);
            handles.push(client.publish(message).unwrap());
        }
        assert_eq!(client.queued_publishes(), 3);

        broker.restart();
        relay.restore();
        let connected = wait_for_status(&mut status, "the reconnect", is_connected).await;
        let ConnectionStatus::Connected(info) = connected else {
            unreachable!("waited for Connected")
        };
        assert!(
            info.session_present,
            "{version}: the broker kept the session"
        );
        for handle in handles {
            let outcome = within("an offline publish", handle).await.unwrap();
            assert!(outcome.is_success(), "{outcome:?}");
        }
        // The subscription lives in the resumed session: the offline publishes come back.
        for i in 1..=3 {
            let message = next(&mut messages).await;
            assert_eq!(message.topic.as_str(), "resume/offline");
            assert_eq!(message.payload, Bytes::from(i.to_string()));
        }
        assert_eq!(client.queued_publishes(), 0);
        client.disconnect().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_while_connected_is_reconnected_to() {
    // 3.1.1 sessions survive a broker shutdown with open connections in Mosquitto.
    let mut broker = Mosquitto::start_with(BrokerSettings {
        persistence: true,
        ..Default::default()
    });
    let options = ClientOptions::new(&broker.url("mqtt"))
        .unwrap()
        .protocol(ProtocolVersion::V3_1_1)
        .client_id("survivor")
        .clean_start(false)
        .reconnect(fast_reconnect());
    let (client, mut messages) = Client::connect(options).await.unwrap();
    let mut status = client.status_changes();
    client
        .subscribe(Subscription::new("survive/#", QoS::ExactlyOnce).unwrap())
        .await
        .unwrap();
    broker.stop();
    wait_for_status(&mut status, "the client to notice", is_reconnecting).await;
    let handle = client
        .publish(
            Message::new("survive/x", "queued")
                .unwrap()
                .qos(QoS::ExactlyOnce),
        )
        .unwrap();
    broker.restart();
    let ConnectionStatus::Connected(info) =
        wait_for_status(&mut status, "the reconnect", is_connected).await
    else {
        unreachable!("waited for Connected")
    };
    assert!(info.session_present);
    assert!(within("the queued publish", handle)
        .await
        .unwrap()
        .is_success());
    let message = next(&mut messages).await;
    assert_eq!(
        (message.topic.as_str(), &message.payload[..]),
        ("survive/x", &b"queued"[..])
    );
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_renewed_when_the_broker_lost_the_session() {
    let mut broker = Mosquitto::start();
    let options = ClientOptions::new(&broker.url("mqtt"))
        .unwrap()
        .client_id("renewer")
        .reconnect(fast_reconnect());
    let (client, mut messages) = Client::connect(options).await.unwrap();
    let mut status = client.status_changes();
    client
        .subscribe(Subscription::to_all(["renew/a", "renew/b"], QoS::ExactlyOnce).unwrap())
        .await
        .unwrap();
    client.unsubscribe(["renew/b"]).await.unwrap();

    // Without persistence the restarted broker knows nothing of us.
    broker.stop();
    wait_for_status(&mut status, "the client to notice", is_reconnecting).await;
    broker.restart();
    let ConnectionStatus::Connected(info) =
        wait_for_status(&mut status, "the reconnect", is_connected).await
    else {
        unreachable!("waited for Connected")
    };
    assert!(!info.session_present);

    // The renewed subscription must be in place before this publish is routed: the client
    // sends SUBSCRIBE before anything queued, and Mosquitto handles one connection's packets
    // in order.
    client
        .publish(
            Message::new("renew/a", "again")
                .unwrap()
                .qos(QoS::ExactlyOnce),
        )
        .unwrap()
        .await
        .unwrap();
    client
        .publish(
            Message::new("renew/b", "not subscribed")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .unwrap()
        .await
        .unwrap();
    client
        .publish(
            Message::new("renew/a", "last")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .unwrap()
        .await
        .unwrap();
    let first = next(&mut messages).await;
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("renew/a", &b"again"[..])
    );
    assert_eq!(first.qos, QoS::ExactlyOnce);
    let second = next(&mut messages).await;
    assert_eq!(
        (second.topic.as_str(), &second.payload[..]),
        ("renew/a", &b"last"[..])
    );
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_is_bounded_and_drains_when_a_broker_appears() {
    let port = common::free_port();
    let options = ClientOptions::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .protocol(ProtocolVersion::V5)
        .client_id("early-bird")
        .offline_queue(2)
        .reconnect(fast_reconnect());
    // `start` keeps trying from the first attempt: the broker is not there yet.
    let (client, mut messages) = Client::start(options).unwrap();
    let mut status = client.status_changes();
    wait_for_status(&mut status, "a failed attempt", is_reconnecting).await;

    // Polled once, so that the SUBSCRIBE request is queued before the publishes.
    let subscribed = client.subscribe(Subscription::new("early/#", QoS::AtLeastOnce).unwrap());
    tokio::pin!(subscribed);
    tokio::select! {
        biased;
        _ = &mut subscribed => panic!("subscribed without a broker"),
        () = std::future::ready(()) => {}
    }
    let first = client
        .publish(
            Message::new("early/1", "one")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .unwrap();
    let second = client
        .publish(Message::new("early/2", "two").unwrap())
        .unwrap();
    let refused = client.publish(Message::new("early/3", "three").unwrap());
    assert!(
        matches!(refused, Err(ClientError::OfflineQueueFull { limit: 2 })),
        "{refused:?}"
    );
    assert_eq!(client.queued_publishes(), 2);

    let _broker = Mosquitto::start_on(port, BrokerSettings::default());
    let granted = within("the queued subscribe", subscribed).await.unwrap();
    assert!(granted.all_granted());
    let first = within("the queued QoS 1 publish", first).await.unwrap();
    assert!(first.packet_id.is_some() && first.is_success());
    let second = within("the queued QoS 0 publish", second).await.unwrap();
    assert_eq!(second.packet_id, None);
    // Queued in order: the subscription was made before the publishes went out.
    assert_eq!(next(&mut messages).await.payload, "one");
    assert_eq!(next(&mut messages).await.payload, "two");
    // Room again.
    client
        .publish(Message::new("early/3", "three").unwrap())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(next(&mut messages).await.payload, "three");
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reconnect_pending_requests_fail_when_the_connection_is_lost() {
    let mut broker = Mosquitto::start();
    let options = ClientOptions::new(&broker.url("mqtt"))
        .unwrap()
        .client_id("one-shot")
        .reconnect(ReconnectPolicy::disabled());
    let (client, mut messages) = Client::connect(options).await.unwrap();
    let mut status = client.status_changes();
    broker.stop();
    let closed = wait_for_status(&mut status, "the client to give up", |s| {
        matches!(s, ConnectionStatus::Closed(_))
    })
    .await;
    assert!(
        matches!(closed, ConnectionStatus::Closed(Some(_))),
        "{closed:?}"
    );
    assert!(within("the stream to end", messages.recv()).await.is_none());
    let refused = client.publish(Message::new("t", "x").unwrap());
    assert!(matches!(refused, Err(ClientError::Closed)), "{refused:?}");
}
