//! Footprint of the connection driver: what every busy connection's task holds, and what a
//! parked idle connection keeps without one (docs/benchmarks.md, "memory per idle
//! connection"); the hand-over of a stream to the parking lot; and what a driver's timer
//! tells it about being idle.

use std::sync::Arc;

use super::*;
use crate::{AllowAll, Broker, BrokerConfig, MemoryStorage};

/// The connection state itself: the protocol machine (624 bytes) and little else; rare
/// states (enhanced authentication, QUIC hooks) are boxed.
const DRIVER_BYTES: usize = 1_536;
/// What an idle, parked TCP connection keeps of it (456 bytes when this was written; 464 with a
/// second handle to its signal, 496 while every protocol machine had its own copy of the
/// configuration, 568 while the QoS 1/2 bookkeeping's two maps and the user name and
/// authentication method were held inline, 1,008 while it kept the whole protocol machine
/// rather than its compact idle form, 1,136 before the session kept only the terms of its
/// CONNECT and its packet-identifier maps lost their random seeds): the machine's settings and
/// counters, the attached session's handles and the socket, no buffers.
const PARKED_BYTES: usize = 464;
/// The whole future of a busy connection's task in an optimised build (2,888 bytes when this
/// was written, 6,424 before the rare paths were boxed, 3,152 once the loop learnt to park
/// and to read close requests from the connection's signal). An idle connection no longer
/// holds it (it parks). Unoptimised builds keep more locals alive across awaits, so only
/// release builds check it.
const SERVE_FUTURE_BYTES: usize = 3_200;

/// A broker with default settings, in memory, inside the test's runtime.
fn broker() -> Broker {
    Broker::new(
        BrokerConfig::default(),
        Arc::new(MemoryStorage::new()),
        Arc::new(AllowAll),
    )
    .unwrap()
}

#[tokio::test]
async fn a_connection_s_state_and_future_stay_small() {
    let broker = broker();
    assert!(
        std::mem::size_of::<Driver<mquictt_transport::BoxStream>>() <= DRIVER_BYTES,
        "driver is {} bytes",
        std::mem::size_of::<Driver<mquictt_transport::BoxStream>>()
    );
    assert!(
        std::mem::size_of::<ParkedConnection>() <= PARKED_BYTES,
        "parked connection is {} bytes",
        std::mem::size_of::<ParkedConnection>()
    );
    assert!(
        std::mem::size_of::<Driver<tokio::net::TcpStream>>() <= DRIVER_BYTES,
        "TCP driver is {} bytes",
        std::mem::size_of::<Driver<tokio::net::TcpStream>>()
    );
    let (ours, _theirs) = tokio::io::duplex(64);
    let stream: mquictt_transport::BoxStream = Box::new(ours);
    let future = broker.serve_connection(stream, PeerInfo::default());
    let size = std::mem::size_of_val(&future);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(client).unwrap();
    let tcp_future = broker.serve_tcp_connection(tcp, PeerInfo::default());
    let tcp_size = std::mem::size_of_val(&tcp_future);
    if !cfg!(debug_assertions) {
        assert!(size <= SERVE_FUTURE_BYTES, "serve future is {size} bytes");
        assert!(
            tcp_size <= SERVE_FUTURE_BYTES,
            "TCP serve future is {tcp_size} bytes"
        );
    }
}

/// An idle driver attached to a session nobody else knows, around `stream`: what a parked
/// connection is made of, without a client.
fn idle_stream_connection(
    broker: &Broker,
    stream: mquictt_transport::BoxStream,
) -> Box<ParkedConnection> {
    let mut driver = Driver::open(broker.shared.clone(), stream, PeerInfo::default(), None)
        .expect("a driver while the broker runs");
    driver.attached = Some(Attached {
        client_id: "parked".into(),
        owner: "parked".into(),
        username: None,
        auth_method: None,
        connection: ConnectionId(std::num::NonZeroU64::MAX),
        version: ProtocolVersion::V5,
        expiry: Duration::ZERO,
        signal: crate::router::SignalHandle::new(Arc::new(
            crate::router::ConnectionSignal::default(),
        )),
        persistent: false,
        exchanges: super::Exchanges::default(),
    });
    let (state, stream, quic) = park::IdleDriver::from_idle(driver).expect("attached");
    ParkedConnection::stream(
        state,
        Box::new(park_stream::ParkedStream {
            stream,
            beside: None,
            quic,
        }),
    )
}

/// A stream polled with the lot's waker can wake before it is handed over: the wake is
/// remembered and the connection is handed back to run on, not parked where nothing would
/// wake it again. Without a wake it parks, a wake has the lot's task resume it (never the
/// waker itself, which a stream may call with its own locks held), and a late wake is ignored.
#[tokio::test]
async fn a_stream_woken_on_its_way_to_the_lot_is_handed_back() {
    let broker = broker();
    let lot = broker.shared.parking.clone().expect("a parking lot");
    let (ours, _theirs) = tokio::io::duplex(64);

    let token = lot.reserve();
    lot.waker(token).wake();
    let handed_back = lot.park(idle_stream_connection(&broker, Box::new(ours)), Some(token));
    assert!(
        handed_back.is_err(),
        "a connection woken on its way was parked"
    );
    assert_eq!(lot.len(), 0);

    let (ours, _theirs) = tokio::io::duplex(64);
    let token = lot.reserve();
    assert!(lot
        .park(idle_stream_connection(&broker, Box::new(ours)), Some(token))
        .is_ok());
    assert_eq!(lot.len(), 1);
    let waker = lot.waker(token);
    waker.wake_by_ref();
    assert_eq!(lot.len(), 1, "resumed inside the waker");
    // This test's runtime has one thread: the lot's task runs once the test waits.
    for _ in 0..500 {
        if lot.len() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(lot.len(), 0, "the lot's task resumed it");
    // Late: the connection runs elsewhere; nothing to find.
    waker.wake();
    assert_eq!(lot.len(), 0);
}

#[test]
fn a_timer_that_fires_with_a_wake_up_waiting_is_not_idleness() {
    let signal = crate::router::ConnectionSignal::default();
    let now = Instant::now();
    let passed = Some(now - Duration::from_millis(1));
    let ahead = Some(now + park::IDLE_BEFORE_PARKING);
    // Polled late: the idle deadline has passed, and a message was queued meanwhile.
    signal.wake();
    assert_eq!(
        park::at_timer(Some(&signal), passed, now),
        park::AtTimer::Woken
    );
    // That wake-up was taken: the next timer is idleness again.
    assert_eq!(
        park::at_timer(Some(&signal), passed, now),
        park::AtTimer::Quiet
    );
    assert_eq!(
        park::at_timer(Some(&signal), ahead, now),
        park::AtTimer::Busy
    );
    assert_eq!(park::at_timer(None, None, now), park::AtTimer::Busy);
}
