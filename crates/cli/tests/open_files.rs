//! The open-file limit of `mquictt broker`, started as a service manager or a shell would start
//! it: with a soft limit far below the hard one. Each connection is a file, so the broker
//! raises its soft limit to the hard limit, and says so when even that is too low for its
//! `max_connections`. Idle connections past the limit are held without descriptors.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait_with_timeout;

/// Starts the broker through `sh` with `limits` applied first (`ulimit` arguments), waits
/// until it listens, and returns it with its data directory.
fn broker_under(limits: &str) -> (Broker, tempfile::TempDir) {
    let (child, data_dir, _) = listening_broker_under(limits);
    (child, data_dir)
}

/// [`broker_under`], with the address it listens on.
fn listening_broker_under(limits: &str) -> (Broker, tempfile::TempDir, SocketAddr) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let script =
        format!("{limits} && exec \"$0\" broker --listen tcp://127.0.0.1:0 --data-dir \"$1\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_mquictt"))
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sh");
    let stdout = child.stdout.take().expect("piped stdout");
    // "listening on tcp://127.0.0.1:0 (127.0.0.1:40123)"
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, addr) = line.strip_prefix("listening on ")?.split_once(" (")?;
            addr.trim_end_matches(')').parse::<SocketAddr>().ok()
        });
    let addr = listening.expect("the broker never listened");
    (Broker(Some(child)), data_dir, addr)
}

/// The broker process, killed if a test fails before it stops it.
struct Broker(Option<Child>);

impl Broker {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `(soft, hard)` "Max open files" of a running process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn stop(mut broker: Broker) -> String {
    let Some(mut child) = broker.0.take() else {
        return String::new();
    };
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exited");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    stderr
}

#[test]
fn the_broker_raises_its_soft_open_file_limit_to_the_hard_limit() {
    let (child, _data) = broker_under("ulimit -S -n 256");
    let (soft, hard) = open_file_limits(child.id());
    assert_eq!(
        soft, hard,
        "soft limit {soft} left below the hard limit {hard}"
    );
    assert!(soft > 256);
    stop(child);
}

#[test]
fn a_hard_limit_below_max_connections_is_reported() {
    // The default `max_connections` is 10,000; 512 files hold about 448 connections.
    let (child, _data) = broker_under("ulimit -S -n 256 && ulimit -H -n 512");
    let (soft, hard) = open_file_limits(child.id());
    assert_eq!((soft, hard), (512, 512));
    let stderr = stop(child);
    assert!(
        stderr.contains("max_connections = 10000") && stderr.contains("ulimit -Hn"),
        "no warning about the open-file limit: {stderr}"
    );
}

/// An MQTT 3.1.1 client over a blocking socket, enough to connect, subscribe, publish at QoS
/// 0 and read one PUBLISH.
struct RawClient(TcpStream);

impl RawClient {
    fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let mut client = RawClient(stream);
        // CONNECT: protocol "MQTT" level 4, clean session, keep alive 600 s.
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0x02, 0x58];
        push_string(&mut body, client_id);
        client.send(0x10, &body);
        assert_eq!(client.read_packet(), (0x20, vec![0, 0]), "CONNACK accepted");
        client
    }

    fn subscribe(&mut self, filter: &str) {
        let mut body = vec![0, 1];
        push_string(&mut body, filter);
        body.push(0);
        self.send(0x82, &body);
        assert_eq!(self.read_packet(), (0x90, vec![0, 1, 0]), "SUBACK QoS 0");
    }

    fn publish(&mut self, topic: &str, payload: &[u8]) {
        let mut body = Vec::new();
        push_string(&mut body, topic);
        body.extend_from_slice(payload);
        self.send(0x30, &body);
    }

    fn send(&mut self, first_byte: u8, body: &[u8]) {
        assert!(body.len() < 128, "one-byte remaining length");
        let mut packet = vec![first_byte, body.len() as u8];
        packet.extend_from_slice(body);
        self.0.write_all(&packet).expect("send");
    }

    /// `(first byte, body)` of the next packet (remaining length below 128).
    fn read_packet(&mut self) -> (u8, Vec<u8>) {
        let mut header = [0u8; 2];
        self.0.read_exact(&mut header).expect("read a packet");
        let mut body = vec![0u8; usize::from(header[1])];
        self.0
            .read_exact(&mut body)
            .expect("read the packet's body");
        (header[0], body)
    }
}

fn push_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Fails at once, saying why, where sockets cannot be held without descriptors.
fn require_io_uring() {
    if let Err(e) = mquictt_socket_rings::SocketRings::new(1) {
        panic!(
            "this test needs io_uring with FIXED_FD_INSTALL (Linux 6.8 or later, not switched \
             off by kernel.io_uring_disabled or a seccomp filter): {e}"
        );
    }
}

#[test]
fn a_broker_holds_and_serves_more_idle_connections_than_its_open_file_limit() {
    require_io_uring();
    // 256 files; from the 192nd on, parked sockets are held without a descriptor.
    const CLIENTS: usize = 400;
    let (child, _data, addr) = listening_broker_under("ulimit -S -n 256 && ulimit -H -n 256");
    assert_eq!(open_file_limits(child.id()), (256, 256));
    let mut subscribers: Vec<RawClient> = (0..CLIENTS)
        .map(|i| {
            let mut client = RawClient::connect(addr, &format!("many-{i}"));
            client.subscribe("all");
            client
        })
        .collect();
    // Every connection is alive: one message reaches them all, woken a few at a time as
    // descriptors come free.
    let mut publisher = RawClient::connect(addr, "publisher");
    publisher.publish("all", b"hello");
    for subscriber in &mut subscribers {
        let (first_byte, body) = subscriber.read_packet();
        assert_eq!(first_byte, 0x30, "a QoS 0 PUBLISH");
        assert_eq!(&body[5..], b"hello");
    }
    // And one more client is served as usual.
    let mut late = RawClient::connect(addr, "late");
    late.subscribe("late");
    drop(subscribers);
    let stderr = stop(child);
    assert!(
        !stderr.contains("panicked"),
        "the broker's standard error: {stderr}"
    );
}

/// `mquictt bench idle` with 400 connections to `addr` at 1,000/s, held for `hold`, under an
/// open-file limit of 256, with `more` options.
fn bench_400_idle_under_256_files(addr: SocketAddr, hold: &str, more: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -S -n 256 && ulimit -H -n 256 && exec \"$0\" bench idle -u \"$1\" -c 400 \
             --connect-rate 1000 -d {hold} --no-progress {more}"
        ))
        .arg(env!("CARGO_BIN_EXE_mquictt"))
        .arg(format!("mqtt://{addr}"));
    command
}

#[test]
fn the_load_generator_holds_more_idle_connections_than_its_open_file_limit() {
    require_io_uring();
    let (broker, _data, addr) = listening_broker_under("true");
    // Keep alive 2 s over a 5 s hold: the broker closes a holder that does not ping, so every
    // holder must get its socket back from the ring to ping, twice or more.
    let output = bench_400_idle_under_256_files(addr, "5s", "-k 2s")
        .output()
        .expect("run the bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("400 connected, 0 failed"),
        "{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("clients failed after connecting"),
        "a holder was closed: {stdout}"
    );
    assert!(
        stderr.contains("idle connections wait without file descriptors"),
        "{stderr}"
    );
    stop(broker);
}

/// Established TCP connections whose local port is `port` (from `/proc/net/tcp`).
fn established_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
        })
        .count()
}

#[test]
fn the_load_generator_notices_a_broker_closing_connections_it_holds_without_descriptors() {
    require_io_uring();
    let (broker, _data, addr) = listening_broker_under("true");
    let bench = bench_400_idle_under_256_files(addr, "30s", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the bench");
    let started = std::time::Instant::now();
    while established_on(addr.port()) < 400 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the holders never all connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give the holders time to reach their rings (a wait, not a measurement).
    std::thread::sleep(Duration::from_millis(500));
    stop(broker);
    let output = bench.wait_with_output().expect("the bench's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("400 clients failed after connecting"),
        "every holder saw its connection closed: {stdout}"
    );
}
