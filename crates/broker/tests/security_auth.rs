//! Authentication and authorization end to end, through the real listeners: argon2id
//! passwords, the anonymous policy, ACL decisions on publish (0x87 and dropped), subscribe
//! (SUBACK 0x87) and retained reads, SCRAM-SHA-256 over AUTH packets including
//! re-authentication, reloading the files without dropping clients, and a client
//! certificate's Common Name as the user name over QUIC.

mod security_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mquictt_broker::auth::{PasswordFile, ScramClient, SCRAM_SHA_256};
use mquictt_broker::{BrokerConfig, FileAuthenticator, FileAuthenticatorConfig};
use mquictt_protocol::{
    Auth, Connect, MqttString, Packet, Properties, PropertySet, ProtocolVersion, QoS, ReasonCode,
};
use security_support::{connect_packet, metric, publish, Peer, SecureBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

const ACL: &str = "\
allow user:admin   all                #
allow all          publish,subscribe  devices/%u/#
allow user:device-7 publish           telemetry/device-7
allow all          subscribe,retained public/#
allow user:alice   publish            public/#
";

struct Setup {
    served: SecureBroker,
    authenticator: Arc<FileAuthenticator>,
    dir: tempfile::TempDir,
}

async fn setup(allow_anonymous: Option<bool>) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut passwords = PasswordFile::new();
    passwords
        .set_password("alice", b"wonderland")
        .expect("hash");
    passwords
        .set_password("admin", b"root-of-trust")
        .expect("hash");
    passwords.save(&dir.path().join("passwd")).expect("save");
    std::fs::write(dir.path().join("acl"), ACL).expect("acl");
    let authenticator = Arc::new(
        FileAuthenticator::new(FileAuthenticatorConfig {
            password_file: Some(dir.path().join("passwd")),
            acl_file: Some(dir.path().join("acl")),
            allow_anonymous,
        })
        .expect("authentication files load"),
    );
    let served = SecureBroker::with_auth(
        BrokerConfig {
            connection_rate: None,
            ..BrokerConfig::default()
        },
        authenticator.clone(),
    )
    .await;
    Setup {
        served,
        authenticator,
        dir,
    }
}

fn login(version: ProtocolVersion, client_id: &str, user: &str, password: &[u8]) -> Connect {
    let mut connect = connect_packet(version, client_id);
    connect.username = Some(MqttString::new(user).expect("user"));
    connect.password = Some(Bytes::copy_from_slice(password));
    connect
}

async fn logged_in(setup: &Setup, client_id: &str, user: &str, password: &[u8]) -> Peer {
    let mut peer = Peer::tcp(setup.served.tcp, V5).await;
    let ack = peer
        .connect_with(login(V5, client_id, user, password))
        .await;
    assert_eq!(ack.reason_code, ReasonCode::Success, "{user}");
    peer
}

#[tokio::test]
async fn passwords_are_checked_in_both_versions() {
    let setup = setup(Some(false)).await;
    let _ok = logged_in(&setup, "a1", "alice", b"wonderland").await;
    let mut wrong = Peer::tcp(setup.served.tcp, V5).await;
    let ack = wrong.connect_with(login(V5, "a2", "alice", b"guess")).await;
    assert_eq!(ack.reason_code, ReasonCode::BadUserNameOrPassword);
    let mut wrong_v3 = Peer::tcp(setup.served.tcp, V311).await;
    let ack = wrong_v3
        .connect_with(login(V311, "a3", "alice", b"guess"))
        .await;
    // 3.1.1 return code 4, "bad user name or password".
    assert_eq!(ack.reason_code, ReasonCode::BadUserNameOrPassword);
    let mut unknown = Peer::tcp(setup.served.tcp, V5).await;
    let ack = unknown.connect_with(login(V5, "a4", "mallory", b"x")).await;
    assert_eq!(ack.reason_code, ReasonCode::BadUserNameOrPassword);
    // allow_anonymous = false: no credentials, no entry, even from loopback.
    let mut anonymous = Peer::tcp(setup.served.tcp, V5).await;
    let ack = anonymous.connect_with(connect_packet(V5, "a5")).await;
    assert_eq!(ack.reason_code, ReasonCode::NotAuthorized);
    assert_eq!(
        metric(&setup.served.broker, |m| &m.authentication_failures),
        4
    );
}

#[tokio::test]
async fn the_acl_decides_publish_subscribe_and_retained_reads() {
    let setup = setup(None).await;
    let mut alice = logged_in(&setup, "alice-phone", "alice", b"wonderland").await;
    // Her own subtree, through %u.
    assert_eq!(
        alice
            .subscribe("devices/alice/#", QoS::AtLeastOnce, 1)
            .await,
        ReasonCode::GrantedQoS1
    );
    assert_eq!(
        alice.subscribe("devices/bob/#", QoS::AtLeastOnce, 2).await,
        ReasonCode::NotAuthorized
    );
    assert_eq!(
        alice.subscribe("#", QoS::AtLeastOnce, 3).await,
        ReasonCode::NotAuthorized
    );
    // A denied publish gets 0x87 and reaches nobody.
    let mut admin = logged_in(&setup, "console", "admin", b"root-of-trust").await;
    assert_eq!(
        admin.subscribe("devices/#", QoS::AtLeastOnce, 1).await,
        ReasonCode::GrantedQoS1
    );
    assert_eq!(
        alice.publish_qos1("devices/bob/lock", b"open", 4).await,
        ReasonCode::NotAuthorized
    );
    assert_accepted(alice.publish_qos1("devices/alice/lamp", b"on", 5).await);
    let delivered = admin.expect_publish().await;
    assert_eq!(delivered.topic.as_str(), "devices/alice/lamp");
    // Retained reads: anonymous clients may subscribe to public/# and read retained messages.
    let mut retained = publish("public/news", b"hello", QoS::AtLeastOnce, 6);
    retained.retain = true;
    admin.send(&Packet::Publish(retained)).await;
    assert!(matches!(admin.recv().await, Some(Packet::PubAck(_))));
    let mut anonymous = Peer::tcp(setup.served.tcp, V5).await;
    anonymous.connect("reader").await;
    assert_eq!(
        anonymous.subscribe("public/#", QoS::AtMostOnce, 1).await,
        ReasonCode::GRANTED_QOS_0
    );
    assert_eq!(
        anonymous.expect_publish().await.payload,
        Bytes::from_static(b"hello")
    );
    // Subscribing is allowed for devices/%u/# but an anonymous client has no %u.
    assert_eq!(
        anonymous.subscribe("devices/+/x", QoS::AtMostOnce, 2).await,
        ReasonCode::NotAuthorized
    );
    // 3.1.1: a denied publish is acknowledged and dropped; a denied subscription is 0x80.
    let mut old = Peer::tcp(setup.served.tcp, V311).await;
    assert_eq!(
        old.connect_with(login(V311, "old", "alice", b"wonderland"))
            .await
            .reason_code,
        ReasonCode::Success
    );
    assert_accepted(old.publish_qos1("devices/bob/lock", b"open", 1).await);
    assert_eq!(
        old.subscribe("devices/bob/#", QoS::AtMostOnce, 2).await,
        ReasonCode::UnspecifiedError
    );
    if let Some(packet) = admin.recv_within(Duration::from_millis(300)).await {
        panic!("a denied publish was delivered: {packet:?}");
    }
    assert!(metric(&setup.served.broker, |m| &m.authorization_denials) >= 6);
}

/// A PUBACK that accepted the message: 0x00, or 0x10 when nobody subscribes.
fn assert_accepted(code: ReasonCode) {
    assert!(
        matches!(
            code,
            ReasonCode::Success | ReasonCode::NoMatchingSubscribers
        ),
        "publish refused with {code:?}"
    );
}

/// CONNECT with SCRAM-SHA-256 and returns the client and the broker's first answer.
async fn scram_connect(
    served: &SecureBroker,
    user: &str,
    password: &[u8],
) -> (Peer, ScramClient, Option<Packet>) {
    let mut peer = Peer::tcp(served.tcp, V5).await;
    let (mut scram, first) = ScramClient::start(user, password).expect("client-first");
    let mut connect = connect_packet(V5, &format!("scram-{user}"));
    connect.properties.authentication_method = Some(MqttString::from_static(SCRAM_SHA_256));
    connect.properties.authentication_data = Some(first);
    peer.send(&Packet::Connect(Box::new(connect))).await;
    let server_first = match peer.recv().await {
        Some(Packet::Auth(auth)) => {
            assert_eq!(auth.reason_code, ReasonCode::ContinueAuthentication);
            assert_eq!(
                auth.properties
                    .authentication_method
                    .as_ref()
                    .map(MqttString::as_str),
                Some(SCRAM_SHA_256)
            );
            auth.properties
                .authentication_data
                .clone()
                .expect("server-first")
        }
        other => panic!("expected AUTH 0x18, got {other:?}"),
    };
    let last = scram.client_final(&server_first).expect("client-final");
    peer.send(&Packet::Auth(continue_auth(last))).await;
    let answer = peer.recv().await;
    (peer, scram, answer)
}

fn continue_auth(data: Bytes) -> Auth {
    Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: Properties::from(PropertySet {
            authentication_method: Some(MqttString::from_static(SCRAM_SHA_256)),
            authentication_data: Some(data),
            ..PropertySet::default()
        }),
    }
}

#[tokio::test]
async fn scram_sha_256_over_auth_packets_with_reauthentication() {
    let setup = setup(Some(false)).await;
    let (mut peer, scram, answer) = scram_connect(&setup.served, "alice", b"wonderland").await;
    match answer {
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason_code, ReasonCode::Success);
            let server_final = ack
                .properties
                .authentication_data
                .clone()
                .expect("server-final");
            scram
                .verify_server_final(&server_final)
                .expect("the broker proves it knows the credentials");
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    // The ACL applies to the SCRAM user name.
    assert_eq!(
        peer.subscribe("devices/alice/#", QoS::AtMostOnce, 1).await,
        ReasonCode::GRANTED_QOS_0
    );
    // Re-authentication (4.12.1): AUTH 0x19, AUTH 0x18 back and forth, then AUTH 0x00.
    let (mut again, first) = ScramClient::start("alice", b"wonderland").expect("client-first");
    peer.send(&Packet::Auth(Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: Properties::from(PropertySet {
            authentication_method: Some(MqttString::from_static(SCRAM_SHA_256)),
            authentication_data: Some(first),
            ..PropertySet::default()
        }),
    }))
    .await;
    let server_first = match peer.recv().await {
        Some(Packet::Auth(auth)) => auth
            .properties
            .authentication_data
            .clone()
            .expect("server-first"),
        other => panic!("expected AUTH 0x18, got {other:?}"),
    };
    let last = again.client_final(&server_first).expect("client-final");
    peer.send(&Packet::Auth(continue_auth(last))).await;
    match peer.recv().await {
        Some(Packet::Auth(auth)) => {
            assert_eq!(auth.reason_code, ReasonCode::Success);
            again
                .verify_server_final(&auth.properties.authentication_data.clone().expect("final"))
                .expect("server signature");
        }
        other => panic!("expected AUTH 0x00, got {other:?}"),
    }
    assert_accepted(peer.publish_qos1("devices/alice/x", b"still here", 2).await);
}

#[tokio::test]
async fn scram_with_a_wrong_password_or_an_unknown_method_is_refused() {
    let setup = setup(Some(false)).await;
    let (mut peer, _, answer) = scram_connect(&setup.served, "alice", b"wrong").await;
    match answer {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::NotAuthorized),
        other => panic!("expected CONNACK 0x87, got {other:?}"),
    }
    assert!(peer.until_closed().await.is_empty());
    let (_, _, answer) = scram_connect(&setup.served, "nobody", b"x").await;
    assert!(
        matches!(answer, Some(Packet::ConnAck(ack)) if ack.reason_code == ReasonCode::NotAuthorized)
    );
    let mut other = Peer::tcp(setup.served.tcp, V5).await;
    let mut connect = connect_packet(V5, "kerberos");
    connect.properties.authentication_method = Some(MqttString::from_static("GSSAPI"));
    assert_eq!(
        other.connect_with(connect).await.reason_code,
        ReasonCode::BadAuthenticationMethod
    );
}

#[tokio::test]
async fn changed_files_are_reloaded_without_dropping_clients() {
    let setup = setup(Some(false)).await;
    let mut alice = logged_in(&setup, "alice-1", "alice", b"wonderland").await;
    let path = setup.dir.path().join("passwd");
    let mut passwords = PasswordFile::load(&path).expect("load");
    passwords
        .set_password("alice", b"new-password")
        .expect("hash");
    passwords.set_password("bob", b"builder").expect("hash");
    passwords.save(&path).expect("save");
    std::fs::write(
        setup.dir.path().join("acl"),
        format!("{ACL}allow user:bob publish devices/alice/#\n"),
    )
    .expect("acl");
    // What SIGHUP does in the binary.
    setup.authenticator.reload().expect("reload");
    // Alice stays connected and is served.
    assert_accepted(alice.publish_qos1("devices/alice/a", b"1", 1).await);
    let _bob = logged_in(&setup, "bob-1", "bob", b"builder").await;
    let _new = logged_in(&setup, "alice-2", "alice", b"new-password").await;
    let mut old = Peer::tcp(setup.served.tcp, V5).await;
    assert_eq!(
        old.connect_with(login(V5, "alice-3", "alice", b"wonderland"))
            .await
            .reason_code,
        ReasonCode::BadUserNameOrPassword
    );
    // The watcher picks a change up on its own.
    let watcher = setup.authenticator.watch(Duration::from_millis(50));
    let mut passwords = PasswordFile::load(&path).expect("load");
    passwords.remove("bob");
    passwords.save(&path).expect("save");
    let mut refused = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut bob = Peer::tcp(setup.served.tcp, V5).await;
        if bob
            .connect_with(login(V5, "bob-2", "bob", b"builder"))
            .await
            .reason_code
            == ReasonCode::BadUserNameOrPassword
        {
            refused = true;
            break;
        }
    }
    watcher.abort();
    assert!(refused, "the removed user could still log in");
}

#[tokio::test]
async fn a_client_certificate_common_name_is_the_user_name_over_quic() {
    let setup = setup(Some(false)).await;
    let certificate = setup
        .served
        .authority
        .issue_client("device-7")
        .expect("client certificate");
    let connected = setup
        .served
        .connector(Some(&certificate))
        .connect(&setup.served.quic_url())
        .await
        .expect("QUIC with a client certificate");
    let mut device = Peer::from_connected(connected, V5);
    // No user name or password: the certificate vouches for "device-7".
    device.connect("sensor").await;
    assert_accepted(device.publish_qos1("telemetry/device-7", b"21.5", 1).await);
    assert_eq!(
        device.publish_qos1("telemetry/device-8", b"spoof", 2).await,
        ReasonCode::NotAuthorized
    );
    // Without a certificate the same CONNECT is anonymous, and anonymous is off.
    let mut bare = Peer::quic(&setup.served, V5).await;
    assert_eq!(
        bare.connect_with(connect_packet(V5, "sensor-2"))
            .await
            .reason_code,
        ReasonCode::NotAuthorized
    );
}
