//! [`Wire`]: one byte stream of the current connection together with the session machine
//! that speaks MQTT on it: the single stream, the control stream, or one data stream of a
//! multi-stream QUIC connection. Owns the stream's buffers and its IO: it polls reads, writes
//! and flushes without blocking, so that one task can drive every stream of a connection and
//! a stream that cannot make progress never holds up another. Knows nothing about requests
//! or lanes; `stream_turn.rs` moves packets between the session and the lane.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use futures_util::future::BoxFuture;
use mquictt_protocol::session::ClientSession;
use mquictt_protocol::{Decoder, Publish};
use mquictt_transport::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWrite};

use crate::error::ClientError;

/// Bytes reserved in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Something that happened on a wire's byte stream.
#[derive(Debug)]
pub(crate) enum IoEvent {
    Wrote(io::Result<usize>),
    Flushed(io::Result<()>),
    Read(io::Result<usize>),
    /// The lane's message buffer has room again.
    Room,
}

/// One byte stream and its session.
pub(crate) struct Wire {
    io: BoxStream,
    pub(crate) session: ClientSession,
    decoder: Decoder,
    inbound: BytesMut,
    pub(crate) outbound: BytesMut,
    /// Bytes ever encoded into `outbound`, and bytes of them written to the stream.
    pub(crate) encoded: u64,
    pub(crate) written: u64,
    /// Bytes were written since the last flush.
    needs_flush: bool,
    /// Received messages waiting for room in the lane's message buffer; reading pauses while
    /// there are any.
    pub(crate) undelivered: VecDeque<Publish>,
    /// Resolves when the lane's message buffer has room again.
    pub(crate) room: Option<BoxFuture<'static, ()>>,
    /// Why the session ended, when it did (a refusal, the broker's DISCONNECT, a violation).
    pub(crate) cause: Option<ClientError>,
    /// The byte stream failed (or ended); set on data streams, whose failure does not end the
    /// connection.
    pub(crate) failure: Option<ClientError>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("session", &self.session)
            .field("outbound", &self.outbound.len())
            .field("undelivered", &self.undelivered.len())
            .finish_non_exhaustive()
    }
}

impl Wire {
    pub(crate) fn new(io: BoxStream, session: ClientSession, max_incoming_packet: u32) -> Self {
        let decoder = Decoder::with_version(session.version(), max_incoming_packet);
        Wire {
            io,
            session,
            decoder,
            inbound: BytesMut::with_capacity(READ_CHUNK),
            outbound: BytesMut::new(),
            encoded: 0,
            written: 0,
            needs_flush: false,
            undelivered: VecDeque::new(),
            room: None,
            cause: None,
            failure: None,
        }
    }

    /// Everything encoded has been written and flushed.
    pub(crate) fn is_drained(&self) -> bool {
        self.outbound.is_empty() && !self.needs_flush
    }

    /// Polls the stream: one write (or flush) if there is something to write, one read if
    /// `may_read` and the lane keeps up with the messages, and the wait for room in the
    /// lane's message buffer. Every event that is ready is pushed to `events`.
    pub(crate) fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        may_read: bool,
        mut events: impl FnMut(IoEvent),
    ) {
        if self.failure.is_some() {
            return;
        }
        if !self.outbound.is_empty() {
            if let Poll::Ready(result) = Pin::new(&mut self.io).poll_write(cx, &self.outbound) {
                events(IoEvent::Wrote(result));
            }
        } else if self.needs_flush {
            if let Poll::Ready(result) = Pin::new(&mut self.io).poll_flush(cx) {
                events(IoEvent::Flushed(result));
            }
        }
        if may_read && self.undelivered.is_empty() && !self.session.is_closed() {
            self.inbound.reserve(READ_CHUNK);
            // `read_buf` holds no state of its own, so a fresh future per poll loses nothing.
            let read = pin!(self.io.read_buf(&mut self.inbound));
            if let Poll::Ready(result) = read.poll(cx) {
                events(IoEvent::Read(result));
            }
        }
        if let Some(room) = &mut self.room {
            if room.as_mut().poll(cx).is_ready() {
                self.room = None;
                events(IoEvent::Room);
            }
        }
    }

    /// Takes an IO event in. Returns how far the stream is written and flushed when a flush
    /// completed (QoS 0 publishes up to there are done), and an error when the stream broke,
    /// ended, or brought a malformed packet.
    pub(crate) fn handle_io(&mut self, event: IoEvent) -> Result<Option<u64>, ClientError> {
        match event {
            IoEvent::Wrote(Ok(0)) => {
                Err(io::Error::new(io::ErrorKind::WriteZero, "the connection is closed").into())
            }
            IoEvent::Wrote(Ok(n)) => {
                self.outbound.advance(n.min(self.outbound.len()));
                self.written += n as u64;
                self.needs_flush = true;
                Ok(None)
            }
            IoEvent::Flushed(Ok(())) => {
                self.needs_flush = false;
                Ok(Some(self.written))
            }
            IoEvent::Wrote(Err(error))
            | IoEvent::Flushed(Err(error))
            | IoEvent::Read(Err(error)) => Err(error.into()),
            IoEvent::Read(Ok(0)) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            )
            .into()),
            // A malformed packet ends the stream at once: it cannot be resynchronised, and
            // MQTT 5 only allows (not requires) a DISCONNECT.
            IoEvent::Read(Ok(_)) => self.decode().map(|()| None),
            // The next turn delivers now that the buffer has room.
            IoEvent::Room => Ok(None),
        }
    }

    /// Decodes every complete packet read and hands it to the session.
    fn decode(&mut self) -> Result<(), ClientError> {
        while !self.session.is_closed() {
            match self.decoder.decode(&mut self.inbound)? {
                Some(packet) => {
                    if let Err(error) = self.session.handle_packet(packet, Instant::now()) {
                        self.cause.get_or_insert(error.into());
                    }
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Writes out what is left and closes the sending side, within `grace`; used when the
    /// connection ends normally.
    pub(crate) async fn shut_down(&mut self, grace: std::time::Duration) {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(grace, async {
            self.io.write_all(&self.outbound).await?;
            self.outbound.clear();
            self.io.shutdown().await
        })
        .await;
    }
}
