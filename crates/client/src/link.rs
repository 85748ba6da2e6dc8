//! The network side of one connection: [`Link`] opens the byte stream for a URL through the
//! transport crate's [`Connector`] (TCP, TLS, WebSocket, WSS or QUIC; the connector keeps TLS
//! session tickets across reconnects). MQTT framing is the same on every transport. On a QUIC
//! connection the stream is the control stream, and [`DataStreamOpener`] opens further
//! bidirectional streams on the same connection: the data streams of EMQX-compatible
//! multi-stream mode, which need no header of their own.

use std::io;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
#[cfg(feature = "quic")]
use mquictt_transport::QuicClientConnection;
use mquictt_transport::{BoxStream, Connector, PeerInfo, TransportUrl};

use crate::error::ClientError;

/// An open connection to the broker.
#[derive(Debug)]
pub(crate) struct Link {
    /// The single stream, or the control stream of a QUIC connection.
    pub(crate) stream: BoxStream,
    pub(crate) peer: PeerInfo,
    /// Opens data streams; `None` on transports other than QUIC.
    pub(crate) data_streams: Option<DataStreamOpener>,
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
        #[cfg(feature = "quic")]
        let data_streams = connected.quic.map(|quic| DataStreamOpener { quic });
        #[cfg(not(feature = "quic"))]
        let data_streams = None;
        Ok(Link {
            stream: connected.stream,
            peer: connected.peer,
            data_streams,
        })
    }
}

/// Opens data streams on a QUIC connection. Holding it keeps the connection open: dropping
/// the last handle of a quinn connection closes it.
#[derive(Debug, Clone)]
pub(crate) struct DataStreamOpener {
    #[cfg(feature = "quic")]
    quic: QuicClientConnection,
}

impl DataStreamOpener {
    /// Opens the next client-initiated bidirectional stream; the broker learns of it with
    /// its first bytes. Waits while the broker's stream limit is reached; fails when the
    /// connection is closed.
    pub(crate) fn open(&self) -> BoxFuture<'static, io::Result<BoxStream>> {
        #[cfg(feature = "quic")]
        {
            let quic = self.quic.clone();
            async move {
                let stream = quic.open_data_stream().await?;
                Ok(Box::new(stream) as BoxStream)
            }
            .boxed()
        }
        // Without QUIC no link carries an opener, so this is never reached; answer anyway.
        #[cfg(not(feature = "quic"))]
        async {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this build has no QUIC support",
            ))
        }
        .boxed()
    }
}
