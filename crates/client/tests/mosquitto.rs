//! The client against Mosquitto, an independent broker: connecting with MQTT 3.1.1 and 5.0,
//! QoS 0/1/2 round trips, publish handles and their reason codes, SUBACK and UNSUBACK reason
//! codes, retained messages with properties, a refused CONNECT, and the TLS transport.

mod common;

use bytes::Bytes;
use common::{within, BrokerSettings, Mosquitto, VERSIONS};
use mquictt_client::{
    Client, ClientError, ClientOptions, ClientTlsSettings, ConnectionStatus, Message, Messages,
    ProtocolVersion, QoS, ReasonCode, ReconnectPolicy, Subscription,
};

fn options(broker: &Mosquitto, version: ProtocolVersion, id: &str) -> ClientOptions {
    ClientOptions::new(&broker.url("mqtt"))
        .unwrap()
        .protocol(version)
        .client_id(id)
        .reconnect(ReconnectPolicy::disabled())
}

async fn next(messages: &mut Messages) -> Message {
    within("a message", messages.recv())
        .await
        .expect("the client stopped")
}

#[tokio::test]
async fn connects_with_both_versions() {
    let broker = Mosquitto::start();
    for version in VERSIONS {
        let (client, _messages) = Client::connect(options(&broker, version, "versions"))
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        match client.status() {
            ConnectionStatus::Connected(info) => {
                assert!(
                    !info.session_present,
                    "{version}: clean start has no session"
                );
            }
            other => panic!("{version}: status {other:?}"),
        }
        client.disconnect().await.unwrap();
        assert!(matches!(client.status(), ConnectionStatus::Closed(None)));
        // Requests after disconnecting are refused, not lost silently.
        let refused = client.publish(Message::new("t", "x").unwrap());
        assert!(matches!(refused, Err(ClientError::Closed)), "{refused:?}");
    }
}

#[tokio::test]
async fn assigned_client_identifier_with_mqtt5() {
    let broker = Mosquitto::start();
    let options = options(&broker, ProtocolVersion::V5, "");
    let (client, _messages) = Client::connect(options).await.unwrap();
    let ConnectionStatus::Connected(info) = client.status() else {
        panic!("not connected");
    };
    let assigned = info
        .assigned_client_id
        .expect("an empty client id gets one assigned");
    assert!(!assigned.is_empty());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn qos_round_trips() {
    let broker = Mosquitto::start();
    for version in VERSIONS {
        let (subscriber, mut messages) = Client::connect(options(&broker, version, "rt-sub"))
            .await
            .unwrap();
        let (publisher, _) = Client::connect(options(&broker, version, "rt-pub"))
            .await
            .unwrap();
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let topic = format!("round/{}/{}", version.level(), qos as u8);
            let granted = subscriber
                .subscribe(Subscription::new(&topic, qos).unwrap())
                .await
                .unwrap();
            assert_eq!(
                granted.reason_codes,
                [ReasonCode::from_u8(qos as u8).unwrap()]
            );

            let payload = format!("payload at {qos:?}");
            let handle = publisher
                .publish(Message::new(&topic, payload.clone()).unwrap().qos(qos))
                .unwrap();
            let outcome = within("the publish handle", handle).await.unwrap();
            assert_eq!(
                outcome.reason_code,
                ReasonCode::Success,
                "{version} {qos:?}"
            );
            assert_eq!(outcome.packet_id.is_some(), qos != QoS::AtMostOnce);

            let received = next(&mut messages).await;
            assert_eq!(received.topic.as_str(), topic);
            assert_eq!(received.payload, Bytes::from(payload));
            assert_eq!(received.qos, qos, "{version}");
            assert!(!received.retain);
        }
        subscriber.disconnect().await.unwrap();
        publisher.disconnect().await.unwrap();
        assert!(
            within("the stream to end", messages.recv()).await.is_none(),
            "the message stream ends with the client"
        );
    }
}

#[tokio::test]
async fn more_publishes_than_the_receive_window_all_complete() {
    let broker = Mosquitto::start();
    let (subscriber, mut messages) =
        Client::connect(options(&broker, ProtocolVersion::V5, "many-sub"))
            .await
            .unwrap();
    subscriber
        .subscribe(Subscription::new("many/#", QoS::ExactlyOnce).unwrap())
        .await
        .unwrap();
    let (publisher, _) = Client::connect(options(&broker, ProtocolVersion::V5, "many-pub"))
        .await
        .unwrap();
    // More than Mosquitto's default receive window of 20, so some wait in the client's queue.
    let mut handles = Vec::new();
    for i in 0..100u32 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        let message = Message::new(format!("many/{i}"), i.to_string())
            .unwrap()
            .qos(qos);
        handles.push(publisher.publish(message).unwrap());
    }
    for handle in handles {
        let outcome = within("a publish handle", handle).await.unwrap();
        assert!(outcome.is_success(), "{outcome:?}");
    }
    // Order is kept per QoS level (4.6): QoS 2 messages are forwarded only once their
    // exchange advanced, so they may overtake QoS 1 ones.
    let mut by_qos: [Vec<u32>; 3] = Default::default();
    for _ in 0..100 {
        let message = next(&mut messages).await;
        let number: u32 = std::str::from_utf8(&message.payload)
            .unwrap()
            .parse()
            .unwrap();
        by_qos[message.qos as usize].push(number);
    }
    let odd: Vec<u32> = (0..100).filter(|i| i % 2 == 1).collect();
    let even: Vec<u32> = (0..100).filter(|i| i % 2 == 0).collect();
    assert_eq!(by_qos[1], even);
    assert_eq!(by_qos[2], odd);
    assert_eq!(publisher.queued_publishes(), 0);
}

#[tokio::test]
async fn publish_handles_report_the_broker_reason_code() {
    let broker = Mosquitto::start();
    let (client, _messages) = Client::connect(options(&broker, ProtocolVersion::V5, "codes"))
        .await
        .unwrap();
    // MQTT 5 brokers say 0x10 when no subscription matches; still a success.
    let outcome = client
        .publish(
            Message::new("nobody/listens", "x")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .unwrap()
        .await
        .unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::NoMatchingSubscribers);
    assert!(outcome.is_success());
    assert!(outcome.packet_id.is_some());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn subscribe_and_unsubscribe_reason_codes() {
    let broker = Mosquitto::start();
    for version in VERSIONS {
        let (client, _messages) = Client::connect(options(&broker, version, "codes"))
            .await
            .unwrap();
        let outcome = client
            .subscribe(
                Subscription::new("sub/#", QoS::ExactlyOnce)
                    .unwrap()
                    .and("sub/x", QoS::AtLeastOnce)
                    .unwrap()
                    .and("sub/y", QoS::AtMostOnce)
                    .unwrap(),
            )
            .await
            .unwrap();
        // One code per filter, in order: the granted QoS.
        assert_eq!(
            outcome.reason_codes,
            [
                ReasonCode::GrantedQoS2,
                ReasonCode::GrantedQoS1,
                ReasonCode::GRANTED_QOS_0
            ],
            "{version}"
        );
        assert!(outcome.all_granted());

        let outcome = client
            .unsubscribe(["sub/#", "never/subscribed"])
            .await
            .unwrap();
        if version.is_v5() {
            assert_eq!(
                outcome.reason_codes,
                [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
            );
        } else {
            assert!(
                outcome.reason_codes.is_empty(),
                "3.1.1 UNSUBACK has no codes"
            );
        }
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn a_refused_connect_says_why() {
    let broker = Mosquitto::start_with(BrokerSettings {
        deny_anonymous: true,
        ..Default::default()
    });
    for version in VERSIONS {
        let error = Client::connect(options(&broker, version, "anonymous"))
            .await
            .expect_err("anonymous access is off");
        match &error {
            ClientError::Refused { reason_code, .. } => {
                assert_eq!(*reason_code, ReasonCode::NotAuthorized, "{version}")
            }
            other => panic!("{version}: {other:?}"),
        }
        assert!(error.is_permanent());
        assert!(
            error.to_string().contains("user name and password"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn nothing_listening_is_reported_with_a_hint() {
    let port = common::free_port();
    let options = ClientOptions::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .reconnect(ReconnectPolicy::disabled());
    let error = Client::connect(options).await.expect_err("no broker there");
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("mquictt broker"), "{error}");
}

#[tokio::test]
async fn retained_messages_and_properties_round_trip() {
    let broker = Mosquitto::start();
    let (publisher, _) = Client::connect(options(&broker, ProtocolVersion::V5, "props-pub"))
        .await
        .unwrap();
    let message = Message::new("props/retained", "{\"t\":21.5}")
        .unwrap()
        .qos(QoS::AtLeastOnce)
        .retain(true)
        .utf8_payload()
        .content_type("application/json")
        .unwrap()
        .response_topic("props/reply")
        .unwrap()
        .correlation_data(&b"c-1"[..])
        .user_property("unit", "celsius")
        .unwrap();
    publisher.publish(message.clone()).unwrap().await.unwrap();

    let (subscriber, mut messages) =
        Client::connect(options(&broker, ProtocolVersion::V5, "props-sub"))
            .await
            .unwrap();
    subscriber
        .subscribe(
            Subscription::new("props/#", QoS::AtLeastOnce)
                .unwrap()
                .identifier(7),
        )
        .await
        .unwrap();
    let received = next(&mut messages).await;
    assert!(
        received.retain,
        "a retained message arrives with RETAIN set"
    );
    assert_eq!(received.payload, message.payload);
    let props = &received.properties;
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.response_topic.as_deref(), Some("props/reply"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"c-1"[..]));
    assert_eq!(props.payload_format_indicator, Some(true));
    assert_eq!(props.user_properties, message.properties.user_properties);
    assert_eq!(props.subscription_identifiers, [7]);
}

#[tokio::test]
async fn tls_transport_with_the_development_ca() {
    let certs_dir = tempfile::tempdir().unwrap();
    let dev = mquictt_transport::DevCertificates::load_or_create(certs_dir.path()).unwrap();
    let broker = Mosquitto::start_with(BrokerSettings {
        listener_lines: vec![
            format!("cafile {}", dev.ca_cert.display()),
            format!("certfile {}", dev.server_cert.display()),
            format!("keyfile {}", dev.server_key.display()),
        ],
        ..Default::default()
    });
    let url = broker.url("mqtts");

    // Without a trusted CA the error says what to pass.
    let untrusted = ClientOptions::new(&url)
        .unwrap()
        .reconnect(ReconnectPolicy::disabled());
    let error = Client::connect(untrusted)
        .await
        .expect_err("no CA configured");
    assert!(error.to_string().contains("--cafile"), "{error}");
    assert!(error.is_permanent());

    let tls = ClientTlsSettings::trusting_ca_file(&dev.ca_cert).unwrap();
    let options = ClientOptions::new(&url)
        .unwrap()
        .tls(tls)
        .client_id("over-tls")
        .reconnect(ReconnectPolicy::disabled());
    let (client, mut messages) = Client::connect(options).await.unwrap();
    client
        .subscribe(Subscription::new("tls/#", QoS::ExactlyOnce).unwrap())
        .await
        .unwrap();
    let outcome = client
        .publish(
            Message::new("tls/echo", "over TLS")
                .unwrap()
                .qos(QoS::ExactlyOnce),
        )
        .unwrap()
        .await
        .unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::Success);
    assert_eq!(next(&mut messages).await.payload, "over TLS");
    client.disconnect().await.unwrap();
}
