//! QUIC multi-stream mode of the client against our broker, over real QUIC on loopback:
//! publishes and subscriptions on separate data streams, each stream's messages on its own
//! receiver and acknowledged on its own stream, packet identifiers per stream, a stalled
//! stream that does not delay another, streams opened again (with their subscriptions) after
//! a reconnect, a closed stream's subscriptions gone, and a clear error on other transports.

// The in-process broker needs the `broker` feature; data streams need `quic`.
#![cfg(all(feature = "broker", feature = "quic"))]
mod quic_broker;

use std::time::Duration;

use bytes::Bytes;
use mquictt_client::{
    Client, ClientError, ClientOptions, ConnectionStatus, Message, Messages, PacketId, QoS,
    ReasonCode, Subscription,
};
use quic_broker::{QuicBroker, PATIENCE};

/// How long a test waits before concluding that nothing is coming.
const QUIET: Duration = Duration::from_millis(800);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn next(messages: &mut Messages, what: &str) -> Message {
    within(what, messages.recv())
        .await
        .unwrap_or_else(|| panic!("the message stream ended waiting for {what}"))
}

/// Nothing arrives for a while.
async fn expect_quiet(messages: &mut Messages, what: &str) {
    if let Ok(Some(message)) = tokio::time::timeout(QUIET, messages.recv()).await {
        panic!("{what}: unexpected message on {}", message.topic);
    }
}

fn message(topic: &str, payload: impl Into<Bytes>, qos: QoS) -> Message {
    Message::new(topic, payload).expect("topic").qos(qos)
}

async fn connect(options: ClientOptions) -> (Client, Messages) {
    within("CONNACK", Client::connect(options))
        .await
        .expect("connect to the broker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_on_two_data_streams() {
    let broker = QuicBroker::start().await;
    // Receive Maximum 1: the broker sends the next QoS 1 message on a stream only after our
    // PUBACK for the previous one came back on that same stream.
    let (client, mut control_messages) = connect(broker.options("multi").receive_maximum(1)).await;
    let (stream_a, mut messages_a) = client.data_stream().expect("a QUIC data stream");
    let (stream_b, mut messages_b) = client.data_stream().expect("a QUIC data stream");
    assert_eq!((stream_a.number(), stream_b.number()), (1, 2));

    let granted = stream_a
        .subscribe(Subscription::new("a/#", QoS::AtLeastOnce).unwrap())
        .await
        .unwrap();
    assert_eq!(granted.reason_codes, [ReasonCode::GrantedQoS1]);
    let granted = stream_b
        .subscribe(Subscription::new("b/#", QoS::ExactlyOnce).unwrap())
        .await
        .unwrap();
    assert_eq!(granted.reason_codes, [ReasonCode::GrantedQoS2]);
    client
        .subscribe(Subscription::new("c/#", QoS::AtMostOnce).unwrap())
        .await
        .unwrap();

    let (publisher, _) = connect(broker.options("publisher")).await;
    for i in 0..5 {
        for topic in ["a/1", "b/1", "c/1"] {
            let qos = if topic == "b/1" {
                QoS::ExactlyOnce
            } else {
                QoS::AtLeastOnce
            };
            publisher
                .publish(message(topic, format!("{topic} {i}"), qos))
                .unwrap()
                .await
                .unwrap();
        }
    }
    for i in 0..5 {
        let on_a = next(&mut messages_a, "a message on stream A").await;
        assert_eq!(
            (on_a.topic.as_str(), on_a.payload),
            ("a/1", format!("a/1 {i}").into())
        );
        let on_b = next(&mut messages_b, "a message on stream B").await;
        assert_eq!(
            (on_b.topic.as_str(), on_b.payload),
            ("b/1", format!("b/1 {i}").into())
        );
        assert_eq!(on_b.qos, QoS::ExactlyOnce);
        let on_control = next(&mut control_messages, "a message on the control stream").await;
        assert_eq!(on_control.topic.as_str(), "c/1");
    }
    // Every stream got exactly its own subscription's messages.
    expect_quiet(&mut messages_a, "stream A").await;
    expect_quiet(&mut messages_b, "stream B").await;
    expect_quiet(&mut control_messages, "control stream").await;

    // Publishing on a data stream: the acknowledgement completes on that stream.
    let (listener, mut heard) = connect(broker.options("listener")).await;
    listener
        .subscribe(Subscription::new("from/#", QoS::ExactlyOnce).unwrap())
        .await
        .unwrap();
    let outcome = stream_a
        .publish(message("from/a", "1", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::Success);
    let outcome = stream_b
        .publish(message("from/b", "2", QoS::ExactlyOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::Success);
    let mut topics = vec![
        next(&mut heard, "from/a").await.topic.to_string(),
        next(&mut heard, "from/b").await.topic.to_string(),
    ];
    topics.sort();
    assert_eq!(topics, ["from/a", "from/b"]);

    // Unsubscribing on a stream ends its deliveries and nobody else's.
    let gone = stream_a.unsubscribe(["a/#"]).await.unwrap();
    assert_eq!(gone.reason_codes, [ReasonCode::Success]);
    publisher
        .publish(message("a/1", "after", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    publisher
        .publish(message("b/1", "still", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        next(&mut messages_b, "b/1 after unsubscribing a/#")
            .await
            .payload,
        "still"
    );
    expect_quiet(&mut messages_a, "stream A after unsubscribing").await;
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_identifiers_are_per_stream() {
    let broker = QuicBroker::start().await;
    let (client, _messages) = connect(broker.options("ids")).await;
    let (stream_a, _messages_a) = client.data_stream().unwrap();
    let (stream_b, _messages_b) = client.data_stream().unwrap();
    // In flight at the same time: one shared identifier space would hand out 1, 2 and 3.
    let on_control = client
        .publish(message("ids/c", "c", QoS::AtLeastOnce))
        .unwrap();
    let on_a = stream_a
        .publish(message("ids/a", "a", QoS::AtLeastOnce))
        .unwrap();
    let on_b = stream_b
        .publish(message("ids/b", "b", QoS::ExactlyOnce))
        .unwrap();
    let first = PacketId::new(1);
    for (stream, handle) in [("control", on_control), ("A", on_a), ("B", on_b)] {
        let outcome = within("an acknowledgement", handle).await.unwrap();
        assert_eq!(outcome.packet_id, first, "first publish on stream {stream}");
        assert!(outcome.is_success());
    }
    let second = stream_a
        .publish(message("ids/a", "again", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(second.packet_id, PacketId::new(2));
    client.disconnect().await.unwrap();
}

/// A subscriber whose application does not read one stream (far more data than a QUIC
/// stream's receive window is waiting for it) still gets another stream's message, while the
/// stalled stream stays unread. On a single stream the message could not arrive before the
/// backlog is read (the next test), so its arrival alone shows that nothing held it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_data_stream_does_not_delay_another() {
    const BUFFER: usize = 4;
    let broker = QuicBroker::start().await;
    let (subscriber, _control) = connect(broker.options("stalled").incoming_buffer(BUFFER)).await;
    let (bulk, bulk_messages) = subscriber.data_stream().unwrap();
    let (live, mut live_messages) = subscriber.data_stream().unwrap();
    bulk.subscribe(Subscription::new("bulk", QoS::AtMostOnce).unwrap())
        .await
        .unwrap();
    live.subscribe(Subscription::new("live", QoS::AtMostOnce).unwrap())
        .await
        .unwrap();

    let (publisher, _) = connect(broker.options("bulk-publisher")).await;
    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
    const BULK: usize = 256;
    for _ in 0..BULK {
        publisher
            .publish(message("bulk", chunk.clone(), QoS::AtMostOnce))
            .unwrap()
            .await
            .unwrap();
    }
    // The bulk stream stalls: nothing reads its receiver, whose buffer fills up, and from
    // then on the client takes no more of that stream off the wire.
    within("the bulk stream's buffer to fill", async {
        while bulk_messages.len() < BUFFER {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    publisher
        .publish(message("live", "now", QoS::AtMostOnce))
        .unwrap()
        .await
        .unwrap();
    let live_message = next(&mut live_messages, "the live message").await;
    assert_eq!(live_message.payload, "now");

    // The bulk stream was stalled all along: nothing was read from it, and its receiver holds
    // exactly its buffer, not one message more.
    assert_eq!(bulk_messages.len(), BUFFER, "bulk messages buffered");
    subscriber.disconnect().await.unwrap();
}

/// The same load on one stream: the live message waits behind the unread bulk messages.
/// (What the data streams above avoid.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_single_stream_the_stall_holds_up_everything_behind_it() {
    let broker = QuicBroker::start().await;
    let (subscriber, mut messages) = connect(broker.options("single").incoming_buffer(4)).await;
    subscriber
        .subscribe(Subscription::to_all(["bulk", "live"], QoS::AtMostOnce).unwrap())
        .await
        .unwrap();
    let (publisher, _) = connect(broker.options("single-publisher")).await;
    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
    for _ in 0..256 {
        publisher
            .publish(message("bulk", chunk.clone(), QoS::AtMostOnce))
            .unwrap()
            .await
            .unwrap();
    }
    publisher
        .publish(message("live", "now", QoS::AtMostOnce))
        .unwrap()
        .await
        .unwrap();
    tokio::time::sleep(QUIET).await;
    let mut buffered = Vec::new();
    while let Some(message) = messages.try_recv() {
        buffered.push(message.topic.to_string());
    }
    assert!(
        buffered.iter().all(|topic| topic == "bulk"),
        "the live message overtook the stalled stream: {buffered:?}"
    );
    // Reading the backlog lets it through.
    loop {
        let message = next(&mut messages, "the live message after the backlog").await;
        if message.topic.as_str() == "live" {
            break;
        }
    }
    subscriber.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_opens_the_data_streams_again_with_their_subscriptions() {
    let mut broker = QuicBroker::start().await;
    let (client, _control) = connect(broker.options("returning")).await;
    let mut status = client.status_changes();
    let (stream, mut stream_messages) = client.data_stream().unwrap();
    stream
        .subscribe(Subscription::new("r/#", QoS::AtLeastOnce).unwrap())
        .await
        .unwrap();
    let before = stream
        .publish(message("r/own", "before", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    // The SUBSCRIBE took identifier 1 on this stream.
    assert_eq!(before.packet_id, PacketId::new(2));
    assert_eq!(
        next(&mut stream_messages, "r/own before").await.payload,
        "before"
    );

    // A fresh broker on the same port: it knows nothing of the client.
    broker.restart().await;
    within(
        "the reconnect",
        status.wait_for(|status| matches!(status, ConnectionStatus::Reconnecting { .. })),
    )
    .await
    .unwrap();
    within(
        "the new connection",
        status.wait_for(|status| matches!(status, ConnectionStatus::Connected(_))),
    )
    .await
    .unwrap();

    // The stream's subscription was made again on the new connection's stream.
    let (publisher, _) = connect(broker.options("returning-publisher")).await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let outcome = publisher
            .publish(message("r/1", "after", QoS::AtLeastOnce))
            .unwrap()
            .await
            .unwrap();
        if outcome.reason_code == ReasonCode::Success {
            break;
        }
        // 0x10 No Matching Subscribers: the renewed SUBSCRIBE is not in yet.
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription was never renewed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        next(&mut stream_messages, "r/1 after the reconnect")
            .await
            .payload,
        "after"
    );
    // A new stream, a new identifier space: the renewed SUBSCRIBE took 1 again.
    let after = stream
        .publish(message("r/own", "again", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(after.packet_id, PacketId::new(2));
    assert_eq!(
        next(&mut stream_messages, "r/own again").await.payload,
        "again"
    );
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_made_while_disconnected_leave_on_the_reopened_stream() {
    let mut broker = QuicBroker::start().await;
    let (client, _control) = connect(broker.options("offline")).await;
    let mut status = client.status_changes();
    let (stream, _stream_messages) = client.data_stream().unwrap();
    broker.stop().await;
    within(
        "the connection to drop",
        status.wait_for(|status| matches!(status, ConnectionStatus::Reconnecting { .. })),
    )
    .await
    .unwrap();
    let queued = stream
        .publish(message("offline/1", "queued", QoS::AtLeastOnce))
        .unwrap();
    broker.restart().await;
    let outcome = within("the queued publish", queued).await.unwrap();
    // No subscriber on the fresh broker: it says so, which proves it received the message.
    assert_eq!(outcome.reason_code, ReasonCode::NoMatchingSubscribers);
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_data_stream_removes_its_subscriptions() {
    let broker = QuicBroker::start().await;
    let (client, _control) = connect(broker.options("closer")).await;
    let (stream, mut stream_messages) = client.data_stream().unwrap();
    stream
        .subscribe(Subscription::new("closing", QoS::AtLeastOnce).unwrap())
        .await
        .unwrap();
    let (publisher, _) = connect(broker.options("closing-publisher")).await;
    let delivered = publisher
        .publish(message("closing", "1", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(delivered.reason_code, ReasonCode::Success);
    assert_eq!(
        next(&mut stream_messages, "the first message")
            .await
            .payload,
        "1"
    );

    drop(stream);
    // Still open: its message receiver lives.
    publisher
        .publish(message("closing", "2", QoS::AtLeastOnce))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        next(&mut stream_messages, "the second message")
            .await
            .payload,
        "2"
    );

    drop(stream_messages);
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let outcome = publisher
            .publish(message("closing", "3", QoS::AtLeastOnce))
            .unwrap()
            .await
            .unwrap();
        if outcome.reason_code == ReasonCode::NoMatchingSubscribers {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream's subscription stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection itself carries on.
    assert!(matches!(client.status(), ConnectionStatus::Connected(_)));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn data_streams_need_a_quic_url() {
    // Nothing needs to listen: the request is refused before any connection.
    let (client, _messages) =
        Client::start(ClientOptions::new("mqtt://127.0.0.1:1").unwrap()).expect("a client");
    match client.data_stream() {
        Err(error @ ClientError::DataStreamsNeedQuic { .. }) => {
            assert!(error.to_string().contains("quic://"), "{error}");
            assert!(error.is_permanent());
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a data stream over TCP"),
    }
}
