//! SlowITe and slowloris: thousands of connections that never complete CONNECT, silent or
//! trickling one byte at a time, over TCP and QUIC, are all closed by the connect timeout,
//! while a legitimate client keeps connecting and exchanging messages throughout. A second
//! test shows the cap on pending connections refusing a flood at once.

mod security_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mquictt_broker::BrokerConfig;
use mquictt_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use security_support::{metric, publish, Peer, SecureBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::watch;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How late after the timeout a close may come on this loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);
/// How long to wait for something that must happen before calling it a hang: a slow
/// machine stretches every step, so this only catches what never comes. Below the 10 s
/// default timeouts (a broker that ignored the configured one would be caught) and far below
/// the 60 s QUIC idle timeout (an idle close cannot pass for the broker's).
const PATIENCE: Duration = Duration::from_secs(8);

fn attack_config() -> BrokerConfig {
    BrokerConfig {
        connect_timeout: CONNECT_TIMEOUT,
        // Room for the whole attack: this test is about the timeout, not the caps.
        max_pending_connections: 10_000,
        connection_rate: None,
        ..BrokerConfig::default()
    }
}

/// A legitimate client that connects, then publishes to itself and waits for the echo,
/// over and over until told to stop; returns the slowest round trip and the rounds done.
async fn legitimate_client(mut peer: Peer, mut stop: watch::Receiver<bool>) -> (Duration, u32) {
    peer.connect("legitimate").await;
    assert_eq!(
        peer.subscribe("legit/echo", QoS::AtLeastOnce, 1).await,
        ReasonCode::GrantedQoS1
    );
    let mut slowest = Duration::ZERO;
    let mut rounds = 0u32;
    while !*stop.borrow() {
        let started = Instant::now();
        exchange(&mut peer, rounds, Duration::from_secs(2)).await;
        slowest = slowest.max(started.elapsed());
        rounds += 1;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => {}
        }
    }
    (slowest, rounds)
}

/// Round `round` of a legitimate client subscribed to `legit/echo`: publishes at QoS 1 and
/// waits for the PUBACK and the echo (acknowledging it), each within `limit`.
async fn exchange(peer: &mut Peer, round: u32, limit: Duration) {
    let id = u16::try_from(round % 60_000).expect("below 60,000") + 2;
    let payload = round.to_be_bytes();
    peer.send(&Packet::Publish(publish(
        "legit/echo",
        &payload,
        QoS::AtLeastOnce,
        id,
    )))
    .await;
    // The PUBACK and the echoed PUBLISH, in either order.
    let mut got_ack = false;
    let mut got_echo = false;
    while !(got_ack && got_echo) {
        match peer.recv_within(limit).await {
            Some(Packet::PubAck(_)) => got_ack = true,
            Some(Packet::Publish(p)) => {
                assert_eq!(&p.payload[..], &payload[..]);
                if let Some(echo_id) = p.packet_id {
                    peer.send(&Packet::PubAck(mquictt_protocol::PubAck::success(echo_id)))
                        .await;
                }
                got_echo = true;
            }
            other => panic!("legitimate client starved during the attack: {other:?}"),
        }
    }
}

/// Opens a TCP connection from 127.0.0.2, so the attack has its own source address.
async fn attacker_socket(broker: SocketAddr) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("address"))
        .expect("bind 127.0.0.2");
    socket.connect(broker).await.expect("attacker connects")
}

/// Reads until the broker closes; returns how long after `opened` that was.
async fn time_to_close(stream: &mut tokio::net::TcpStream, opened: Instant) -> Duration {
    let mut scratch = [0u8; 64];
    loop {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return opened.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_slow_tcp_connections_are_timed_out_while_a_client_works() {
    const SILENT: usize = 1_000;
    const TRICKLING: usize = 1_000;
    let served = SecureBroker::start(attack_config()).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let legit = tokio::spawn(legitimate_client(
        Peer::tcp(served.tcp, ProtocolVersion::V5).await,
        stop_rx,
    ));
    let mut attackers = Vec::new();
    for i in 0..SILENT + TRICKLING {
        let mut stream = attacker_socket(served.tcp).await;
        let opened = Instant::now();
        let trickle = i >= SILENT;
        attackers.push(tokio::spawn(async move {
            if trickle {
                // A CONNECT header announcing a large packet, then one byte every 300 ms:
                // each byte arrives well within any per-read timeout, the packet never does.
                let _ = stream.write_all(&[0x10, 0xFF, 0x7F]).await;
                let (mut reader, mut writer) = stream.into_split();
                let drip = tokio::spawn(async move {
                    while writer.write_all(&[0x00]).await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                });
                let mut scratch = [0u8; 64];
                let closed_after = loop {
                    match reader.read(&mut scratch).await {
                        Ok(0) | Err(_) => break opened.elapsed(),
                        Ok(_) => {}
                    }
                };
                drip.abort();
                closed_after
            } else {
                time_to_close(&mut stream, opened).await
            }
        }));
    }
    let mut slowest_close = Duration::ZERO;
    let mut fastest_close = Duration::MAX;
    for attacker in attackers {
        let closed_after = tokio::time::timeout(CONNECT_TIMEOUT + SLACK + SLACK, attacker)
            .await
            .expect("every slow connection is closed")
            .expect("attacker task");
        slowest_close = slowest_close.max(closed_after);
        fastest_close = fastest_close.min(closed_after);
    }
    stop_tx.send_replace(true);
    let (slowest_round, rounds) = legit.await.expect("legitimate client");
    assert!(
        fastest_close >= CONNECT_TIMEOUT - Duration::from_millis(100),
        "closed before the timeout: {fastest_close:?}"
    );
    assert!(
        slowest_close <= CONNECT_TIMEOUT + SLACK,
        "closed too late: {slowest_close:?}"
    );
    assert!(rounds >= 10, "only {rounds} exchanges during the attack");
    assert!(
        slowest_round < Duration::from_secs(1),
        "a round trip took {slowest_round:?}"
    );
    let timeouts = metric(&served.broker, |m| &m.connect_timeouts);
    assert!(
        timeouts >= (SILENT + TRICKLING) as u64,
        "{timeouts} connect timeouts counted"
    );
    assert_eq!(metric(&served.broker, |m| &m.connections_pending), 0);
}

/// The QUIC counterpart, with the client's exchanges placed between the attack's steps
/// rather than racing them: every exchange is made while slow connections are pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_quic_connections_are_timed_out_while_a_quic_client_works() {
    // Each QUIC handshake costs real cryptography on a 2-core machine: a few hundred make the
    // point; the TCP test above carries the thousands.
    const ATTACKERS: usize = 200;
    /// Attack connections opened between two exchanges of the legitimate client.
    const BATCH: usize = 20;
    let served = Arc::new(SecureBroker::start(attack_config()).await);
    let mut legit = Peer::quic(&served, ProtocolVersion::V5).await;
    legit.connect("legitimate").await;
    assert_eq!(
        legit.subscribe("legit/echo", QoS::AtLeastOnce, 1).await,
        ReasonCode::GrantedQoS1
    );
    let connector = served.connector(None);
    let url = served.quic_url();
    let mut rounds = 0u32;
    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        // Taken before the first packet leaves: the listener's handshake timer and the
        // broker's connect timer both start later, when the broker hears from the client.
        let started = Instant::now();
        let connected = connector.connect(&url).await.expect("attacker handshake");
        let mut peer = Peer::from_connected(connected, ProtocolVersion::V5);
        if i % 2 == 0 {
            // Opens the stream with the first byte of a CONNECT, then stalls: the broker's
            // connect timeout applies.
            peer.send_raw(&[0x10]).await;
        }
        // Otherwise the stream is never used: the listener's handshake timeout (the same
        // duration) drops the connection.
        attackers.push(tokio::spawn(async move {
            let closed = peer.closed_within(PATIENCE).await;
            (closed, started.elapsed())
        }));
        if (i + 1) % BATCH == 0 {
            // The connections just opened wait for their timeout, which none of them reaches
            // sooner than CONNECT_TIMEOUT after it started (asserted below).
            exchange(&mut legit, rounds, PATIENCE).await;
            rounds += 1;
        }
    }
    let closes = tokio::spawn(async move {
        let mut closes = Vec::new();
        for attacker in attackers {
            closes.push(attacker.await.expect("attacker task"));
        }
        closes
    });
    // And on while the attack connections wait for their timeout, until the last is closed.
    while !closes.is_finished() {
        exchange(&mut legit, rounds, PATIENCE).await;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (closed, after) in closes.await.expect("attack") {
        assert!(closed, "a slow QUIC connection stayed open");
        assert!(after >= CONNECT_TIMEOUT, "closed after {after:?}");
    }
    assert!(metric(&served.broker, |m| &m.connect_timeouts) >= (ATTACKERS / 2) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_cap_closes_a_flood_at_once_and_frees_up_after_connect() {
    let served = SecureBroker::start(BrokerConfig {
        max_pending_connections: 50,
        connection_rate: None,
        ..BrokerConfig::default()
    })
    .await;
    let mut holders = Vec::new();
    for _ in 0..50 {
        holders.push(attacker_socket(served.tcp).await);
    }
    security_support::wait_until("50 connections pending", Duration::from_secs(5), || {
        metric(&served.broker, |m| &m.connections_pending) == 50
    })
    .await;
    // The 51st is closed without waiting for anything.
    let mut refused = attacker_socket(served.tcp).await;
    let opened = Instant::now();
    assert!(time_to_close(&mut refused, opened).await < Duration::from_secs(1));
    assert_eq!(metric(&served.broker, |m| &m.pending_limit_rejections), 1);
    // A connection that completes CONNECT gives its pending place back.
    drop(holders.pop());
    security_support::wait_until("a place frees up", Duration::from_secs(5), || {
        metric(&served.broker, |m| &m.connections_pending) == 49
    })
    .await;
    let mut client = Peer::tcp(served.tcp, ProtocolVersion::V3_1_1).await;
    client.connect("real").await;
    assert_eq!(metric(&served.broker, |m| &m.connections_pending), 49);
    let mut another = Peer::tcp(served.tcp, ProtocolVersion::V3_1_1).await;
    another.connect("second").await;
}

#[tokio::test]
async fn a_source_over_its_connection_rate_is_closed_at_once() {
    let served = SecureBroker::start(BrokerConfig {
        connection_rate: Some(mquictt_broker::RateLimit {
            per_second: 1,
            burst: 5,
        }),
        ..BrokerConfig::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(attacker_socket(served.tcp).await);
    }
    let mut sixth = attacker_socket(served.tcp).await;
    assert!(time_to_close(&mut sixth, Instant::now()).await < Duration::from_secs(1));
    assert_eq!(metric(&served.broker, |m| &m.connection_rate_rejections), 1);
    // Another source address is unaffected.
    let mut other = Peer::tcp(served.tcp, ProtocolVersion::V5).await;
    other.connect("from-127.0.0.1").await;
}
