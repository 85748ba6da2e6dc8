//! Helpers shared by the lab's root tests: starting a lab (failing loudly when the machine
//! cannot host one), link settings, a UDP echo server, a TCP sink, and waiting for namespaces
//! to disappear. Traffic stays inside the lab's 10.200.0.0/16 namespaces.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mquictt_lab::{
    list_namespaces, Bandwidth, Host, InsideThread, Lab, LabGuard, LinkConfig, LossModel,
    QueueLimit, Topology,
};

/// Starts a lab, or fails the test saying what this machine lacks.
pub fn start(topology: Topology) -> LabGuard {
    if let Err(e) = Lab::check_prerequisites() {
        panic!("this test needs root and /dev/net/tun: {e}");
    }
    Lab::start(topology).unwrap_or_else(|e| panic!("cannot start the lab: {e}"))
}

/// A symmetric link setting.
pub fn link(mbit: f64, delay_ms: u64, loss_pct: f64) -> LinkConfig {
    LinkConfig {
        bandwidth: Some(Bandwidth::from_mbit(mbit).unwrap()),
        delay: Duration::from_millis(delay_ms),
        loss: LossModel::from_percent(loss_pct).unwrap(),
        queue: QueueLimit::default(),
    }
}

/// The namespace names of a running lab.
pub fn namespace_names(lab: &LabGuard) -> Vec<String> {
    lab.hosts()
        .iter()
        .map(|h| h.namespace_name().to_owned())
        .collect()
}

/// Waits up to 5 s for every name in `names` to leave `ip netns list`; fails otherwise.
pub fn assert_namespaces_gone(names: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let present = list_namespaces();
        let left: Vec<&String> = names.iter().filter(|n| present.contains(n)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "namespaces left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A UDP socket bound inside `host` on an ephemeral port.
pub fn udp_socket_in(host: &Host) -> UdpSocket {
    let addr = host.addr();
    host.run(move || UdpSocket::bind(SocketAddrV4::new(addr, 0)))
        .unwrap()
        .unwrap()
}

/// Echoes datagrams on a socket inside `host` until one says `stop` or 5 s pass in silence.
pub fn udp_echo(host: &Host) -> (SocketAddr, InsideThread<()>) {
    let socket = udp_socket_in(host);
    let local = socket.local_addr().unwrap();
    let thread = host
        .spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 2048];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                if &buf[..len] == b"stop" {
                    return;
                }
                let _ = socket.send_to(&buf[..len], from);
            }
        })
        .unwrap();
    (local, thread)
}

/// Sends `count` echo requests of `size` bytes one at a time and returns the round-trip times
/// of those answered within 1 s.
pub fn udp_round_trips(
    client: &UdpSocket,
    echo: SocketAddr,
    count: usize,
    size: usize,
) -> Vec<Duration> {
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut rtts = Vec::new();
    let mut buf = [0u8; 2048];
    for seq in 0..count {
        let mut payload = vec![0u8; size];
        payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
        let sent = Instant::now();
        client.send_to(&payload, echo).unwrap();
        loop {
            match client.recv_from(&mut buf) {
                Ok((len, _)) if len == size && buf[..8] == payload[..8] => {
                    rtts.push(sent.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    rtts
}

/// The median of some durations.
pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Accepts one TCP connection inside `host`, reads it to the end and returns (bytes, time
/// from accept to end of stream). Sends one byte back at the end, so the sender can tell
/// that everything arrived.
pub fn tcp_sink(host: &Host) -> (SocketAddr, InsideThread<(u64, Duration)>) {
    let addr = host.addr();
    let listener = host
        .run(move || TcpListener::bind(SocketAddrV4::new(addr, 0)))
        .unwrap()
        .unwrap();
    let local = listener.local_addr().unwrap();
    let thread = host
        .spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .unwrap();
            let started = Instant::now();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) => panic!("sink read failed after {total} bytes: {e}"),
                }
            }
            let elapsed = started.elapsed();
            let _ = stream.write_all(b"k");
            (total, elapsed)
        })
        .unwrap();
    (local, thread)
}

/// Connects from inside `host` to `to`, writes `bytes` bytes, half-closes and waits for the
/// sink's final byte. Returns the congestion control algorithm the socket used.
pub fn tcp_send(host: &Host, to: SocketAddr, bytes: usize) -> InsideThread<String> {
    host.spawn(move || {
        let mut stream = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        let algorithm =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::TcpCongestion)
                .unwrap()
                .to_string_lossy()
                .into_owned();
        let chunk = vec![0x5au8; 16 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            stream.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut ack = [0u8; 1];
        stream.read_exact(&mut ack).unwrap();
        algorithm
    })
    .unwrap()
}

/// Sends `count` numbered datagrams from `from` to `to`, one every `gap`, and returns the
/// sequence numbers the receiver got (it listens until 1 s after the last datagram).
pub fn udp_burst_received(from: &Host, to: &Host, count: u32, gap: Duration) -> Vec<u32> {
    let receiver = udp_socket_in(to);
    // A buffer for the whole burst: a receiver thread descheduled on a busy machine must not
    // turn into packet loss the test would blame on the link.
    nix::sys::socket::setsockopt(
        &receiver,
        nix::sys::socket::sockopt::RcvBufForce,
        &(8 << 20),
    )
    .unwrap();
    let target = receiver.local_addr().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let listening = to
        .spawn(move || {
            receiver
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let _ = ready_tx.send(());
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            let mut quiet_since = Instant::now();
            while quiet_since.elapsed() < Duration::from_secs(1) {
                if let Ok(len) = receiver.recv(&mut buf) {
                    if len >= 4 {
                        got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
                    }
                    quiet_since = Instant::now();
                }
            }
            got
        })
        .unwrap();
    ready_rx.recv().unwrap();
    let sender = udp_socket_in(from);
    let mut next = Instant::now();
    for seq in 0..count {
        let mut payload = [0u8; 100];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        sender.send_to(&payload, target).unwrap();
        next += gap;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    listening.join().unwrap()
}
