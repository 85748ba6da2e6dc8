//! Reading without a buffer per connection. A connection waits for input with nothing
//! allocated: each read lands in a scratch buffer owned by the worker thread, and only the
//! bytes that arrived are copied into the connection's own buffer, which the decoder then
//! empties. An idle connection therefore holds no read buffer at all, where one buffer of
//! [`READ_CHUNK`] per connection would be most of its memory; a busy one pays one copy of
//! what it read, small beside decoding and routing it. A QUIC stream needs no scratch buffer:
//! quinn hands over the chunks it received, and they are appended to the connection's buffer
//! directly.

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use mquictt_transport::{BoxStream, QuicStream};
use tokio::io::{AsyncRead, ReadBuf};

/// The most one read takes from a stream: enough for a few hundred small PUBLISH packets, so
/// a busy publisher is read in few system calls.
pub(super) const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// The worker thread's scratch buffer; it is borrowed only inside one `poll_read`.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Polls one read from `stream` and appends what arrived to `buf`; `Ok(0)` is the end of
/// the stream. Nothing is allocated while the stream has no input.
pub(super) fn poll_read_into<S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>>
where
    S: AsyncRead + Unpin + 'static,
{
    if let Some(quic) = quic_stream(stream) {
        return quic.poll_read_append(cx, buf);
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let mut read = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(stream).poll_read(cx, &mut read))?;
            let filled = read.filled();
            buf.extend_from_slice(filled);
            Poll::Ready(Ok(filled.len()))
        }
        // Only if a stream's own read polled another connection's read on this thread: read
        // into the connection's buffer instead.
        Err(_) => poll_read_direct(stream, cx, buf),
    })
}

/// The QUIC stream under `stream`, when it is one: its received chunks go into the
/// connection's buffer without passing through the scratch buffer (one copy of every byte
/// fewer; docs/benchmarks.md, *QUIC throughput*, "QUIC reads without the scratch buffer").
fn quic_stream<S: 'static>(stream: &mut S) -> Option<&mut QuicStream> {
    let boxed = (stream as &mut dyn Any).downcast_mut::<BoxStream>()?;
    (**boxed).as_any_mut().downcast_mut::<QuicStream>()
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

    async fn read_once<S: AsyncRead + Unpin + 'static>(
        stream: &mut S,
        buf: &mut BytesMut,
    ) -> usize {
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
