//! The Prometheus endpoint: a deliberately tiny HTTP/1.1 responder that answers `GET /metrics`
//! with the broker's counters and anything else with 404. It reads at most one request head
//! per connection and closes, so it needs no HTTP library.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mquictt_broker::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A request head larger than this is refused: a scraper sends a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A client that has not sent its request head by then is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the endpoint.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves scrapes until `stop` turns true.
pub async fn serve(listener: TcpListener, broker: Broker, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let broker = broker.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &broker)).await;
                });
            }
            _ = stop.changed() => return,
        }
    }
}

async fn answer(mut stream: TcpStream, broker: &Broker) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if head.len() > MAX_REQUEST_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let body = broker.render_prometheus();
            respond(&mut stream, "200 OK", &body).await
        }
        (Some(b"GET"), _) => respond(&mut stream, "404 Not Found", "try /metrics\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "").await,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
