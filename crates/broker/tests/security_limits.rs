//! Per-client limits end to end: subscriptions per client (SUBACK 0x97), the publish rate
//! with both overload actions (throttling slows the client without losing anything;
//! disconnecting sends 0x96), and the outbound in-flight cap that holds whatever Receive
//! Maximum a client announces.

mod security_support;

use std::time::{Duration, Instant};

use mquictt_broker::{BrokerConfig, PublishOverload, RateLimit};
use mquictt_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use security_support::{connect_packet, metric, publish, Peer, SecureBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn subscriptions_past_the_cap_get_quota_exceeded() {
    let served = SecureBroker::start(BrokerConfig {
        max_subscriptions_per_client: 3,
        ..BrokerConfig::default()
    })
    .await;
    let mut peer = Peer::tcp(served.tcp, V5).await;
    peer.connect("collector").await;
    for (i, filter) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(
            peer.subscribe(filter, QoS::AtMostOnce, i as u16 + 1).await,
            ReasonCode::GRANTED_QOS_0
        );
    }
    assert_eq!(
        peer.subscribe("d", QoS::AtMostOnce, 4).await,
        ReasonCode::QuotaExceeded
    );
    // Replacing an existing subscription is not a new one.
    assert_eq!(
        peer.subscribe("a", QoS::AtLeastOnce, 5).await,
        ReasonCode::GrantedQoS1
    );
    assert_eq!(metric(&served.broker, |m| &m.limit_refusals), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_publisher_is_throttled_without_losing_messages() {
    const BURST: u32 = 20;
    const RATE: u32 = 40;
    const MESSAGES: u16 = 100;
    let served = SecureBroker::start(BrokerConfig {
        publish_rate: Some(RateLimit {
            per_second: RATE,
            burst: BURST,
        }),
        publish_overload: PublishOverload::Throttle,
        ..BrokerConfig::default()
    })
    .await;
    let mut subscriber = Peer::tcp(served.tcp, V5).await;
    subscriber.connect("sink").await;
    subscriber.subscribe("fast", QoS::AtLeastOnce, 1).await;
    let mut publisher = Peer::tcp(served.tcp, V5).await;
    publisher.connect("firehose").await;
    let started = Instant::now();
    // Pipelined QoS 0 publishes, then one QoS 1 to learn when all were read.
    for i in 0..MESSAGES - 1 {
        publisher
            .send(&Packet::Publish(publish(
                "fast",
                &i.to_be_bytes(),
                QoS::AtMostOnce,
                0,
            )))
            .await;
    }
    publisher
        .send(&Packet::Publish(publish(
            "fast",
            &(MESSAGES - 1).to_be_bytes(),
            QoS::AtLeastOnce,
            1,
        )))
        .await;
    let acked = loop {
        match publisher.recv_within(Duration::from_secs(10)).await {
            Some(Packet::PubAck(_)) => break started.elapsed(),
            Some(_) => {}
            None => panic!("the throttled publisher was never acknowledged"),
        }
    };
    // (100 - 20 burst) / 40 per second = 2 s at the least.
    let floor = Duration::from_secs_f64(f64::from(u32::from(MESSAGES) - BURST) / f64::from(RATE));
    assert!(
        acked >= floor - Duration::from_millis(100),
        "100 publishes read in {acked:?}, faster than the rate allows"
    );
    assert!(acked < floor + Duration::from_secs(3), "took {acked:?}");
    // Nothing was lost: every message arrives, in order.
    for i in 0..MESSAGES {
        let p = subscriber.expect_publish().await;
        assert_eq!(&p.payload[..], &i.to_be_bytes());
    }
    assert!(metric(&served.broker, |m| &m.publish_rate_exceeded) > 0);
}

#[tokio::test]
async fn the_disconnect_action_closes_a_flooding_client_with_0x96() {
    let served = SecureBroker::start(BrokerConfig {
        publish_rate: Some(RateLimit {
            per_second: 1,
            burst: 5,
        }),
        publish_overload: PublishOverload::Disconnect,
        ..BrokerConfig::default()
    })
    .await;
    let mut publisher = Peer::tcp(served.tcp, V5).await;
    publisher.connect("flooder").await;
    for i in 0..10u16 {
        publisher
            .send(&Packet::Publish(publish(
                "x",
                &i.to_be_bytes(),
                QoS::AtMostOnce,
                0,
            )))
            .await;
    }
    match publisher.until_closed().await.as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason_code, ReasonCode::MessageRateTooHigh),
        other => panic!("expected DISCONNECT 0x96, got {other:?}"),
    }
    assert_eq!(metric(&served.broker, |m| &m.publish_rate_exceeded), 1);
}

#[tokio::test]
async fn outbound_in_flight_is_capped_whatever_the_client_allows() {
    let served = SecureBroker::start(BrokerConfig {
        max_inflight: 4,
        ..BrokerConfig::default()
    })
    .await;
    let mut greedy = Peer::tcp(served.tcp, V5).await;
    let mut connect = connect_packet(V5, "greedy");
    connect.properties.receive_maximum = Some(u16::MAX);
    assert_eq!(
        greedy.connect_with(connect).await.reason_code,
        ReasonCode::Success
    );
    greedy.subscribe("q", QoS::AtLeastOnce, 1).await;
    let mut publisher = Peer::tcp(served.tcp, V5).await;
    publisher.connect("producer").await;
    for i in 1..=10u16 {
        publisher.publish_qos1("q", &i.to_be_bytes(), i).await;
    }
    // Without acknowledging, only four arrive.
    let mut unacked = Vec::new();
    while let Some(packet) = greedy.recv_within(Duration::from_millis(500)).await {
        match packet {
            Packet::Publish(p) => unacked.push(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(unacked.len(), 4);
    // Acknowledging them lets the rest through.
    for p in &unacked {
        let id = p.packet_id.expect("QoS 1 has an id");
        greedy
            .send(&Packet::PubAck(mquictt_protocol::PubAck::success(id)))
            .await;
    }
    for _ in 0..4 {
        greedy.expect_publish().await;
    }
}
