//! [`QuicStream`]: one QUIC bidirectional stream as a byte stream. Owns the stream's
//! graceful close (FIN, then wait until the peer acknowledged everything, for at most
//! [`drain_limit`]) and, on a client
//! that sent 0-RTT data, the recovery when the server rejects it: the bytes written before
//! the handshake completed are kept and written again on a fresh stream, so the caller sees
//! one unbroken byte stream either way. Recovery runs when the stream is next read or
//! written (an MQTT client always has a read pending for CONNACK, so at once).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use quinn::{Connection, ConnectionError, ReadError, RecvStream, SendStream, VarInt, WriteError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// Where the stream stands with respect to 0-RTT.
enum EarlyState {
    /// No 0-RTT on this stream (a server stream, or a client that waited for the handshake).
    None,
    /// Opened in 0-RTT and the handshake is still running: every byte written is kept.
    Pending {
        sent: Vec<u8>,
        handshake: watch::Receiver<Option<bool>>,
    },
    /// The server rejected 0-RTT: opening a replacement stream.
    Reopening {
        sent: Vec<u8>,
        open: BoxFuture<'static, Result<(SendStream, RecvStream), ConnectionError>>,
    },
    /// Writing the kept bytes on the replacement stream.
    Replaying { sent: Vec<u8>, written: usize },
}

/// Where the stream is in closing its sending side.
enum SendShutdown {
    Open,
    /// FIN sent; waiting until the peer acknowledged all data, so that dropping the last
    /// handle (which closes the connection) cannot discard bytes still in flight. The future
    /// (and the timer in it) exists only from the first `poll_shutdown` on: a stream that is
    /// never shut down costs no timer.
    Draining(BoxFuture<'static, ()>),
    Done,
}

/// Smoothed round-trip times the close of a stream waits for the peer's acknowledgement.
/// A peer that reads acknowledges the last packet about one RTT after it left, plus its ACK
/// delay (25 ms by default). Each time the last packets are lost, recovery waits for a probe
/// timeout (RFC 9002 section 6.2: smoothed RTT + 4 x RTT variance + ACK delay, about two RTTs
/// on a steady path) and doubles it for the next one: 16 RTTs cover the first send and
/// three lost tails in a row (1 + 2 + 4 + 8 RTTs, give or take).
const DRAIN_RTTS: u32 = 16;

/// The shortest wait: the floor for paths whose RTT is a millisecond or less (loopback, a
/// LAN), where a busy host's scheduling delay, not the path, decides when the
/// acknowledgement is processed.
const DRAIN_FLOOR: Duration = Duration::from_secs(1);

/// The longest wait, reached above an RTT of 625 ms (a geostationary satellite hop): the
/// default timeout of a handshake and of MQTT's CONNECT. Beyond it a peer that has not
/// acknowledged the stream's end is taken to be gone.
const DRAIN_CEILING: Duration = Duration::from_secs(10);

/// How long closing a stream waits for the peer to acknowledge everything sent on it, for a
/// connection whose smoothed RTT is `rtt`: [`DRAIN_RTTS`] round trips, within
/// [`DRAIN_FLOOR`] and [`DRAIN_CEILING`].
pub(crate) fn drain_limit(rtt: Duration) -> Duration {
    rtt.saturating_mul(DRAIN_RTTS)
        .clamp(DRAIN_FLOOR, DRAIN_CEILING)
}

/// One QUIC bidirectional stream as a byte stream. Holds a connection handle so the
/// connection lives as long as the stream.
pub struct QuicStream {
    send: SendStream,
    recv: RecvStream,
    connection: Connection,
    early: EarlyState,
    shutdown: SendShutdown,
}

impl QuicStream {
    pub(crate) fn new(send: SendStream, recv: RecvStream, connection: Connection) -> Self {
        QuicStream {
            send,
            recv,
            connection,
            early: EarlyState::None,
            shutdown: SendShutdown::Open,
        }
    }

    /// A client stream opened in 0-RTT; `handshake` turns `Some(accepted)` when the
    /// handshake completes.
    pub(crate) fn new_early(
        send: SendStream,
        recv: RecvStream,
        connection: Connection,
        handshake: watch::Receiver<Option<bool>>,
    ) -> Self {
        let mut stream = QuicStream::new(send, recv, connection);
        stream.early = EarlyState::Pending {
            sent: Vec::new(),
            handshake,
        };
        stream
    }

    /// The QUIC stream id: 0 for the first client-opened bidirectional stream, then 4, 8, …
    /// It changes if rejected 0-RTT data had to be sent again on a new stream.
    pub fn id(&self) -> u64 {
        VarInt::from(self.send.id()).into_inner()
    }

    /// The connection the stream belongs to.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Leaves the 0-RTT `Pending` state once the handshake has accepted the early data.
    fn settle_if_accepted(&mut self) {
        if let EarlyState::Pending { handshake, .. } = &self.early {
            if *handshake.borrow() == Some(true) {
                self.early = EarlyState::None;
            }
        }
    }

    /// Starts recovery after quinn reported the 0-RTT data rejected. Returns false when the
    /// stream was not in 0-RTT (the error is then a real one).
    fn start_reopening(&mut self) -> bool {
        let sent = match std::mem::replace(&mut self.early, EarlyState::None) {
            EarlyState::Pending { sent, .. } => sent,
            other => {
                self.early = other;
                return false;
            }
        };
        let connection = self.connection.clone();
        self.early = EarlyState::Reopening {
            sent,
            open: async move { connection.open_bi().await }.boxed(),
        };
        true
    }

    /// Drives recovery from a rejected 0-RTT attempt to its end.
    fn poll_recover(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.early {
                EarlyState::None | EarlyState::Pending { .. } => return Poll::Ready(Ok(())),
                EarlyState::Reopening { sent, open } => {
                    let (send, recv) = ready!(open.as_mut().poll(cx)).map_err(io::Error::from)?;
                    self.send = send;
                    self.recv = recv;
                    self.early = EarlyState::Replaying {
                        sent: std::mem::take(sent),
                        written: 0,
                    };
                }
                EarlyState::Replaying { sent, written } => {
                    let Some(rest) = sent.get(*written..).filter(|rest| !rest.is_empty()) else {
                        self.early = EarlyState::None;
                        continue;
                    };
                    let n = ready!(Pin::new(&mut self.send).poll_write(cx, rest))
                        .map_err(io::Error::from)?;
                    *written += n;
                }
            }
        }
    }
}

/// The most received chunks [`QuicStream::poll_read_append`] takes at once. A chunk is the data
/// of one STREAM frame, usually one datagram's worth (1,200 to 6,500 bytes on loopback), so a
/// call takes about what one read of the broker's 16 KiB would.
const CHUNKS_PER_READ: usize = 8;

impl QuicStream {
    /// Appends what the stream has received to `buf`: quinn's received chunks are copied
    /// straight into `buf`, where [`AsyncRead::poll_read`] copies them into the caller's buffer
    /// first and the caller then into its own. `Ok(0)` is the end of the stream. A 0-RTT
    /// rejection is recovered from as in `poll_read`.
    pub fn poll_read_append(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            self.settle_if_accepted();
            ready!(self.poll_recover(cx))?;
            let mut chunks: [Bytes; CHUNKS_PER_READ] = Default::default();
            // Cancel-safe: polled once and dropped, it takes nothing it does not return, and
            // it leaves the waker registered when nothing was ready. quinn returns the data
            // that came before a reset first and the reset on the next call.
            let polled = std::pin::pin!(self.recv.read_chunks(&mut chunks)).poll(cx);
            match ready!(polled) {
                Ok(Some(count)) => {
                    let taken = chunks.get(..count).unwrap_or_default();
                    let read = taken.iter().map(Bytes::len).sum();
                    buf.reserve(read);
                    for chunk in taken {
                        buf.extend_from_slice(chunk);
                    }
                    // Empty chunks alone are not the end of the stream: read again.
                    if read > 0 {
                        return Poll::Ready(Ok(read));
                    }
                }
                Ok(None) => return Poll::Ready(Ok(0)),
                Err(ReadError::ZeroRttRejected) if self.start_reopening() => {}
                Err(err) => return Poll::Ready(Err(err.into())),
            }
        }
    }
}

impl std::fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicStream")
            .field("id", &self.id())
            .field("remote", &self.connection.remote_address())
            .finish_non_exhaustive()
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            this.settle_if_accepted();
            ready!(this.poll_recover(cx))?;
            match ready!(this.recv.poll_read_buf(cx, buf)) {
                Err(ReadError::ZeroRttRejected) if this.start_reopening() => {}
                result => return Poll::Ready(result.map_err(io::Error::from)),
            }
        }
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            this.settle_if_accepted();
            ready!(this.poll_recover(cx))?;
            match ready!(Pin::new(&mut this.send).poll_write(cx, buf)) {
                Ok(n) => {
                    if let EarlyState::Pending { sent, .. } = &mut this.early {
                        sent.extend_from_slice(buf.get(..n).unwrap_or(buf));
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(WriteError::ZeroRttRejected) if this.start_reopening() => {}
                Err(err) => return Poll::Ready(Err(err.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // quinn sends as soon as congestion control allows; only a replay may be unfinished.
        self.get_mut().poll_recover(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_recover(cx))?;
        loop {
            match &mut this.shutdown {
                SendShutdown::Open => {
                    // An already finished or reset stream has nothing left to deliver.
                    let _ = this.send.finish();
                    let stopped = this.send.stopped();
                    let limit = drain_limit(this.connection.rtt());
                    let id = this.id();
                    this.shutdown = SendShutdown::Draining(
                        async move {
                            // `stopped` ends when the peer acknowledged everything, stopped
                            // the stream, or the connection failed. A peer that vanished,
                            // froze or lost its network lets none of these happen before the
                            // idle timeout. (One that is alive but not reading still
                            // acknowledges: flow control kept what it cannot take out of the
                            // stream.) Giving up loses only what such a peer would not have
                            // taken anyway: a living peer acknowledges within the limit. The
                            // stream is not reset, so quinn keeps delivering while the
                            // connection lives.
                            if tokio::time::timeout(limit, stopped).await.is_err() {
                                tracing::debug!(
                                    stream = id,
                                    ?limit,
                                    "QUIC stream closed without the peer's acknowledgement"
                                );
                            }
                        }
                        .boxed(),
                    );
                }
                SendShutdown::Draining(stopped) => {
                    ready!(stopped.as_mut().poll(cx));
                    this.shutdown = SendShutdown::Done;
                }
                SendShutdown::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_limit_follows_the_rtt_between_floor_and_ceiling() {
        assert_eq!(drain_limit(Duration::ZERO), DRAIN_FLOOR);
        assert_eq!(drain_limit(Duration::from_micros(80)), DRAIN_FLOOR);
        assert_eq!(
            drain_limit(Duration::from_millis(100)),
            Duration::from_millis(1600)
        );
        assert_eq!(drain_limit(Duration::from_millis(625)), DRAIN_CEILING);
        assert_eq!(drain_limit(Duration::from_secs(3)), DRAIN_CEILING);
        assert_eq!(drain_limit(Duration::MAX), DRAIN_CEILING);
    }
}
