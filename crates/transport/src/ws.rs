//! MQTT over WebSocket (MQTT 5.0 section 6, MQTT 3.1.1 section 6): the server and client
//! handshakes (path check, subprotocol `mqtt`) and [`WsByteStream`], which turns binary
//! WebSocket messages into a plain byte stream so MQTT framing runs on it unchanged. Runs over
//! any byte stream, so WSS is this over the TLS stream; brings no TLS of its own.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};
use tokio_tungstenite::WebSocketStream;

/// The WebSocket subprotocol of MQTT.
pub const MQTT_SUBPROTOCOL: &str = "mqtt";

/// Largest payload put in one WebSocket frame by a single write. "A single WebSocket data
/// frame can contain multiple or partial MQTT Control Packets" [MQTT-6.0.0-2], so splitting a
/// large write is allowed, and it keeps a peer's per-frame limit out of reach.
const MAX_FRAME_PAYLOAD: usize = 64 * 1024;

/// A WebSocket connection used as a byte stream: writes become binary messages, binary
/// messages are read back as bytes, pings are answered, a close frame reads as end of stream.
#[derive(Debug)]
pub struct WsByteStream<S> {
    socket: WebSocketStream<S>,
    /// Bytes of the current message not yet read.
    pending: Bytes,
    /// The peer closed the WebSocket: reads return end of stream.
    read_closed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsByteStream<S> {
    fn new(socket: WebSocketStream<S>) -> Self {
        WsByteStream {
            socket,
            pending: Bytes::new(),
            read_closed: false,
        }
    }

    /// The underlying stream (TCP or TLS).
    pub fn get_ref(&self) -> &S {
        self.socket.get_ref()
    }
}

fn ws_to_io(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(err) => err,
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                Some(Ok(Message::Text(_))) => {
                    // "MQTT Control Packets MUST be sent in WebSocket binary data frames. If
                    // any other type of data frame is received the recipient MUST close the
                    // Network Connection" [MQTT-6.0.0-1].
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket text frame received; MQTT uses binary frames [MQTT-6.0.0-1]",
                    )));
                }
                // tungstenite queues the pong itself and sends it with the next write or read.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.read_closed = true,
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => this.read_closed = true,
                Some(Err(err)) => return Poll::Ready(Err(ws_to_io(err))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        ready!(Pin::new(&mut this.socket).poll_ready(cx)).map_err(ws_to_io)?;
        let n = buf.len().min(MAX_FRAME_PAYLOAD);
        let frame = Bytes::copy_from_slice(buf.get(..n).unwrap_or(buf));
        Pin::new(&mut this.socket)
            .start_send(Message::Binary(frame))
            .map_err(ws_to_io)?;
        // Send now, as a socket would, rather than wait for the caller's flush; if the socket
        // is full the frame stays queued and the next write or flush continues. A failure
        // here shows up again on the next call.
        let _ = Pin::new(&mut this.socket).poll_flush(cx);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket)
            .poll_flush(cx)
            .map_err(ws_to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The close frame first, then the stream below: for WSS that sends TLS close_notify,
        // without which the peer's TLS layer reports a truncated stream.
        ready!(Pin::new(&mut this.socket).poll_close(cx)).map_err(ws_to_io)?;
        Pin::new(this.socket.get_mut()).poll_shutdown(cx)
    }
}

/// Server side of the WebSocket handshake on `stream`: the request path must be `path`
/// (404 otherwise) and the client must offer the `mqtt` subprotocol (400 otherwise), which the
/// response selects.
// The callback's error type is tungstenite's HTTP response; its size is not ours to choose.
#[allow(clippy::result_large_err)]
pub(crate) async fn accept<S>(stream: S, path: &str) -> Result<WsByteStream<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let check = |request: &Request, mut response: Response| {
        if request.uri().path() != path {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                format!("MQTT is served at {path}"),
            ));
        }
        // "The Client MUST include "mqtt" in the list of WebSocket Sub Protocols it offers"
        // [MQTT-6.0.0-3]; "The WebSocket Subprotocol name selected and returned by the Server
        // MUST be "mqtt"" [MQTT-6.0.0-4].
        if !offers_mqtt(request) {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "the Sec-WebSocket-Protocol header must offer `mqtt`".to_owned(),
            ));
        }
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(MQTT_SUBPROTOCOL),
        );
        Ok(response)
    };
    let socket = tokio_tungstenite::accept_hdr_async(stream, check).await?;
    Ok(WsByteStream::new(socket))
}

fn offers_mqtt(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == MQTT_SUBPROTOCOL)
}

fn refusal(status: StatusCode, body: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body));
    *response.status_mut() = status;
    response
}

/// Client side of the WebSocket handshake on `stream` for `uri` (`ws://host:port/path`),
/// offering the `mqtt` subprotocol; tungstenite refuses a response that selects none or
/// another one.
pub(crate) async fn connect<S>(stream: S, uri: &str) -> Result<WsByteStream<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = uri.into_client_request()?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(MQTT_SUBPROTOCOL),
    );
    let (socket, _response) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(WsByteStream::new(socket))
}
