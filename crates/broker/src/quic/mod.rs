//! MQTT over QUIC in the broker, as EMQX does it. A QUIC connection's first client-opened
//! bidirectional stream is served like any connection (single-stream mode); further
//! client-opened bidirectional streams are data streams (multi-stream mode). This module owns
//! accepting them and the rules around them: data-stream bytes wait until the control stream's
//! CONNECT is accepted; every data stream then has its own session machine (own packet
//! identifiers, acknowledgements on the stream of their PUBLISH) and its own transient
//! subscriptions, delivered on that stream only and ended with it; a malformed packet closes
//! only its data stream; the end of the control stream closes the connection (application
//! error 1 unless the client sent DISCONNECT). It also owns the 0-RTT replay policy
//! ([`EarlyDataPolicy`]) and how the QUIC idle timeout follows the MQTT keep alive
//! ([`idle_timeout_for`]). `docs/quic.md` describes the behaviour for users.

use std::sync::Arc;
use std::time::Duration;

use mquictt_transport::{Accepted, BoxStream, QuicConnection};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::broker::{Broker, PeerInfo, Shared};
use crate::connection::{self, Activation, Beside, ControlStream, QuicStreamHooks};

pub(crate) mod early_data;
pub(crate) mod subscriber;

pub use early_data::EarlyDataPolicy;

/// How a QUIC listener's connections are served.
#[derive(Debug, Clone, Default)]
pub struct QuicServing {
    /// Which packets are acted on before the TLS handshake completes. The listener must
    /// accept 0-RTT exactly when [`EarlyDataPolicy::accepts_zero_rtt`] says so.
    pub early_data: EarlyDataPolicy,
    /// The QUIC idle timeout the listener's endpoint uses (see [`idle_timeout_for`]). MQTT 5
    /// clients whose keep alive would outlast it are given a Server Keep Alive that fits;
    /// `None` leaves keep alives alone.
    pub idle_timeout: Option<Duration>,
}

/// The QUIC idle timeout for a listener: `configured`, raised to one and a half times the
/// broker's Server Keep Alive when one is set, so that a client pinging at its keep alive is
/// never cut off by QUIC before MQTT would ([MQTT-3.1.2-24] grants one and a half periods).
pub fn idle_timeout_for(configured: Duration, server_keep_alive: Option<Duration>) -> Duration {
    let keep_alive = server_keep_alive.unwrap_or_default();
    configured.max(keep_alive + keep_alive / 2)
}

impl Broker {
    /// Serves one QUIC connection: `control` is its first client-opened bidirectional stream
    /// (the single stream, or the control stream of multi-stream mode), and every further
    /// client-opened bidirectional stream is served as a data stream. Returns when the control
    /// stream's MQTT connection ended (the QUIC connection is closed by then) or, idle, was
    /// parked with its loop accepting data streams: it then carries on in tasks of the parking
    /// lot's making, as a plain TCP connection does ([`Broker::serve_tcp_connection`]).
    pub async fn serve_quic(
        &self,
        control: BoxStream,
        connection: QuicConnection,
        peer: PeerInfo,
        serving: &QuicServing,
    ) {
        let gate = early_data::EarlyDataGate::for_connection(serving.early_data, &connection);
        let (activation_tx, activation_rx) = oneshot::channel();
        // Data streams are accepted beside the control stream's driver rather than by a task
        // of their own: an idle connection then costs no task at all once parked.
        let data_streams: Beside = Box::pin(accept_data_streams(
            self.shared.clone(),
            connection.clone(),
            activation_rx,
            gate.clone(),
            peer.clone(),
        ));
        let hooks = QuicStreamHooks {
            gate,
            control: Some(ControlStream {
                activation: Some(activation_tx),
                connection,
                idle_timeout: serving.idle_timeout,
            }),
        };
        connection::serve_stream(
            self.shared.clone(),
            control,
            peer,
            Some(hooks),
            Some(data_streams),
        )
        .await;
    }

    /// Serves a connection from a transport listener, whatever its transport, in the task
    /// that awaits this. A QUIC connection from a listener with threads of its own is better
    /// served through [`Self::spawn_accepted`], which runs it on the connection's thread.
    pub async fn serve_accepted(
        &self,
        accepted: Accepted,
        certificate_username: Option<String>,
        serving: &QuicServing,
    ) {
        let peer = peer_of(&accepted, certificate_username);
        match accepted.quic {
            // Boxed: a TCP connection's future need not have room for the QUIC one's.
            Some(connection) => {
                Box::pin(self.serve_quic(accepted.stream, connection, peer, serving)).await
            }
            // Any connection may be parked while idle; a plain TCP socket in the lot's
            // readiness set.
            None => match accepted.stream.into_tcp() {
                Ok(tcp) => self.serve_tcp_connection(tcp, peer).await,
                Err(stream) => self.serve_stream_connection(stream, peer).await,
            },
        }
    }

    /// Serves a connection from a transport listener in a task of its own, whatever its
    /// transport; a QUIC connection from a listener with threads of its own in a task on its
    /// thread ([`QuicConnection::runtime`]). Unlike a task running [`Self::serve_accepted`],
    /// the task holds only the future of its own transport: a QUIC connection's task has no
    /// room for the TCP future and no second allocation for its own (about 4 KiB less per
    /// QUIC connection).
    pub fn spawn_accepted(
        &self,
        accepted: Accepted,
        certificate_username: Option<String>,
        serving: &QuicServing,
    ) -> JoinHandle<()> {
        let peer = peer_of(&accepted, certificate_username);
        let broker = self.clone();
        match accepted.quic {
            Some(connection) => {
                let serving = serving.clone();
                // On the thread quinn drives the connection from, when its listener has
                // threads of its own.
                let runtime = connection
                    .runtime()
                    .cloned()
                    .unwrap_or_else(Handle::current);
                runtime.spawn(async move {
                    broker
                        .serve_quic(accepted.stream, connection, peer, &serving)
                        .await
                })
            }
            // Any connection may be parked while idle, as in `serve_accepted`.
            None => match accepted.stream.into_tcp() {
                Ok(tcp) => {
                    tokio::spawn(async move { broker.serve_tcp_connection(tcp, peer).await })
                }
                Err(stream) => {
                    tokio::spawn(async move { broker.serve_stream_connection(stream, peer).await })
                }
            },
        }
    }
}

/// What the broker knows of the peer of a connection from a transport listener.
fn peer_of(accepted: &Accepted, certificate_username: Option<String>) -> PeerInfo {
    PeerInfo {
        remote_addr: Some(accepted.peer.remote),
        transport: accepted.peer.transport.scheme(),
        certificate_username,
    }
}

/// Accepts the data streams of `connection` for as long as it lives, once the control
/// stream's CONNECT is accepted: until then they wait in quinn, their bytes in QUIC's
/// flow-controlled receive buffer, and if the control stream ends first they are never taken.
async fn accept_data_streams(
    shared: Arc<Shared>,
    connection: QuicConnection,
    activation: oneshot::Receiver<Arc<Activation>>,
    gate: Option<early_data::EarlyDataGate>,
    peer: PeerInfo,
) {
    // Consumed by the wait: an idle connection keeps only the activation itself.
    let Ok(active) = activation.await else {
        // The control stream ended before its CONNECT was accepted.
        return;
    };
    while let Ok(stream) = connection.accept_data_stream().await {
        let stream_id = stream.id();
        tokio::spawn(connection::serve_data_stream(
            shared.clone(),
            stream,
            stream_id,
            peer.clone(),
            active.clone(),
            gate.clone(),
        ));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod idle_timeout_tests {
    use super::*;

    #[test]
    fn the_idle_timeout_covers_one_and_a_half_server_keep_alives() {
        let configured = Duration::from_secs(60);
        assert_eq!(idle_timeout_for(configured, None), configured);
        assert_eq!(
            idle_timeout_for(configured, Some(Duration::from_secs(20))),
            configured
        );
        assert_eq!(
            idle_timeout_for(configured, Some(Duration::from_secs(120))),
            Duration::from_secs(180)
        );
    }
}
