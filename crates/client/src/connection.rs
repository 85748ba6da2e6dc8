//! One network connection of the driver: the loop that moves data between the byte streams
//! of the [`Link`] and their sans-IO [`ClientSession`]s. The control stream (the single
//! stream on TCP, TLS and WebSocket) carries CONNECT and the keep alive; on a QUIC connection
//! every data stream the application opened gets a stream of its own once CONNACK has
//! accepted the connection, with a session made from the control stream's
//! ([`ClientSession::for_data_stream`]). Each turn waits for input on any stream (bytes, room
//! in a message buffer, progress of a write, a stream opened), a request of the application
//! or a timer, then gives every stream its turn (`stream_turn.rs`).
//!
//! The control stream is the connection: when it ends, the connection ends. A data stream
//! that breaks while the connection stays up is opened again at once with its subscriptions
//! renewed and its unfinished requests sent again; a connection on which that keeps happening
//! is treated as lost.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use mquictt_protocol::session::{
    ClientEvent, ClientSession, ClientStreamTemplate, ConnectionInfo, OutboundMessage, RequestError,
};
use mquictt_protocol::{Disconnect, PacketId, Properties, ReasonCode};
use mquictt_transport::BoxStream;

use crate::client::{Command, ConnectionStatus, QueueCount};
use crate::driver::{Driver, Ended, LaneChange, StopRequest};
use crate::error::ClientError;
use crate::lane::{Lane, LaneId};
use crate::link::{DataStreamOpener, Link};
use crate::message::Message;
use crate::stream_turn::{apply_event, exchange, renew_subscriptions};
use crate::wire::{IoEvent, Wire};

/// How long a closing connection may take to write its last packets (DISCONNECT) and shut
/// down before it is dropped: enough for a round trip on a slow link, short enough that a dead
/// link does not hold up the reconnect.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How many times the data streams of one connection may break and be opened again before
/// the connection counts as lost (and is re-opened with backoff): a broker that keeps
/// closing them must not make the client spin.
const MAX_DATA_STREAM_REOPENS: u32 = 16;

/// A data stream of the current connection.
enum DataSlot {
    /// The QUIC stream is being opened.
    Opening(BoxFuture<'static, io::Result<BoxStream>>),
    Open(Box<Wire>),
}

/// The state of one connection that the driver's long-lived state does not hold.
struct Connection {
    control: Wire,
    data: BTreeMap<LaneId, DataSlot>,
    /// Opens data streams; `None` unless the transport is QUIC.
    opener: Option<DataStreamOpener>,
    /// What data streams inherit from the control stream, once CONNACK accepted it.
    template: Option<ClientStreamTemplate>,
    max_incoming_packet: u32,
    /// QoS 2 exchanges of the resumed state that only await PUBCOMP: complete if the broker
    /// turns out to have lost the session.
    resumed_releases: Vec<PacketId>,
    /// Data streams opened again after they broke.
    reopens: u32,
    /// When the session closed, the deadline for writing out what is left.
    close_by: Option<Instant>,
}

/// What woke the loop.
enum Input {
    Io(Vec<(LaneId, StreamInput)>),
    Command(Box<Option<Command>>),
    Timer,
}

/// Input of one stream.
enum StreamInput {
    Io(IoEvent),
    Opened(io::Result<BoxStream>),
}

impl Connection {
    /// Polls every stream; ready when at least one has something.
    fn poll_streams(
        &mut self,
        cx: &mut Context<'_>,
        may_read: bool,
    ) -> Poll<Vec<(LaneId, StreamInput)>> {
        let mut ready = Vec::new();
        self.control.poll_io(cx, may_read, |event| {
            ready.push((LaneId::CONTROL, StreamInput::Io(event)));
        });
        for (&lane, slot) in &mut self.data {
            match slot {
                DataSlot::Opening(open) => {
                    if let Poll::Ready(result) = open.as_mut().poll(cx) {
                        ready.push((lane, StreamInput::Opened(result)));
                    }
                }
                DataSlot::Open(wire) => wire.poll_io(cx, may_read, |event| {
                    ready.push((lane, StreamInput::Io(event)));
                }),
            }
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ready)
        }
    }

    /// Starts opening the QUIC stream of a data lane.
    fn open_data_stream(&mut self, lane: LaneId) {
        match &self.opener {
            Some(opener) => {
                self.data.insert(lane, DataSlot::Opening(opener.open()));
            }
            // `Client::data_stream` refuses anything but QUIC, whose links have an opener.
            None => tracing::error!(%lane, "a data stream on a connection that is not QUIC"),
        }
    }

    fn is_drained(&self) -> bool {
        self.control.is_drained()
            && self.data.values().all(|slot| match slot {
                DataSlot::Open(wire) => wire.is_drained(),
                DataSlot::Opening(_) => true,
            })
    }
}

impl Driver {
    /// Runs one connection from CONNECT until it ends.
    pub(crate) async fn run_connection(&mut self, link: Link) -> Ended {
        let Link {
            stream,
            peer,
            data_streams,
        } = link;
        tracing::debug!(remote = %peer.remote, transport = %peer.transport, "connected");
        let (clean_start, resumed) = self.next_session();
        let mut config = self.config.clone();
        config.connect.clean_start = clean_start;
        let resumed_releases = resumed
            .iter()
            .flat_map(|state| state.outbound.iter())
            .filter_map(|message| match message {
                OutboundMessage::Release(id) => Some(*id),
                OutboundMessage::Publish(_) => None,
            })
            .collect();
        let session = ClientSession::new(config, resumed, Instant::now());
        let mut conn = Connection {
            control: Wire::new(stream, session, self.max_incoming_packet),
            data: BTreeMap::new(),
            opener: data_streams,
            template: None,
            max_incoming_packet: self.max_incoming_packet,
            resumed_releases,
            reopens: 0,
            close_by: None,
        };
        loop {
            self.react(&mut conn);
            if let Err(error) = self.reopen_broken_data_streams(&mut conn) {
                return self.end_connection(conn, Some(error));
            }
            let now = Instant::now();
            if conn.control.session.is_closed() {
                let drained = conn.is_drained();
                let close_by = *conn.close_by.get_or_insert(now + CLOSE_GRACE);
                if drained || now >= close_by {
                    if drained {
                        conn.control.shut_down(CLOSE_GRACE).await;
                    }
                    return self.end_connection(conn, None);
                }
            }
            let deadline = match (conn.control.session.poll_timeout(), conn.close_by) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let may_read = !conn.control.session.is_closed();
            let sleep_until = tokio::time::Instant::from_std(
                deadline.unwrap_or_else(|| now + Duration::from_secs(3600)),
            );
            let input = tokio::select! {
                ready = poll_fn(|cx| conn.poll_streams(cx, may_read)) => Input::Io(ready),
                command = self.commands.recv(), if self.stop.is_none() => Input::Command(Box::new(command)),
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => Input::Timer,
            };
            match input {
                Input::Io(ready) => {
                    for (lane, input) in ready {
                        if let Err(error) = self.on_stream_input(&mut conn, lane, input) {
                            return self.end_connection(conn, Some(error));
                        }
                    }
                }
                Input::Command(command) => self.accept_online(*command, &mut conn),
                Input::Timer => {
                    if let Err(error) = conn.control.session.handle_timeout(Instant::now()) {
                        conn.control.cause.get_or_insert(error.into());
                    }
                }
            }
        }
    }

    /// Every stream's turn, the control stream's first: its CONNACK opens the data streams.
    fn react(&mut self, conn: &mut Connection) {
        while let Some(event) = conn.control.session.poll_event() {
            if let ClientEvent::Connected(info) = event {
                self.on_connected(info, conn);
            } else if let Some(lane) = self.lanes.get_mut(&LaneId::CONTROL) {
                apply_event(lane, &mut conn.control, event, &self.queue_count);
            }
        }
        if let Some(lane) = self.lanes.get_mut(&LaneId::CONTROL) {
            exchange(lane, &mut conn.control, &self.queue_count);
        }
        for (id, slot) in &mut conn.data {
            let (DataSlot::Open(wire), Some(lane)) = (slot, self.lanes.get_mut(id)) else {
                continue;
            };
            while let Some(event) = wire.session.poll_event() {
                apply_event(lane, wire, event, &self.queue_count);
            }
            exchange(lane, wire, &self.queue_count);
        }
    }

    /// Takes in what happened on one stream. An error ends the connection.
    fn on_stream_input(
        &mut self,
        conn: &mut Connection,
        lane: LaneId,
        input: StreamInput,
    ) -> Result<(), ClientError> {
        match input {
            StreamInput::Opened(result) => {
                // The finished future must never be polled again.
                conn.data.remove(&lane);
                let stream = result?;
                self.on_data_stream_opened(conn, lane, stream);
                Ok(())
            }
            StreamInput::Io(event) => {
                let wire = if lane.is_control() {
                    &mut conn.control
                } else {
                    match conn.data.get_mut(&lane) {
                        Some(DataSlot::Open(wire)) => wire,
                        _ => return Ok(()),
                    }
                };
                match wire.handle_io(event) {
                    Ok(Some(flushed)) => {
                        if let Some(lane) = self.lanes.get_mut(&lane) {
                            lane.in_flight.complete_flushed(flushed);
                        }
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(error) if lane.is_control() => Err(error),
                    Err(error) => {
                        wire.failure.get_or_insert(error);
                        Ok(())
                    }
                }
            }
        }
    }

    fn on_connected(&mut self, info: ConnectionInfo, conn: &mut Connection) {
        tracing::debug!(session_present = info.session_present, "CONNACK accepted");
        self.backoff.reset();
        self.connected_once = true;
        self.status
            .send_replace(ConnectionStatus::Connected(Box::new(info.clone())));
        let session_present = info.session_present;
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(info));
        }
        conn.template = conn.control.session.data_stream_template();
        let data_lanes: Vec<LaneId> = self
            .lanes
            .keys()
            .copied()
            .filter(|lane| !lane.is_control())
            .collect();
        for lane in data_lanes {
            conn.open_data_stream(lane);
        }
        if session_present {
            return;
        }
        // The broker has no session: our QoS 2 messages that only awaited PUBCOMP were
        // received by it (PUBREC) and are complete; the subscriptions must be made again.
        let Some(lane) = self.lanes.get_mut(&LaneId::CONTROL) else {
            return;
        };
        for packet_id in std::mem::take(&mut conn.resumed_releases) {
            lane.in_flight
                .complete_publish(packet_id, ReasonCode::Success, Properties::default());
        }
        renew_subscriptions(lane, &mut conn.control);
    }

    /// A data stream's QUIC stream is open: it gets a session of its own, and its
    /// subscriptions are made again (the broker never keeps a data stream's subscriptions).
    fn on_data_stream_opened(&mut self, conn: &mut Connection, lane: LaneId, stream: BoxStream) {
        let (Some(template), Some(state)) = (&conn.template, self.lanes.get_mut(&lane)) else {
            return;
        };
        let session = ClientSession::for_data_stream(template, Instant::now());
        let mut wire = Wire::new(stream, session, conn.max_incoming_packet);
        renew_subscriptions(state, &mut wire);
        tracing::debug!(%lane, "data stream open");
        conn.data.insert(lane, DataSlot::Open(Box::new(wire)));
    }

    /// Settles the data streams that broke (their byte stream failed or ended, or the broker
    /// broke the protocol on them) and opens them again while the connection is up. Fails
    /// when that happened too often on this connection.
    fn reopen_broken_data_streams(&mut self, conn: &mut Connection) -> Result<(), ClientError> {
        let broken: Vec<LaneId> = conn
            .data
            .iter()
            .filter_map(|(lane, slot)| match slot {
                DataSlot::Open(wire) if wire.failure.is_some() || wire.session.is_closed() => {
                    Some(*lane)
                }
                _ => None,
            })
            .collect();
        for lane in broken {
            let Some(DataSlot::Open(mut wire)) = conn.data.remove(&lane) else {
                continue;
            };
            let cause = wire
                .cause
                .take()
                .or(wire.failure.take())
                .unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::ConnectionAborted, "the data stream closed")
                        .into()
                });
            tracing::debug!(%lane, "data stream broke: {cause}");
            let cause = Arc::new(cause);
            if let Some(state) = self.lanes.get_mut(&lane) {
                settle_data_stream(state, &mut wire, &cause, &self.queue_count);
            }
            if !conn.control.session.is_connected() {
                // The connection is ending; the next one opens the stream again.
                continue;
            }
            conn.reopens += 1;
            if conn.reopens > MAX_DATA_STREAM_REOPENS {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("the data streams keep breaking ({cause})"),
                )));
            }
            conn.open_data_stream(lane);
        }
        Ok(())
    }

    /// Takes a command while connected.
    fn accept_online(&mut self, command: Option<Command>, conn: &mut Connection) {
        let (disconnect, done) = match command {
            None => (Disconnect::new(ReasonCode::NORMAL_DISCONNECTION), None),
            Some(Command::Disconnect { disconnect, done }) => (disconnect, Some(done)),
            Some(command) => {
                match self.enqueue(command) {
                    Some(LaneChange::Opened(lane)) if conn.template.is_some() => {
                        conn.open_data_stream(lane);
                    }
                    Some(LaneChange::Closed(lane)) => {
                        if let Some(DataSlot::Open(mut wire)) = conn.data.remove(&lane) {
                            // Finishing the stream tells the broker to drop its subscriptions.
                            tokio::spawn(async move { wire.shut_down(CLOSE_GRACE).await });
                        }
                    }
                    _ => {}
                }
                return;
            }
        };
        self.stop = Some(StopRequest { done });
        if let Err(error) = conn.control.session.disconnect(disconnect) {
            if error != RequestError::Closed {
                // An invalid DISCONNECT (a Session Expiry the CONNECT did not allow) still
                // disconnects, normally.
                tracing::warn!("{error}; disconnecting normally");
                let _ = conn
                    .control
                    .session
                    .disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
            }
        }
    }

    /// Settles what the connection leaves behind and says how it ended.
    fn end_connection(&mut self, mut conn: Connection, io_error: Option<ClientError>) -> Ended {
        let cause = conn.control.cause.take().or(io_error);
        let stopping = self.stop.is_some();
        let cause = Arc::new(match cause {
            Some(cause) => cause,
            None if stopping => ClientError::Closed,
            None => ClientError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the session closed the connection",
            )),
        });
        // Data streams never outlive their connection on the broker: their sessions are
        // abandoned, and the next connection opens the streams again.
        for (lane, slot) in std::mem::take(&mut conn.data) {
            let (DataSlot::Open(mut wire), Some(state)) = (slot, self.lanes.get_mut(&lane)) else {
                continue;
            };
            settle_data_stream(state, &mut wire, &cause, &self.queue_count);
        }
        if let Some(lane) = self.lanes.get_mut(&LaneId::CONTROL) {
            lane.requeue_unfinished(conn.control.written, &cause, &self.queue_count);
        }
        let state = conn.control.session.take_state();
        if self.persistent {
            self.session_state = Some(state);
        } else {
            self.abandon(state);
        }
        if stopping {
            return Ended::Stopped;
        }
        match Arc::try_unwrap(cause) {
            Ok(cause) => Ended::Lost(cause),
            Err(shared) => Ended::Lost(ClientError::ConnectionLost(shared)),
        }
    }
}

/// Settles what a data stream leaves behind when it ends with its connection still up or
/// with it: unfinished requests go back to the lane's queue, its session is abandoned (the
/// broker never resumes a data stream's), and messages received but not yet delivered are
/// handed over if the lane's buffer has room. The broker discards a closed data stream's
/// unacknowledged messages rather than sending them again, so delivering them is their only
/// chance; the control stream's are left to the broker to re-send.
fn settle_data_stream(
    lane: &mut Lane,
    wire: &mut Wire,
    cause: &Arc<ClientError>,
    queue_count: &QueueCount,
) {
    lane.requeue_unfinished(wire.written, cause, queue_count);
    lane.abandon(wire.session.take_state(), queue_count);
    for publish in wire.undelivered.drain(..) {
        if lane
            .messages
            .try_send(Message::from_publish(publish))
            .is_err()
        {
            tracing::debug!("a message received on a closing data stream found no room");
        }
    }
}
