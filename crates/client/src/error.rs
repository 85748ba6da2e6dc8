//! The client's error type, [`ClientError`]: what went wrong, said so that the reader knows
//! what to do next (start a broker, pass a CA file, check the credentials, raise a limit).
//! Owns the wording and the hints; decides nothing about reconnecting beyond
//! [`ClientError::is_permanent`].

use std::io;
use std::sync::Arc;

use mquictt_protocol::session::{RequestError, SessionError};
use mquictt_protocol::{ProtocolError, ReasonCode, StringError, TopicError};
use mquictt_transport::{TransportError, UrlError};
use thiserror::Error;

/// Why a client operation failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The broker URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// An option has a value MQTT cannot carry.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option, as the builder method names it.
        option: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A topic name or filter is not valid.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A string is not a valid MQTT UTF-8 string.
    #[error(transparent)]
    String(#[from] StringError),
    /// The network connection (TCP, TLS, WebSocket or QUIC) could not be opened.
    #[error("cannot connect to {url}: {source}{}", connect_hint(.source))]
    Connect {
        /// The broker URL.
        url: String,
        /// What the transport reported.
        source: TransportError,
    },
    /// The broker answered CONNECT with a refusal.
    #[error("the broker refused the connection: {reason_code}{}{}", reason_suffix(.reason_string), refusal_hint(*.reason_code))]
    Refused {
        /// The CONNACK reason code (MQTT 3.1.1 return codes are mapped to their MQTT 5 names).
        reason_code: ReasonCode,
        /// The broker's Reason String (MQTT 5), if it sent one.
        reason_string: Option<String>,
    },
    /// The broker closed the connection with DISCONNECT (MQTT 5).
    #[error("the broker disconnected: {reason_code}{}", reason_suffix(.reason_string))]
    ServerDisconnected {
        /// The DISCONNECT reason code.
        reason_code: ReasonCode,
        /// The broker's Reason String, if it sent one.
        reason_string: Option<String>,
    },
    /// Reading from or writing to the connection failed, or the broker closed it.
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    /// The broker sent bytes that are not a valid MQTT packet.
    #[error("the broker sent a malformed packet: {0}")]
    Protocol(#[from] ProtocolError),
    /// The broker broke the protocol (or did not answer in time).
    #[error("protocol error: {0}")]
    Session(#[from] SessionError),
    /// The session refused the request (QoS above the broker's maximum, packet too large, ...).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The publish was refused because the queue of publishes waiting for the connection is
    /// full.
    #[error("{limit} publishes are already waiting for the connection to the broker; wait for earlier ones to complete, or raise the offline queue limit")]
    OfflineQueueFull {
        /// The configured limit.
        limit: usize,
    },
    /// The connection ended and the client will not reconnect (reconnect is off, or the
    /// refusal is permanent); the request cannot complete.
    #[error("connection lost and not reconnecting: {0}")]
    ConnectionLost(Arc<ClientError>),
    /// Data streams (QUIC multi-stream mode) were asked for on a connection that is not QUIC.
    #[error("data streams need MQTT over QUIC (a quic:// URL); {url} carries a single stream")]
    DataStreamsNeedQuic {
        /// The broker URL.
        url: String,
    },
    /// The client was disconnected (or every `Client` handle dropped) before the request
    /// completed.
    #[error("the client is disconnected")]
    Closed,
}

impl ClientError {
    /// Whether retrying the same connection cannot help: the broker refused the credentials,
    /// the client identifier or the protocol version, or another client took the session over.
    pub fn is_permanent(&self) -> bool {
        match self {
            ClientError::Refused { reason_code, .. } => matches!(
                reason_code,
                ReasonCode::UnsupportedProtocolVersion
                    | ReasonCode::ClientIdentifierNotValid
                    | ReasonCode::BadUserNameOrPassword
                    | ReasonCode::NotAuthorized
                    | ReasonCode::Banned
                    | ReasonCode::BadAuthenticationMethod
            ),
            // Two clients with one identifier would otherwise take the session from each other
            // forever.
            ClientError::ServerDisconnected { reason_code, .. } => {
                *reason_code == ReasonCode::SessionTakenOver
            }
            ClientError::Url(_)
            | ClientError::InvalidOption { .. }
            | ClientError::Topic(_)
            | ClientError::String(_)
            | ClientError::DataStreamsNeedQuic { .. } => true,
            // A bad URL, certificate or TLS setting, or a transport this build lacks.
            ClientError::Connect { source, .. } => source.is_configuration(),
            _ => false,
        }
    }
}

fn reason_suffix(reason_string: &Option<String>) -> String {
    match reason_string {
        Some(text) => format!(" ({text})"),
        None => String::new(),
    }
}

fn refusal_hint(reason_code: ReasonCode) -> &'static str {
    match reason_code {
        ReasonCode::BadUserNameOrPassword | ReasonCode::NotAuthorized => {
            "; check the user name and password (-u/-P)"
        }
        ReasonCode::UnsupportedProtocolVersion => {
            "; the broker does not speak this MQTT version, try the other one (-V 311 or -V 5)"
        }
        ReasonCode::ClientIdentifierNotValid => {
            "; choose another client identifier (-i), or none to have one assigned"
        }
        ReasonCode::ServerUnavailable | ReasonCode::ServerBusy => {
            "; the broker is unavailable, try again later"
        }
        _ => "",
    }
}

fn connect_hint(source: &TransportError) -> &'static str {
    match source {
        TransportError::Io(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            "; is a broker listening there? (`mquictt broker` starts one)"
        }
        TransportError::NoTrustedCa => "; pass the broker's CA certificate with --cafile",
        TransportError::Timeout(_) => "; check the host, the port and any firewall on the way",
        TransportError::Resolve { .. } | TransportError::NoAddress(_) => "; check the host name",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let refused = ClientError::Refused {
            reason_code: ReasonCode::BadUserNameOrPassword,
            reason_string: Some("no such user".into()),
        };
        let text = refused.to_string();
        assert!(
            text.contains("no such user") && text.contains("-u/-P"),
            "{text}"
        );
        assert!(refused.is_permanent());

        let connect = ClientError::Connect {
            url: "mqtt://127.0.0.1:1".into(),
            source: TransportError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)),
        };
        let text = connect.to_string();
        assert!(text.contains("mquictt broker"), "{text}");
        assert!(!connect.is_permanent());

        let busy = ClientError::Refused {
            reason_code: ReasonCode::ServerBusy,
            reason_string: None,
        };
        assert!(!busy.is_permanent());
        assert!(ClientError::OfflineQueueFull { limit: 3 }
            .to_string()
            .contains("offline queue limit"));
    }

    #[test]
    fn a_transport_left_out_of_the_build_is_a_permanent_error_naming_the_feature() {
        let error = ClientError::Connect {
            url: "quic://127.0.0.1:14567".into(),
            source: TransportError::NotBuiltIn {
                kind: mquictt_transport::TransportKind::Quic,
                features: "quic",
            },
        };
        assert!(error.is_permanent());
        let text = error.to_string();
        assert!(
            text.contains("no QUIC support; rebuild with --features quic"),
            "{text}"
        );
    }
}
