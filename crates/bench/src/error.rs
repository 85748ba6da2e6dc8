//! The errors of the load generator: what went wrong while connecting, speaking MQTT to the
//! broker under test, starting a broker process for the comparison or writing results. Each
//! message names what the user can check.

use std::path::PathBuf;

use mquictt_protocol::{ProtocolError, ReasonCode};
use mquictt_transport::TransportError;

/// Why a benchmark, or one client of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Opening the transport connection failed.
    #[error("connect: {0}")]
    Transport(#[from] TransportError),
    /// A socket operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The broker sent bytes that are not valid MQTT, or we could not encode a packet.
    #[error("MQTT protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The broker closed the connection.
    #[error("the broker closed the connection")]
    Closed,
    /// The broker refused the CONNECT.
    #[error("CONNACK refused the connection: {0:?}")]
    Refused(ReasonCode),
    /// The broker refused a subscription.
    #[error("SUBACK refused the subscription to `{topic}`: {reason:?}")]
    SubscribeRefused {
        /// The topic filter.
        topic: String,
        /// The SUBACK reason code.
        reason: ReasonCode,
    },
    /// The broker sent a packet the bench did not expect at this point.
    #[error("unexpected {0} from the broker")]
    Unexpected(&'static str),
    /// A step took longer than allowed.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The load description is inconsistent.
    #[error("invalid benchmark: {0}")]
    InvalidSpec(String),
    /// A broker process for the comparison could not be started or did not come up.
    #[error("broker `{program}`: {message}")]
    BrokerProcess {
        /// The program that was run.
        program: PathBuf,
        /// What happened.
        message: String,
    },
    /// The comparison's TLS certificate could not be made.
    #[error("test certificate: {0}")]
    Certificates(String),
    /// A chart could not be drawn.
    #[error(transparent)]
    Plot(#[from] mquictt_charts::ChartError),
    /// Writing a result file failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
