//! The network side of one connection: [`Link`] opens the byte stream for a URL through the
//! transport crate's [`Connector`] (TCP, TLS, WebSocket, WSS or QUIC; the connector keeps TLS
//! session tickets across reconnects) and splits it into the halves the driver reads and
//! writes. MQTT framing is the same on every transport.
//!
//! QUIC multi-stream mode (EMQX-compatible: CONNECT on the control stream, chosen topics on
//! their own data streams) plugs in here: a `Link` keeps the [`QuicClientConnection`] from
//! which data streams are opened, and would carry one read/write pair per stream, with the
//! driver routing each SUBSCRIBE and PUBLISH to its stream. Until the transport offers
//! per-stream framing and its tests, every packet travels on the one stream.

#[cfg(feature = "quic")]
use mquictt_transport::QuicClientConnection;
use mquictt_transport::{BoxStream, Connector, PeerInfo, TransportUrl};
use tokio::io::{ReadHalf, WriteHalf};

use crate::error::ClientError;

/// An open connection to the broker.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) reader: ReadHalf<BoxStream>,
    pub(crate) writer: WriteHalf<BoxStream>,
    pub(crate) peer: PeerInfo,
    /// The QUIC connection, kept open for as long as the link: dropping the last handle of
    /// a quinn connection closes it.
    #[cfg(feature = "quic")]
    pub(crate) quic: Option<QuicClientConnection>,
}

impl Link {
    /// Opens a connection to `url` and completes the transport's handshakes.
    pub(crate) async fn open(connector: Connector, url: TransportUrl) -> Result<Link, ClientError> {
        let connected = connector
            .connect(&url)
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_string(),
                source,
            })?;
        let (reader, writer) = tokio::io::split(connected.stream);
        Ok(Link {
            reader,
            writer,
            peer: connected.peer,
            #[cfg(feature = "quic")]
            quic: connected.quic,
        })
    }
}
