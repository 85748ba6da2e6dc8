//! One network connection of the driver: the loop that moves data between the [`Link`] and
//! the sans-IO [`ClientSession`]. Each turn waits for input (bytes from the broker, a request
//! of the application, a timer, room in the message buffer, progress of a write), then lets
//! the session react: forward its events, hand it queued requests, and encode what it wants
//! to transmit. No protocol decision is made here; the session makes them.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mquictt_protocol::session::{ClientEvent, ClientSession, ConnectionInfo, RequestError};
use mquictt_protocol::{Decoder, Disconnect, Packet, PacketId, Publish, QoS, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::error::TrySendError;

use crate::client::{Command, ConnectionStatus};
use crate::driver::{Driver, Ended, StopRequest};
use crate::error::ClientError;
use crate::link::Link;
use crate::message::{Message, SubscribeOutcome, UnsubscribeOutcome};
use crate::pending::{PendingPublish, PendingSubscribe, PendingUnsubscribe, QoS0Publish, Request};

/// Bytes reserved in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// How long a closing connection may take to write its last packets (DISCONNECT) and shut
/// down before it is dropped: enough for a round trip on a slow link, short enough that a dead
/// link does not hold up the reconnect.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The state of one connection that the driver's long-lived state does not hold.
struct Connection {
    session: ClientSession,
    decoder: Decoder,
    inbound: BytesMut,
    outbound: BytesMut,
    /// Bytes ever encoded into `outbound`, and bytes of them written to the link.
    encoded: u64,
    written: u64,
    /// Bytes were written since the last flush.
    needs_flush: bool,
    /// Received messages waiting for room in the application's buffer; reading pauses while
    /// there are any.
    undelivered: VecDeque<Publish>,
    /// QoS 2 exchanges of the resumed state that only await PUBCOMP: complete if the broker
    /// turns out to have lost the session.
    resumed_releases: Vec<PacketId>,
    /// Why the session ended, when it did (a refusal, the broker's DISCONNECT, a violation).
    cause: Option<ClientError>,
    /// When the session closed, the deadline for writing out what is left.
    close_by: Option<Instant>,
}

/// What woke the loop.
enum Input {
    Wrote(io::Result<usize>),
    Flushed(io::Result<()>),
    Read(io::Result<usize>),
    Command(Box<Option<Command>>),
    Timer,
    MessageRoom,
}

impl Driver {
    /// Runs one connection from CONNECT until it ends.
    pub(crate) async fn run_connection(&mut self, link: Link) -> Ended {
        let Link {
            mut reader,
            mut writer,
            peer,
            #[cfg(feature = "quic")]
                quic: _quic,
        } = link;
        tracing::debug!(remote = %peer.remote, transport = %peer.transport, "connected");
        let (clean_start, resumed) = self.next_session();
        let mut config = self.config.clone();
        config.connect.clean_start = clean_start;
        let version = config.connect.protocol;
        let resumed_releases = resumed
            .iter()
            .flat_map(|state| state.outbound.iter())
            .filter_map(|message| match message {
                mquictt_protocol::session::OutboundMessage::Release(id) => Some(*id),
                mquictt_protocol::session::OutboundMessage::Publish(_) => None,
            })
            .collect();
        let mut conn = Connection {
            session: ClientSession::new(config, resumed, Instant::now()),
            decoder: Decoder::with_version(version, self.max_incoming_packet),
            inbound: BytesMut::with_capacity(READ_CHUNK),
            outbound: BytesMut::new(),
            encoded: 0,
            written: 0,
            needs_flush: false,
            undelivered: VecDeque::new(),
            resumed_releases,
            cause: None,
            close_by: None,
        };
        loop {
            self.react(&mut conn);
            let now = Instant::now();
            if conn.session.is_closed() {
                let drained = conn.outbound.is_empty() && !conn.needs_flush;
                let close_by = *conn.close_by.get_or_insert(now + CLOSE_GRACE);
                if drained || now >= close_by {
                    if drained {
                        let _ = tokio::time::timeout(CLOSE_GRACE, writer.shutdown()).await;
                    }
                    return self.end_connection(conn, None);
                }
            }
            let deadline = match (conn.session.poll_timeout(), conn.close_by) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let can_read = conn.undelivered.is_empty() && !conn.session.is_closed();
            let can_write = !conn.outbound.is_empty() || conn.needs_flush;
            conn.inbound.reserve(READ_CHUNK);
            let sleep_until = tokio::time::Instant::from_std(
                deadline.unwrap_or_else(|| now + Duration::from_secs(3600)),
            );
            let input = tokio::select! {
                result = async {
                    if conn.outbound.is_empty() {
                        Input::Flushed(writer.flush().await)
                    } else {
                        Input::Wrote(writer.write_buf(&mut conn.outbound).await)
                    }
                }, if can_write => result,
                result = reader.read_buf(&mut conn.inbound), if can_read => Input::Read(result),
                command = self.commands.recv(), if self.stop.is_none() => Input::Command(Box::new(command)),
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => Input::Timer,
                _ = self.messages.reserve(), if !conn.undelivered.is_empty() => Input::MessageRoom,
            };
            match input {
                Input::Wrote(Ok(0)) => {
                    let error =
                        io::Error::new(io::ErrorKind::WriteZero, "the connection is closed");
                    return self.end_connection(conn, Some(error.into()));
                }
                Input::Wrote(Ok(n)) => {
                    conn.written += n as u64;
                    conn.needs_flush = true;
                }
                Input::Flushed(Ok(())) => {
                    conn.needs_flush = false;
                    self.in_flight.complete_flushed(conn.written);
                }
                Input::Wrote(Err(error)) | Input::Flushed(Err(error)) | Input::Read(Err(error)) => {
                    return self.end_connection(conn, Some(error.into()));
                }
                Input::Read(Ok(0)) => {
                    let error = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the broker closed the connection",
                    );
                    return self.end_connection(conn, Some(error.into()));
                }
                Input::Read(Ok(_)) => {
                    if let Err(error) = conn.decode() {
                        // A malformed packet ends the connection at once: the stream cannot be
                        // resynchronised, and MQTT 5 only allows (not requires) a DISCONNECT.
                        return self.end_connection(conn, Some(error));
                    }
                }
                Input::Command(command) => self.accept_online(*command, &mut conn),
                Input::Timer => {
                    if let Err(error) = conn.session.handle_timeout(Instant::now()) {
                        conn.cause.get_or_insert(error.into());
                    }
                }
                // `react` delivers now that the buffer has room.
                Input::MessageRoom => {}
            }
        }
    }

    /// The session's turn after any input: forward its events, deliver received messages,
    /// hand it queued requests, encode what it transmits.
    fn react(&mut self, conn: &mut Connection) {
        self.forward_events(conn);
        self.deliver(conn);
        if conn.session.is_connected() {
            self.feed(conn);
        }
        self.transmit(conn);
    }

    fn forward_events(&mut self, conn: &mut Connection) {
        while let Some(event) = conn.session.poll_event() {
            match event {
                ClientEvent::Connected(info) => self.on_connected(info, conn),
                ClientEvent::ConnectionRefused(connack) => {
                    conn.cause.get_or_insert(ClientError::Refused {
                        reason_code: connack.reason_code,
                        reason_string: connack
                            .properties
                            .reason_string
                            .as_ref()
                            .map(|text| text.to_string()),
                    });
                }
                ClientEvent::SessionDiscarded(publishes) => {
                    let resend: Vec<_> = publishes
                        .into_iter()
                        .filter_map(|publish| self.republish(publish))
                        .collect();
                    self.requests.requeue(resend);
                }
                ClientEvent::Publish(publish) => conn.undelivered.push_back(publish),
                ClientEvent::PublishAcknowledged {
                    packet_id,
                    reason_code,
                    properties,
                } => self
                    .in_flight
                    .complete_publish(packet_id, reason_code, properties),
                ClientEvent::PublishDropped {
                    publish,
                    size,
                    maximum,
                } => {
                    let pending = publish
                        .packet_id
                        .and_then(|id| self.in_flight.publishes.remove(&id));
                    if let Some(pending) = pending {
                        let error = RequestError::PacketTooLarge { size, maximum };
                        let _ = pending.done.send(Err(error.into()));
                    }
                }
                ClientEvent::SubAck(suback) => {
                    if let Some(pending) = self.in_flight.subscribes.remove(&suback.packet_id) {
                        self.subscriptions
                            .granted(&pending.subscription, &suback.reason_codes);
                        match pending.done {
                            Some(done) => {
                                let _ = done.send(Ok(SubscribeOutcome {
                                    packet_id: suback.packet_id,
                                    reason_codes: suback.reason_codes,
                                    properties: suback.properties,
                                }));
                            }
                            None if suback.reason_codes.iter().any(|c| c.is_error()) => {
                                tracing::warn!(codes = ?suback.reason_codes, "renewing subscriptions: the broker refused some");
                            }
                            None => {}
                        }
                    }
                }
                ClientEvent::UnsubAck(unsuback) => {
                    let pending = self.in_flight.unsubscribes.remove(&unsuback.packet_id);
                    if let Some(pending) = pending {
                        self.subscriptions
                            .removed(&pending.filters, &unsuback.reason_codes);
                        let _ = pending.done.send(Ok(UnsubscribeOutcome {
                            packet_id: unsuback.packet_id,
                            reason_codes: unsuback.reason_codes,
                            properties: unsuback.properties,
                        }));
                    }
                }
                ClientEvent::Auth(_) => {
                    // The session only lets AUTH through when CONNECT named an authentication
                    // method; this client does not drive enhanced authentication exchanges.
                    tracing::warn!("the broker sent AUTH; enhanced authentication is not supported by this client");
                }
                ClientEvent::Disconnected(disconnect) => {
                    conn.cause.get_or_insert(ClientError::ServerDisconnected {
                        reason_code: disconnect.reason_code,
                        reason_string: disconnect
                            .properties
                            .reason_string
                            .as_ref()
                            .map(|text| text.to_string()),
                    });
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
        if session_present {
            return;
        }
        // The broker has no session: our QoS 2 messages that only awaited PUBCOMP were
        // received by it (PUBREC) and are complete; the subscriptions must be made again.
        for packet_id in std::mem::take(&mut conn.resumed_releases) {
            self.in_flight.complete_publish(
                packet_id,
                ReasonCode::Success,
                mquictt_protocol::Properties::default(),
            );
        }
        for subscription in self.subscriptions.renewals() {
            match conn.session.subscribe(
                subscription.filters.clone(),
                subscription.properties.clone(),
            ) {
                Ok(packet_id) => {
                    self.in_flight.subscribes.insert(
                        packet_id,
                        PendingSubscribe {
                            seq: 0,
                            subscription,
                            done: None,
                        },
                    );
                }
                Err(error) => tracing::warn!("cannot renew a subscription: {error}"),
            }
        }
    }

    /// Hands received messages to the application while its buffer has room, acknowledging
    /// QoS 1 and 2 messages as they go in (or are dropped because nobody listens any more).
    fn deliver(&mut self, conn: &mut Connection) {
        while !conn.undelivered.is_empty() {
            let permit = match self.messages.try_reserve() {
                Ok(permit) => Some(permit),
                Err(TrySendError::Full(())) => return,
                Err(TrySendError::Closed(())) => None,
            };
            let Some(publish) = conn.undelivered.pop_front() else {
                return;
            };
            if let (Some(packet_id), true) = (publish.packet_id, publish.qos != QoS::AtMostOnce) {
                // Fails only when the session closed meanwhile; the broker re-sends then.
                let _ = conn.session.ack_incoming(packet_id, ReasonCode::Success);
            }
            if let Some(permit) = permit {
                permit.send(Message::from_publish(publish));
            }
        }
    }

    /// Hands queued requests to the session, in order, until its send window is full.
    fn feed(&mut self, conn: &mut Connection) {
        while let Some(queued) = self.requests.pop() {
            let seq = queued.seq;
            match queued.request {
                Request::Publish { publish, done } => {
                    let copy = (publish.qos == QoS::AtMostOnce).then(|| publish.clone());
                    match conn.session.publish(publish) {
                        Ok(Some(packet_id)) => {
                            self.in_flight
                                .publishes
                                .insert(packet_id, PendingPublish { seq, done });
                        }
                        Ok(None) => {
                            if let Some(publish) = copy {
                                self.in_flight.qos0_unsent.push_back(QoS0Publish {
                                    seq,
                                    publish,
                                    done,
                                    start: 0,
                                    end: 0,
                                });
                            }
                        }
                        Err(RequestError::QueueFull(publish)) => {
                            // The broker's Receive Maximum is reached: wait for an
                            // acknowledgement, keeping the order.
                            self.requests.push_front(crate::pending::Queued {
                                seq,
                                request: Request::Publish {
                                    publish: *publish,
                                    done,
                                },
                            });
                            return;
                        }
                        Err(error) => {
                            let _ = done.send(Err(error.into()));
                        }
                    }
                    self.queue_count.release();
                }
                Request::Subscribe { subscription, done } => {
                    match conn.session.subscribe(
                        subscription.filters.clone(),
                        subscription.properties.clone(),
                    ) {
                        Ok(packet_id) => {
                            self.in_flight.subscribes.insert(
                                packet_id,
                                PendingSubscribe {
                                    seq,
                                    subscription,
                                    done,
                                },
                            );
                        }
                        Err(error) => {
                            if let Some(done) = done {
                                let _ = done.send(Err(error.into()));
                            }
                        }
                    }
                }
                Request::Unsubscribe {
                    filters,
                    properties,
                    done,
                } => match conn
                    .session
                    .unsubscribe(filters.clone(), properties.clone())
                {
                    Ok(packet_id) => {
                        self.in_flight.unsubscribes.insert(
                            packet_id,
                            PendingUnsubscribe {
                                seq,
                                filters,
                                properties,
                                done,
                            },
                        );
                    }
                    Err(error) => {
                        let _ = done.send(Err(error.into()));
                    }
                },
            }
        }
    }

    /// Encodes every packet the session wants to send, noting where QoS 0 publishes end in
    /// the byte stream so that their handles complete once those bytes are written.
    fn transmit(&mut self, conn: &mut Connection) {
        let version = conn.session.version();
        let now = Instant::now();
        while let Some(packet) = conn.session.poll_transmit(now) {
            let start = conn.encoded;
            let before = conn.outbound.len();
            if let Err(error) = packet.encode(version, &mut conn.outbound) {
                // Requests are checked before they reach the session, so only a bug gets
                // here; the packet is skipped rather than the connection poisoned.
                tracing::error!("cannot encode {:?}: {error}", packet.packet_type());
                if matches!(&packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce) {
                    if let Some(publish) = self.in_flight.qos0_unsent.pop_front() {
                        let _ = publish.done.send(Err(ClientError::Protocol(error)));
                    }
                }
                continue;
            }
            conn.encoded += (conn.outbound.len() - before) as u64;
            if matches!(&packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce) {
                if let Some(mut publish) = self.in_flight.qos0_unsent.pop_front() {
                    publish.start = start;
                    publish.end = conn.encoded;
                    self.in_flight.qos0_unflushed.push_back(publish);
                }
            }
        }
    }

    /// Takes a command while connected.
    fn accept_online(&mut self, command: Option<Command>, conn: &mut Connection) {
        let (disconnect, done) = match command {
            None => (Disconnect::new(ReasonCode::NORMAL_DISCONNECTION), None),
            Some(Command::Disconnect { disconnect, done }) => (disconnect, Some(done)),
            Some(command) => return self.enqueue(command),
        };
        self.stop = Some(StopRequest { done });
        if let Err(error) = conn.session.disconnect(disconnect) {
            if error != RequestError::Closed {
                // An invalid DISCONNECT (a Session Expiry the CONNECT did not allow) still
                // disconnects, normally.
                tracing::warn!("{error}; disconnecting normally");
                let _ = conn
                    .session
                    .disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
            }
        }
    }

    /// Settles what the connection leaves behind and says how it ended.
    fn end_connection(&mut self, mut conn: Connection, io_error: Option<ClientError>) -> Ended {
        let cause = conn.cause.take().or(io_error);
        let stopping = self.stop.is_some();
        let cause = std::sync::Arc::new(match cause {
            Some(cause) => cause,
            None if stopping => ClientError::Closed,
            None => ClientError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the session closed the connection",
            )),
        });
        let resend = self.in_flight.take_resendable(conn.written, &cause);
        for queued in &resend {
            if matches!(queued.request, Request::Publish { .. }) {
                self.queue_count.readmit();
            }
        }
        self.requests.requeue(resend);
        let state = conn.session.take_state();
        if self.persistent {
            self.session_state = Some(state);
        } else {
            self.abandon(state);
        }
        if stopping {
            return Ended::Stopped;
        }
        match std::sync::Arc::try_unwrap(cause) {
            Ok(cause) => Ended::Lost(cause),
            Err(shared) => Ended::Lost(ClientError::ConnectionLost(shared)),
        }
    }
}

impl Connection {
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
}
