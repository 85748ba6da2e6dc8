//! Input of one connection: reading what is ready, decoding it into the session, and
//! answering input the codec refuses as the protocol version allows before closing. Reading
//! stops while the client is throttled or its publishers are paused (back-pressure); what
//! was read then waits in the buffer until the pause ends.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use mquictt_protocol::{
    ConnAck, Disconnect, Packet, Properties, ProtocolError, ProtocolVersion, ReasonCode,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{read, Driver};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Reads and decodes whatever input is ready now, without waiting for more.
    pub(super) async fn take_ready_input(&mut self) {
        while !self.session.is_closed() {
            let read = std::future::poll_fn(|cx| {
                read::poll_read_into(&mut self.stream, cx, &mut self.read_buf)
            });
            // A zero timeout polls the read once: ready data is taken, nothing is awaited.
            let read = tokio::time::timeout(Duration::ZERO, read).await;
            match read {
                Ok(Ok(n)) if n > 0 => {
                    self.shared.metrics.bytes_received.add(n as u64);
                    self.decode_input();
                }
                _ => return,
            }
        }
    }

    /// Ends a back-pressure pause: what was already read is decoded, then reading resumes.
    pub(super) fn resume(&mut self) {
        self.paused = None;
        self.decode_input();
    }

    /// Decodes every complete packet in the read buffer into the session, unless the client
    /// is throttled or paused.
    pub(super) fn decode_input(&mut self) {
        loop {
            if self.session.is_closed() || self.throttled_until.is_some() || self.paused.is_some() {
                return;
            }
            match self.decoder.decode(&mut self.read_buf) {
                Ok(None) => {
                    if self.read_buf.is_empty() {
                        // Lets go of the storage the decoded packets were cut from, so an
                        // idle connection keeps none of it.
                        self.read_buf = BytesMut::new();
                    }
                    return;
                }
                Ok(Some(packet)) => {
                    if self.must_hold(&packet) {
                        self.held = Some(packet);
                        return;
                    }
                    let now = Instant::now();
                    if matches!(packet, Packet::Publish(_)) && !self.within_publish_rate(now) {
                        return;
                    }
                    if let Err(e) = self.session.handle_packet(packet, now) {
                        tracing::debug!(peer = ?self.peer.remote_addr, error = %e, conformance = ?e.conformance(), "protocol error");
                        return;
                    }
                }
                Err(e) => {
                    self.on_malformed(&e);
                    return;
                }
            }
        }
    }

    /// The codec refused the input: answer as the protocol version allows, then close.
    fn on_malformed(&mut self, error: &ProtocolError) {
        tracing::debug!(peer = ?self.peer.remote_addr, error = %error, conformance = ?error.conformance(), "malformed input");
        let reason = error.reason_code();
        if self.session.is_connected() {
            // 5.0: DISCONNECT with the reason; 3.1.1: the session just closes [MQTT-4.8.0-1].
            // A second CONNECT naming an unknown protocol level is reported by the codec as
            // 0x84, which only CONNACK may carry; once connected it is a Protocol Error
            // [MQTT-3.1.0-2] (found by the server_session fuzz target).
            let reason = match error {
                ProtocolError::UnsupportedProtocol { .. } => ReasonCode::ProtocolError,
                _ => reason,
            };
            let _ = self.session.disconnect(Disconnect::new(reason));
            return;
        }
        if self.session.version().is_none() {
            if let (Some(ProtocolVersion::V5), false) = (
                self.decoder.version(),
                matches!(error, ProtocolError::UnsupportedProtocol { .. }),
            ) {
                // A 5.0 CONNECT that breaks the rules: "the Server MAY send a CONNACK with a
                // Reason Code of 0x80 or greater ... and MUST close the Network Connection"
                // (3.1.4); 3.1.1 only closes [MQTT-3.1.4-1].
                self.queue_raw(
                    &Packet::ConnAck(ConnAck {
                        session_present: false,
                        reason_code: reason,
                        properties: Properties::default(),
                    }),
                    ProtocolVersion::V5,
                );
            } else if let ProtocolError::UnsupportedProtocol { .. } = error {
                // "The Server MUST respond to the CONNECT Packet with a CONNACK return code
                // 0x01 (unacceptable protocol level) and then disconnect the Client if the
                // Protocol Level is not supported by the Server" [MQTT-3.1.2-2]. The client's
                // version is unknown, so the answer uses the 3.1.1 layout every version reads.
                self.queue_raw(
                    &Packet::ConnAck(ConnAck {
                        session_present: false,
                        reason_code: ReasonCode::UnsupportedProtocolVersion,
                        properties: Properties::default(),
                    }),
                    ProtocolVersion::V3_1_1,
                );
            }
        }
        let _ = self.session.disconnect(Disconnect::new(reason));
    }
}
