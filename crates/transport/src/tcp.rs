//! Plain TCP: binding a listening socket, connecting to the first reachable address of a list,
//! and the socket options every MQTT-over-TCP connection gets. TLS and WebSocket layer on top
//! of these sockets elsewhere.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Binds a TCP listener.
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Connects to the first address that accepts, returning the last error if none does.
pub(crate) async fn connect(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                configure(&stream)?;
                return Ok(stream);
            }
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// Nagle's algorithm off: MQTT packets are small and latency-sensitive (a PUBACK held back
/// 40 ms by delayed-ACK interplay would dominate a QoS 1 round trip).
pub(crate) fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}
