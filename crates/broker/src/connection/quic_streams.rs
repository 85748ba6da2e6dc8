//! The connection driver's part in MQTT over QUIC. A control stream (or the single stream) is
//! driven like any connection, plus: packets the 0-RTT replay policy does not admit wait for
//! the handshake; an accepted CONNECT activates the connection's data streams; a 5.0 client
//! whose keep alive would outlast the QUIC idle timeout is told a shorter Server Keep Alive;
//! and when the control stream ends, the whole QUIC connection closes (application error 1
//! unless the client said DISCONNECT). A data stream is driven by the same driver with a
//! machine from `ServerSession::for_data_stream` and a transient session of its own, so its
//! subscriptions, acknowledgements and packet identifiers stay on it. Accepting streams is
//! `crate::quic`'s job; this file only adapts the driver.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mquictt_protocol::session::{DataStreamTemplate, ServerSession};
use mquictt_protocol::{Connect, Decoder, Packet, Properties, ProtocolVersion};
use mquictt_transport::quinn::VarInt;
use mquictt_transport::QuicConnection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use super::{Attached, Driver};
use crate::broker::{PeerInfo, Shared};
use crate::limits::TokenBucket;
use crate::message::ClientId;
use crate::quic::early_data::EarlyDataGate;
use crate::quic::subscriber::data_stream_subscriber;
use crate::registry::{ConnectionId, Departure};
use crate::router::{ConnectionSignal, SignalHandle};

/// QUIC application error code of a connection closed after a DISCONNECT.
const NO_ERROR_CODE: u32 = 0;

/// What a stream of a QUIC connection adds to the driver.
#[derive(Debug)]
pub(crate) struct QuicStreamHooks {
    /// The 0-RTT replay policy, while the handshake may still be running.
    pub(crate) gate: Option<EarlyDataGate>,
    /// Set on the control stream (or single stream) only.
    pub(crate) control: Option<ControlStream>,
}

/// The control stream's duties towards its connection.
#[derive(Debug)]
pub(crate) struct ControlStream {
    /// Receives the activation once CONNECT is accepted; data streams wait for it. Taken
    /// when sent.
    pub(crate) activation: Option<oneshot::Sender<Arc<Activation>>>,
    /// The connection, closed when the control stream ends.
    pub(crate) connection: QuicConnection,
    /// The server's QUIC idle timeout, which the MQTT keep alive must fit in.
    pub(crate) idle_timeout: Option<Duration>,
}

/// What a data stream needs from its accepted control stream.
#[derive(Debug)]
pub(crate) struct Activation {
    /// The client.
    pub(crate) owner: ClientId,
    /// The user name the client authenticated as: its data streams act under it.
    pub(crate) username: Option<Box<str>>,
    /// The control stream's connection identifier, part of every data stream's key.
    pub(crate) connection: ConnectionId,
    /// Version and limits every data stream's machine inherits.
    pub(crate) template: DataStreamTemplate,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Whether the 0-RTT replay policy makes `packet` wait for the handshake.
    pub(super) fn must_hold(&self, packet: &Packet) -> bool {
        self.quic
            .as_ref()
            .and_then(|quic| quic.gate.as_ref())
            .is_some_and(|gate| gate.must_hold(packet))
    }

    /// The handshake is over: acts on the held packet and what followed it if it completed;
    /// returns false (the connection ends, nothing held is acted on) if it failed.
    pub(super) fn release_held(&mut self, handshake_complete: bool) -> bool {
        let Some(packet) = self.held.take() else {
            return true;
        };
        if !handshake_complete {
            tracing::debug!(peer = ?self.peer.remote_addr, "QUIC handshake failed; packets held from 0-RTT dropped");
            return false;
        }
        if let Some(quic) = &mut self.quic {
            // Complete: nothing can be a replay any more.
            quic.gate = None;
        }
        if let Err(e) = self.session.handle_packet(packet, Instant::now()) {
            tracing::debug!(peer = ?self.peer.remote_addr, error = %e, "protocol error");
            return true;
        }
        self.decode_input();
        true
    }

    /// After CONNECT was accepted on a control stream: lets the data streams start.
    pub(super) fn announce_data_streams(&mut self) {
        let (Some(control), Some(attached)) = (
            self.quic.as_mut().and_then(|q| q.control.as_mut()),
            &self.attached,
        ) else {
            return;
        };
        let Some(template) = self.session.data_stream_template() else {
            return;
        };
        let Some(activation) = control.activation.take() else {
            return;
        };
        // Fails only if the loop accepting data streams has ended: nobody is left to tell.
        let _ = activation.send(Arc::new(Activation {
            owner: attached.client_id.clone(),
            username: attached.username.clone(),
            connection: attached.connection,
            template,
        }));
    }

    /// Lowers the keep alive of a 5.0 client with Server Keep Alive when one and a half keep
    /// alive periods would outlast the QUIC idle timeout: the QUIC connection would otherwise
    /// end before MQTT notices anything (3.2.2.3.14). A 3.1.1 client cannot be told; it keeps
    /// the connection open with QUIC PINGs, as QUIC clients do.
    pub(super) fn fit_keep_alive(&self, connect: &Connect, properties: &mut Properties) {
        let Some(idle) = self
            .quic
            .as_ref()
            .and_then(|q| q.control.as_ref())
            .and_then(|c| c.idle_timeout)
        else {
            return;
        };
        if connect.protocol != ProtocolVersion::V5 {
            return;
        }
        let fitting = u16::try_from((idle.as_secs() * 2 / 3).max(1)).unwrap_or(u16::MAX);
        let requested = properties.server_keep_alive.unwrap_or(connect.keep_alive);
        if requested == 0 || requested > fitting {
            properties.server_keep_alive = Some(fitting);
        }
    }

    /// When a control stream ends, so does its connection and every data stream on it.
    pub(super) fn close_quic_connection(&self) {
        let Some(control) = self.quic.as_ref().and_then(|q| q.control.as_ref()) else {
            return;
        };
        if self.client_departure.is_some() {
            control
                .connection
                .connection()
                .close(VarInt::from_u32(NO_ERROR_CODE), b"disconnected");
        } else {
            control.connection.close_for_lost_control_stream();
        }
    }
}

/// Serves one data stream of an accepted connection until it or its connection ends.
pub(crate) async fn serve_data_stream<S>(
    shared: Arc<Shared>,
    stream: S,
    stream_id: u64,
    peer: PeerInfo,
    activation: Arc<Activation>,
    gate: Option<EarlyDataGate>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if *shared.shutting_down.borrow() {
        return;
    }
    let now = Instant::now();
    let subscriber = data_stream_subscriber(&activation.owner, activation.connection, stream_id);
    let signal = Arc::new(ConnectionSignal::default());
    // A transient session of its own: clean, expiring with the stream, no will.
    let attachment =
        shared
            .router()
            .attach(&subscriber, true, Duration::ZERO, None, signal.clone(), now);
    let template = &activation.template;
    let session = ServerSession::for_data_stream(template, now);
    let mut decoder = Decoder::new(shared.config.max_packet_size);
    decoder.set_version(template.version());
    let shared_publish_rate = shared.config.publish_rate;
    let mut driver = Driver {
        decoder,
        shared,
        stream,
        peer,
        session,
        read_buf: BytesMut::new(),
        write_buf: BytesMut::new(),
        attached: Some(Attached {
            client_id: subscriber,
            owner: activation.owner.clone(),
            username: activation.username.clone(),
            // Re-authentication belongs to the control stream.
            auth_method: None,
            connection: attachment.connection,
            version: template.version(),
            expiry: Duration::ZERO,
            signal: SignalHandle::new(signal),
            // A data stream's session ends with the stream: nothing of it is persisted.
            persistent: false,
            exchanges: super::Exchanges::default(),
        }),
        slot: None,
        // The stream's session ends with it whatever the reason: no will is involved.
        client_departure: Some(Departure::Normal),
        // Admitted with its control stream: no pending slot, no CONNECT deadline, no AUTH.
        pending: None,
        connect_deadline: now,
        auth: None,
        // The publish rate applies to each stream on its own.
        publish_bucket: shared_publish_rate.map(|rate| TokenBucket::new(rate, now)),
        throttled_until: None,
        paused: None,
        unrouted: None,
        deferred: VecDeque::new(),
        barrier: None,
        quic: Some(Box::new(QuicStreamHooks {
            gate,
            control: None,
        })),
        held: None,
        deliver_due: true,
        more_queued: false,
        answers_wait_for: None,
    };
    driver.run(false).await;
    Box::pin(driver.finish()).await;
}
