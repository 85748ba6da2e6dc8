//! One UDP socket and one quinn endpoint per thread of a QUIC listener, all on the listener's
//! port (`SO_REUSEPORT`), so that a connection's datagrams are received on the thread that
//! serves it instead of passing through one endpoint's thread first.
//!
//! The kernel spreads datagrams over the sockets by their source and destination addresses,
//! so a client's datagrams reach the same socket for as long as its address stays the same,
//! and the endpoint on that socket accepts the connection. A client whose address changes
//! (NAT rebinding, migration to another network) may then reach another socket: every
//! connection ID an endpoint issues starts with its thread's index ([`ThreadConnectionIds`]),
//! and a short-header datagram whose connection ID names another thread is handed to that
//! thread's endpoint ([`RoutedSocket`]). Long-header datagrams (handshakes) stay where they
//! arrive: the client's connection IDs in them are its own, and a client does not migrate
//! before its handshake is confirmed (RFC 9000 section 9).
//!
//! The sockets share the port only among themselves: before binding them, the port is bound
//! once without `SO_REUSEPORT`, which fails as usual when another process (another broker
//! included) holds it.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, ConnectionId, ConnectionIdGenerator, UdpPoller};

use crate::quic_socket;

/// Bytes in the connection IDs a listener with threads issues: quinn's default length, of
/// which the first byte names the thread and the other seven are random.
pub(crate) const CONNECTION_ID_LEN: usize = 8;

/// Bytes of handed-on datagrams a thread holds before it drops more, as a full socket buffer
/// would: the socket buffer's default size.
const INBOX_BYTES: usize = crate::quic::DEFAULT_SOCKET_BUFFER;

/// `count` UDP sockets bound to `addr` (the port of the first for all, when `addr` asks for
/// port 0), sharing it through `SO_REUSEPORT`. One socket is bound without it.
pub(crate) fn bind_group(
    addr: SocketAddr,
    count: usize,
    buffer_size: usize,
) -> io::Result<Vec<std::net::UdpSocket>> {
    if count <= 1 {
        return Ok(vec![quic_socket::bind_udp(addr, buffer_size, false)?]);
    }
    // Fails when anyone holds the port, as a listener without threads would; a process that
    // binds with `SO_REUSEPORT` itself would otherwise share it silently.
    let probe = quic_socket::bind_udp(addr, buffer_size, false)?;
    let addr = probe.local_addr()?;
    drop(probe);
    (0..count)
        .map(|_| quic_socket::bind_udp(addr, buffer_size, true))
        .collect()
}

/// Connection IDs that start with the index of the thread whose endpoint issued them.
#[derive(Debug)]
pub(crate) struct ThreadConnectionIds {
    thread: u8,
    random: quinn_proto::RandomConnectionIdGenerator,
}

impl ThreadConnectionIds {
    pub(crate) fn new(thread: u8) -> Self {
        ThreadConnectionIds {
            thread,
            random: quinn_proto::RandomConnectionIdGenerator::new(CONNECTION_ID_LEN),
        }
    }
}

impl ConnectionIdGenerator for ThreadConnectionIds {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CONNECTION_ID_LEN];
        bytes.copy_from_slice(&self.random.generate_cid());
        bytes[0] = self.thread;
        ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CONNECTION_ID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// The thread a datagram belongs to, if it is a short-header packet whose connection ID names
/// one of `threads`.
pub(crate) fn owner(datagram: &[u8], threads: usize) -> Option<usize> {
    // Short header (RFC 9000 section 17.3): the form bit clear, then the destination
    // connection ID.
    let first = *datagram.first()?;
    if first & 0x80 != 0 || datagram.len() < 1 + CONNECTION_ID_LEN {
        return None;
    }
    let thread = usize::from(datagram[1]);
    (thread < threads).then_some(thread)
}

/// Datagrams handed to one thread by the others.
#[derive(Default)]
struct Inbox {
    datagrams: VecDeque<(RecvMeta, Vec<u8>)>,
    /// Bytes in `datagrams`.
    bytes: usize,
    /// The thread's endpoint driver, while it waits.
    waker: Option<Waker>,
}

/// The inboxes of all threads of a listener.
pub(crate) struct Routes {
    inboxes: Vec<Mutex<Inbox>>,
}

impl Routes {
    pub(crate) fn new(threads: usize) -> Arc<Self> {
        Arc::new(Routes {
            inboxes: (0..threads).map(|_| Mutex::default()).collect(),
        })
    }

    fn forward(&self, thread: usize, meta: RecvMeta, datagram: &[u8]) {
        let Some(inbox) = self.inboxes.get(thread) else {
            return;
        };
        let waker = {
            let mut inbox = inbox.lock().unwrap_or_else(|e| e.into_inner());
            if inbox.bytes + datagram.len() > INBOX_BYTES {
                return;
            }
            inbox.bytes += datagram.len();
            inbox.datagrams.push_back((meta, datagram.to_vec()));
            inbox.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A thread's socket as its quinn endpoint sees it: datagrams for connections of other
/// threads are handed on, and datagrams handed here are received as if from the socket.
pub(crate) struct RoutedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    thread: usize,
    routes: Arc<Routes>,
}

impl RoutedSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, thread: usize, routes: Arc<Routes>) -> Self {
        RoutedSocket {
            inner,
            thread,
            routes,
        }
    }

    /// Moves datagrams handed to this thread into `bufs`; registers `cx` for more when there
    /// are none.
    fn take_forwarded(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> usize {
        let Some(inbox) = self.routes.inboxes.get(self.thread) else {
            return 0;
        };
        let mut inbox = inbox.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = 0;
        while taken < bufs.len().min(meta.len()) {
            let Some((datagram_meta, bytes)) = inbox.datagrams.pop_front() else {
                break;
            };
            inbox.bytes -= bytes.len();
            // quinn's receive buffers are as large as any datagram batch its sockets take, and
            // all endpoints of a listener share its settings; a larger one cannot be ours.
            if bytes.len() > bufs[taken].len() {
                continue;
            }
            bufs[taken][..bytes.len()].copy_from_slice(&bytes);
            meta[taken] = datagram_meta;
            taken += 1;
        }
        if taken == 0 {
            inbox.waker = Some(cx.waker().clone());
        }
        taken
    }

    /// Reads the socket into `bufs`, keeping this thread's datagrams (packed at the front) and
    /// handing on the others.
    fn poll_socket(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let threads = self.routes.inboxes.len();
        loop {
            let received = match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(received)) => received,
                other => return other,
            };
            // A batch of segments comes from one address: its first segment decides.
            let mut kept = 0;
            for index in 0..received {
                let len = meta[index].len;
                match owner(&bufs[index][..len], threads) {
                    Some(thread) if thread != self.thread => {
                        self.routes
                            .forward(thread, meta[index], &bufs[index][..len]);
                    }
                    _ => {
                        if kept != index {
                            let (front, back) = bufs.split_at_mut(index);
                            front[kept][..len].copy_from_slice(&back[0][..len]);
                            meta[kept] = meta[index];
                        }
                        kept += 1;
                    }
                }
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
            // Everything went elsewhere: read on, so that the socket's readiness is waited
            // for again.
        }
    }
}

impl fmt::Debug for RoutedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedSocket")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for RoutedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        // Handed-on datagrams first, then the socket for the slots left: neither can starve
        // the other for long.
        let forwarded = self.take_forwarded(cx, bufs, meta);
        if forwarded == bufs.len().min(meta.len()) {
            return Poll::Ready(Ok(forwarded));
        }
        match self.poll_socket(cx, &mut bufs[forwarded..], &mut meta[forwarded..]) {
            Poll::Ready(Ok(received)) => Poll::Ready(Ok(forwarded + received)),
            // What the socket has to say waits for the next call.
            _ if forwarded > 0 => Poll::Ready(Ok(forwarded)),
            other => other,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use quinn::Runtime;

    use super::*;

    /// Two routed sockets of one listener on their own ports, so that a test decides which
    /// one a datagram reaches.
    fn two_threads() -> [Arc<RoutedSocket>; 2] {
        let routes = Routes::new(2);
        [0, 1].map(|thread| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let inner = quinn::TokioRuntime.wrap_udp_socket(socket).unwrap();
            Arc::new(RoutedSocket::new(inner, thread, routes.clone()))
        })
    }

    /// The next datagram `socket` hands its endpoint, or `None` if nothing comes soon.
    async fn next(socket: &RoutedSocket) -> Option<(SocketAddr, Vec<u8>)> {
        let mut buf = vec![0u8; 2048];
        let mut meta = [RecvMeta::default()];
        let received = tokio::time::timeout(
            Duration::from_millis(200),
            poll_fn(|cx| {
                let mut bufs = [IoSliceMut::new(&mut buf)];
                socket.poll_recv(cx, &mut bufs, &mut meta)
            }),
        )
        .await
        .ok()?
        .unwrap();
        assert_eq!(received, 1);
        Some((meta[0].addr, buf[..meta[0].len].to_vec()))
    }

    #[tokio::test]
    async fn a_datagram_for_another_threads_connection_is_received_there() {
        let [zero, one] = two_threads();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let from = peer.local_addr().unwrap();
        let to_zero = zero.local_addr().unwrap();
        let for_one = [0x40, 1, 7, 7, 7, 7, 7, 7, 7, 0xEE];
        let for_zero = [0x40, 0, 7, 7, 7, 7, 7, 7, 7, 0xDD];
        let handshake = [0xC0, 1, 7, 7, 7, 7, 7, 7, 7, 0xCC];
        for datagram in [&for_one, &for_zero, &handshake] {
            peer.send_to(datagram, to_zero).unwrap();
        }
        // Thread 0 keeps its own and the handshake, in order, and hands on thread 1's.
        assert_eq!(next(&zero).await, Some((from, for_zero.to_vec())));
        assert_eq!(next(&zero).await, Some((from, handshake.to_vec())));
        assert_eq!(next(&zero).await, None);
        assert_eq!(next(&one).await, Some((from, for_one.to_vec())));
        assert_eq!(next(&one).await, None);
    }

    #[test]
    fn connection_ids_name_their_thread_and_are_otherwise_random() {
        let mut ids = ThreadConnectionIds::new(3);
        let first = ids.generate_cid();
        let second = ids.generate_cid();
        assert_eq!(first.len(), CONNECTION_ID_LEN);
        assert_eq!(first[0], 3);
        assert_eq!(second[0], 3);
        assert_ne!(first[1..], second[1..]);
    }

    #[test]
    fn short_header_datagrams_belong_to_the_thread_their_connection_id_names() {
        let mut datagram = vec![0x40, 1, 9, 9, 9, 9, 9, 9, 9, 0xAA, 0xBB];
        assert_eq!(owner(&datagram, 2), Some(1));
        // A thread the listener does not have: not ours to route.
        datagram[1] = 5;
        assert_eq!(owner(&datagram, 2), None);
        // Long headers (handshakes) stay where they arrive.
        datagram[0] = 0xC0;
        datagram[1] = 1;
        assert_eq!(owner(&datagram, 2), None);
        // Too short to carry our connection ID.
        assert_eq!(owner(&[0x40, 1, 2], 2), None);
        assert_eq!(owner(&[], 2), None);
    }
}
