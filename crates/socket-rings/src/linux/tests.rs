use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::*;

/// Taken by every test: one changes the process's open-file limit and another watches which
/// descriptor numbers are free, so under `cargo test`, where tests share a process, they run
/// one at a time (under `cargo nextest` each has a process of its own anyway).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connected pair over loopback: (the side to hold, the peer).
fn pair() -> (OwnedFd, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (held, _) = listener.accept().unwrap();
    peer.set_nonblocking(true).unwrap();
    (OwnedFd::from(held), peer)
}

/// Waits (up to a minute, so a loaded machine cannot fail it) until ring `index`'s descriptor
/// is readable, then takes what is ready.
fn wait_ready(rings: &mut SocketRings, index: usize) -> Vec<u64> {
    let fd = rings.ring_fd(index).unwrap().as_raw_fd();
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    #[allow(unsafe_code)]
    let n = unsafe { libc::poll(&mut poll, 1, 60_000) };
    assert_eq!(n, 1, "the ring's descriptor turned readable");
    let mut ready = Vec::new();
    rings.take_ready(index, &mut ready);
    ready
}

/// What a non-blocking read from `peer` finds: `Some(0)` at the end of the stream, `None` if
/// nothing is there yet.
fn peek(peer: &mut TcpStream) -> Option<usize> {
    let mut buf = [0u8; 64];
    match peer.read(&mut buf) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => panic!("read failed: {e}"),
    }
}

#[test]
fn a_held_socket_keeps_its_connection_without_a_descriptor_and_comes_back_working() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(8).unwrap();
    let (held, mut peer) = pair();
    let fd = held.as_raw_fd();
    assert_eq!(
        rings.hold(7, held).unwrap(),
        None,
        "the first ring had room"
    );
    assert!(rings.contains(7));
    // The descriptor is closed: a new socket may get its number.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(
        probe.as_raw_fd() <= fd,
        "the held socket's descriptor was freed"
    );
    assert_eq!(
        peek(&mut peer),
        None,
        "the connection stays open while held"
    );

    peer.write_all(b"hello").unwrap();
    assert_eq!(wait_ready(&mut rings, 0), vec![7]);
    let mut back = TcpStream::from(rings.release(7).unwrap());
    assert!(!rings.contains(7));
    assert!(rings.is_empty());
    let mut buf = [0u8; 5];
    back.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    back.write_all(b"world").unwrap();
    peer.set_nonblocking(false).unwrap();
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"world");
}

#[test]
fn a_socket_let_go_is_closed_and_its_key_is_free() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(8).unwrap();
    let (held, mut peer) = pair();
    rings.hold(1, held).unwrap();
    rings.let_go(1);
    assert!(!rings.contains(1));
    peer.set_nonblocking(false).unwrap();
    assert_eq!(
        peek(&mut peer),
        Some(0),
        "the peer sees the end of the stream"
    );
    let (again, _peer) = pair();
    assert!(rings.hold(1, again).is_ok(), "the key can be used again");
    assert!(matches!(rings.release(2), Err(e) if e.kind() == ErrorKind::NotFound));
}

#[test]
fn a_key_in_use_or_too_large_is_refused_with_the_socket_handed_back() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(8).unwrap();
    let (first, _peer1) = pair();
    let (second, mut peer2) = pair();
    rings.hold(3, first).unwrap();
    let refused = rings.hold(3, second).unwrap_err();
    assert_eq!(refused.error.kind(), ErrorKind::InvalidInput);
    let refused = rings.hold(MAX_KEY + 1, refused.socket).unwrap_err();
    let mut back = TcpStream::from(refused.socket);
    back.write_all(b"x").unwrap();
    peer2.set_nonblocking(false).unwrap();
    assert_eq!(peek(&mut peer2), Some(1), "the refused socket still works");
}

#[test]
fn more_sockets_than_a_table_holds_open_more_rings() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(2).unwrap();
    let mut peers = Vec::new();
    let mut opened = Vec::new();
    for key in 0..5 {
        let (held, peer) = pair();
        peers.push(peer);
        opened.push(rings.hold(key, held).unwrap());
    }
    // With two slots a ring, the next ring opens as the last free slot is taken.
    assert_eq!(opened, vec![None, Some(1), None, Some(2), None]);
    assert_eq!(rings.rings(), 3);
    assert_eq!(rings.len(), 5);
    peers[4].write_all(b"!").unwrap();
    assert_eq!(wait_ready(&mut rings, 2), vec![4]);
    for key in 0..5 {
        let mut back = TcpStream::from(rings.release(key).unwrap());
        back.write_all(b"?").unwrap();
    }
    for peer in &mut peers {
        peer.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 1];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"?");
    }
    // A slot freed by a release is used again before any new ring is opened.
    let (held, _peer) = pair();
    assert_eq!(rings.hold(9, held).unwrap(), None);
}

#[test]
fn a_peer_closing_its_side_wakes_the_held_socket() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(8).unwrap();
    let (held, peer) = pair();
    rings.hold(5, held).unwrap();
    drop(peer);
    assert_eq!(wait_ready(&mut rings, 0), vec![5]);
    let mut back = TcpStream::from(rings.release(5).unwrap());
    let mut buf = [0u8; 4];
    assert_eq!(
        back.read(&mut buf).unwrap(),
        0,
        "the end of the stream is there"
    );
}

#[test]
fn a_released_socket_is_no_longer_watched() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(8).unwrap();
    let (held, mut peer) = pair();
    let (other, mut other_peer) = pair();
    rings.hold(1, held).unwrap();
    rings.hold(2, other).unwrap();
    let _back = rings.release(1).unwrap();
    peer.write_all(b"late").unwrap();
    other_peer.write_all(b"now").unwrap();
    // Only the socket still held is reported; the released one's watch was cancelled.
    let mut ready = wait_ready(&mut rings, 0);
    std::thread::sleep(Duration::from_millis(20));
    rings.take_ready(0, &mut ready);
    assert_eq!(ready, vec![2]);
}

/// Sets this process's soft open-file limit.
fn set_soft_file_limit(soft: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for both calls.
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let before = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        before
    }
}

#[test]
fn a_release_without_a_descriptor_to_spare_keeps_the_socket_held() {
    let _one = one_at_a_time();
    let mut rings = SocketRings::new(8).unwrap();
    let (held, mut peer) = pair();
    rings.hold(4, held).unwrap();
    let before = set_soft_file_limit(0);
    let refused = rings.release(4);
    set_soft_file_limit(before);
    let error = refused.unwrap_err();
    assert!(is_out_of_descriptors(&error), "{error}");
    assert!(rings.contains(4), "still held");
    assert_eq!(peek(&mut peer), None, "the connection is still open");
    // Still watched, and released once a descriptor is free.
    peer.write_all(b"ok").unwrap();
    assert_eq!(wait_ready(&mut rings, 0), vec![4]);
    let mut back = TcpStream::from(rings.release(4).unwrap());
    let mut buf = [0u8; 2];
    back.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok");
}

#[test]
fn completions_past_the_queue_are_all_taken_at_once() {
    let _one = one_at_a_time();
    // A queue of 16 completions, and 40 sockets turning readable together: 24 wait in the
    // kernel, and one look at the ring must still report all 40.
    let mut rings = SocketRings::with_completion_entries(64, 16).unwrap();
    let mut peers = Vec::new();
    for key in 0..40 {
        let (held, peer) = pair();
        rings.hold(key, held).unwrap();
        peers.push(peer);
    }
    for peer in &mut peers {
        peer.write_all(b"x").unwrap();
    }
    // Give the kernel time to post all 40 before the look (a wait, not a measurement).
    std::thread::sleep(Duration::from_millis(100));
    let mut ready = wait_ready(&mut rings, 0);
    ready.sort_unstable();
    assert_eq!(ready, (0..40).collect::<Vec<_>>());
}

#[test]
fn a_ring_s_table_fits_the_open_file_limit_and_stays_small() {
    assert_eq!(crate::slots_per_ring(256), 256);
    assert_eq!(crate::slots_per_ring(20_000), crate::MOST_SLOTS_PER_RING);
    assert_eq!(crate::slots_per_ring(0), 1);
}
