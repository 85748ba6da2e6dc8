//! Reading without a buffer per connection. A connection waits for input with nothing
//! allocated: each read lands in a scratch buffer owned by the worker thread, and only the
//! bytes that arrived are copied into the connection's own buffer, which the decoder then
//! empties. An idle connection therefore holds no read buffer at all, where one buffer of
//! [`READ_CHUNK`] per connection would be most of its memory; a busy one pays one copy of
//! what it read, small beside decoding and routing it.

use std::cell::RefCell;
use std::io;
use std::mem;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// The most one read takes from a stream: enough for a few hundred small PUBLISH packets, so
/// a busy publisher is read in few system calls.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// A read at least this large marks its connection busy: when its buffer is full, the next
/// one comes from the thread's [`Pool`]. Smaller reads get a buffer of exactly what they need,
/// as an idle connection's occasional packet should.
const BUSY_READ: usize = READ_CHUNK / 4;

/// The size of a pooled buffer: two full reads, so that a partial packet carried over from
/// the last one still leaves room for the next.
const POOLED: usize = 2 * READ_CHUNK;

/// The most buffers one thread's pool keeps: 512 KiB at most, per thread and not per
/// connection. Enough to cover the data that deliveries on other threads still hold while a
/// busy publisher goes on reading (a millisecond of it at 500 MB/s).
const POOL_LEN: usize = 16;

thread_local! {
    /// The worker thread's scratch buffer; it is borrowed only inside one `poll_read`.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
    /// The worker thread's pool of buffers for busy connections.
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { keepers: Vec::new() }) };
}

/// Buffers for busy connections that come back without being freed.
///
/// A packet's payload is a slice of the buffer it was read into, and the message that holds
/// it is often freed on another thread (the subscriber's), last of everything in that buffer.
/// A buffer allocated on one thread and freed on another takes the lock of the allocating
/// thread's heap twice: once where it is allocated and once where it is freed, and with a
/// busy publisher the two threads then wait for each other. The pool keeps an empty handle
/// (a keeper) on each buffer it hands out, so the last slice to go only lowers a count, and
/// a buffer whose keeper is the last handle left is handed out again, whole, without an
/// allocation.
#[derive(Debug)]
struct Pool {
    keepers: Vec<BytesMut>,
}

impl Pool {
    /// A buffer of [`POOLED`] bytes, empty: one nobody uses any more, or a new one while the
    /// pool has room; `None` when all of its buffers are still in use.
    fn take(&mut self) -> Option<BytesMut> {
        for keeper in &mut self.keepers {
            if keeper.try_reclaim(POOLED) {
                let mut whole = mem::take(keeper);
                *keeper = whole.split_to(0);
                return Some(whole);
            }
        }
        if self.keepers.len() < POOL_LEN {
            let mut whole = BytesMut::with_capacity(POOLED);
            self.keepers.push(whole.split_to(0));
            return Some(whole);
        }
        None
    }
}

/// Makes room in `buf` for `incoming` more bytes of a busy connection from the thread's pool,
/// moving what `buf` still holds (the start of a packet) over. Otherwise appending allocates,
/// as it always has.
fn make_room(buf: &mut BytesMut, incoming: usize) {
    if incoming < BUSY_READ || buf.capacity() - buf.len() >= incoming {
        return;
    }
    if buf.len() + incoming > POOLED {
        return;
    }
    let pooled = POOL.with(|pool| pool.try_borrow_mut().ok().and_then(|mut pool| pool.take()));
    if let Some(mut pooled) = pooled {
        pooled.extend_from_slice(buf);
        *buf = pooled;
    }
}

/// Polls one read from `stream` and appends what arrived to `buf`; `Ok(0)` is the end of
/// the stream. Nothing is allocated while the stream has no input.
pub(super) fn poll_read_into<S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>>
where
    S: AsyncRead + Unpin,
{
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let mut read = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(stream).poll_read(cx, &mut read))?;
            let filled = read.filled();
            make_room(buf, filled.len());
            buf.extend_from_slice(filled);
            Poll::Ready(Ok(filled.len()))
        }
        // Only if a stream's own read polled another connection's read on this thread: read
        // into the connection's buffer instead.
        Err(_) => poll_read_direct(stream, cx, buf),
    })
}

/// Reads once from a socket that Tokio does not watch (a parked connection's) and appends
/// what arrived to `buf`: `Ok(0)` is the end of the stream, `WouldBlock` that nothing came.
pub(super) fn read_ready_into<R>(socket: &mut R, buf: &mut BytesMut) -> io::Result<usize>
where
    R: io::Read,
{
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let n = socket.read(&mut scratch[..])?;
            make_room(buf, n);
            buf.extend_from_slice(scratch.get(..n).unwrap_or_default());
            Ok(n)
        }
        Err(_) => {
            let start = buf.len();
            buf.resize(start + READ_CHUNK, 0);
            let read = socket.read(buf.get_mut(start..).unwrap_or_default());
            buf.truncate(start + *read.as_ref().unwrap_or(&0));
            read
        }
    })
}

fn poll_read_direct<S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>>
where
    S: AsyncRead + Unpin,
{
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let mut read = ReadBuf::new(&mut buf[start..]);
    let polled = Pin::new(stream).poll_read(cx, &mut read);
    let filled = read.filled().len();
    buf.truncate(start + filled);
    ready!(polled)?;
    Poll::Ready(Ok(filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn read_once<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> usize {
        std::future::poll_fn(|cx| poll_read_into(stream, cx, buf))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn appends_what_arrived_and_nothing_more() {
        let (mut reader, mut writer) = tokio::io::duplex(64 * 1024);
        let mut buf = BytesMut::new();
        writer.write_all(b"hello").await.unwrap();
        assert_eq!(read_once(&mut reader, &mut buf).await, 5);
        assert_eq!(&buf[..], b"hello");
        assert!(buf.capacity() < READ_CHUNK, "{}", buf.capacity());
        writer.write_all(b" world").await.unwrap();
        assert_eq!(read_once(&mut reader, &mut buf).await, 6);
        assert_eq!(&buf[..], b"hello world");
        drop(writer);
        assert_eq!(read_once(&mut reader, &mut buf).await, 0);
    }

    #[tokio::test]
    async fn a_large_input_is_read_a_chunk_at_a_time() {
        let (mut reader, mut writer) = tokio::io::duplex(4 * READ_CHUNK);
        let input: Vec<u8> = (0..3 * READ_CHUNK).map(|i| i as u8).collect();
        writer.write_all(&input).await.unwrap();
        let mut buf = BytesMut::new();
        while buf.len() < input.len() {
            let n = read_once(&mut reader, &mut buf).await;
            assert!(n > 0 && n <= READ_CHUNK, "{n}");
        }
        assert_eq!(&buf[..], &input[..]);
    }

    #[test]
    fn a_pooled_buffer_comes_back_once_nothing_holds_its_packets() {
        let mut pool = Pool {
            keepers: Vec::new(),
        };
        let mut first = pool.take().unwrap();
        assert_eq!(first.capacity(), POOLED);
        let start = first.as_ptr();
        first.extend_from_slice(&[1; 100]);
        let packet = first.split_to(100).freeze();
        drop(first);
        // A packet of the first buffer is still held (by a delivery, say): another one.
        let second = pool.take().unwrap();
        assert_ne!(second.as_ptr(), start);
        drop(second);
        assert_eq!(&packet[..], &[1; 100][..]);
        drop(packet);
        // The first buffer again, whole, and nothing new allocated.
        let again = pool.take().unwrap();
        assert_eq!((again.as_ptr(), again.capacity()), (start, POOLED));
        assert_eq!(pool.keepers.len(), 2);
    }

    #[test]
    fn a_pool_whose_buffers_are_all_held_gives_none() {
        let mut pool = Pool {
            keepers: Vec::new(),
        };
        let held: Vec<BytesMut> = (0..POOL_LEN).map(|_| pool.take().unwrap()).collect();
        assert!(pool.take().is_none());
        drop(held);
        assert!(pool.take().is_some());
        assert_eq!(pool.keepers.len(), POOL_LEN);
    }

    #[test]
    fn a_busy_read_moves_the_start_of_a_packet_into_a_pooled_buffer() {
        let mut buf = BytesMut::from(&b"start of a packet"[..]);
        make_room(&mut buf, READ_CHUNK);
        assert_eq!(&buf[..], b"start of a packet");
        assert_eq!(buf.capacity(), POOLED);
        // A small read is left to allocate what it needs, as an idle connection's would.
        let mut small = BytesMut::from(&b"ping"[..]);
        let capacity = small.capacity();
        make_room(&mut small, 2);
        assert_eq!((&small[..], small.capacity()), (&b"ping"[..], capacity));
    }

    #[test]
    fn the_direct_read_keeps_only_what_arrived() {
        let mut stream: &[u8] = b"abc";
        let mut buf = BytesMut::from(&b"x"[..]);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let polled = poll_read_direct(&mut stream, &mut cx, &mut buf);
        assert!(matches!(polled, Poll::Ready(Ok(3))));
        assert_eq!(&buf[..], b"xabc");
    }
}
