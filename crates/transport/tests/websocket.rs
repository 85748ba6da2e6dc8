//! MQTT over WebSocket: the `mqtt` subprotocol is negotiated [MQTT-6.0.0-3], [MQTT-6.0.0-4],
//! a request for another path is refused, a client offering no `mqtt` is refused, and a text
//! frame is a read error [MQTT-6.0.0-1].

mod common;

use std::time::Duration;

use common::{bind, url_for, Fixture};
use futures_util::{SinkExt, StreamExt};
use mquictt_transport::{Connector, ServerTlsSettings, TransportError, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn raw_handshake(
    port: u16,
    path: &str,
    subprotocol: Option<&str>,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<TcpStream>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    if let Some(protocol) = subprotocol {
        request.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocol).unwrap(),
        );
    }
    tokio_tungstenite::client_async(request, socket).await
}

#[tokio::test]
async fn the_mqtt_subprotocol_is_selected() {
    let mut listener = bind(TransportKind::Ws, &ServerTlsSettings::default()).await;
    let port = listener.local_addr().port();
    let (mut client, response) = raw_handshake(port, "/mqtt", Some("mqttv3.1, mqtt"))
        .await
        .unwrap();
    assert_eq!(
        response.headers().get(header::SEC_WEBSOCKET_PROTOCOL),
        Some(&HeaderValue::from_static("mqtt"))
    );
    // Binary messages are bytes on the server's stream, in order, whatever their split.
    client
        .send(Message::binary(vec![0x10, 0x02]))
        .await
        .unwrap();
    client
        .send(Message::binary(vec![0x00, 0x04]))
        .await
        .unwrap();
    let mut accepted = listener.accept().await.unwrap();
    let mut bytes = [0u8; 4];
    accepted.stream.read_exact(&mut bytes).await.unwrap();
    assert_eq!(bytes, [0x10, 0x02, 0x00, 0x04]);
    // Bytes written on the server arrive as binary messages.
    accepted
        .stream
        .write_all(&[0x20, 0x02, 0, 0])
        .await
        .unwrap();
    accepted.stream.flush().await.unwrap();
    let message = tokio::time::timeout(TIMEOUT, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(message, Message::binary(vec![0x20, 0x02, 0, 0]));
}

#[tokio::test]
async fn a_client_not_offering_mqtt_is_refused() {
    let listener = bind(TransportKind::Ws, &ServerTlsSettings::default()).await;
    let port = listener.local_addr().port();
    for offered in [None, Some("chat")] {
        match raw_handshake(port, "/mqtt", offered).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{offered:?}")
            }
            other => panic!("{offered:?}: expected HTTP 400, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_wrong_path_is_refused() {
    let fixture = Fixture::new();
    for kind in [TransportKind::Ws, TransportKind::Wss] {
        let listener = bind(kind, &fixture.server_tls()).await;
        let mut url = url_for(&listener, true);
        url.path = "/not-mqtt".to_owned();
        let connector = Connector::new(&fixture.client_tls()).unwrap();
        let err = tokio::time::timeout(TIMEOUT, connector.connect(&url))
            .await
            .unwrap()
            .unwrap_err();
        match err {
            TransportError::WebSocket(ws) => match *ws {
                WsError::Http(response) => assert_eq!(response.status(), StatusCode::NOT_FOUND),
                other => panic!("{kind}: expected HTTP 404, got {other}"),
            },
            other => panic!("{kind}: expected a WebSocket error, got {other}"),
        }
    }
}

#[tokio::test]
async fn a_custom_path_is_served() {
    let url = mquictt_transport::ListenUrl::parse("ws://127.0.0.1:0/broker/ws").unwrap();
    let mut listener = mquictt_transport::Listener::bind(&url, &ServerTlsSettings::default())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let target =
        mquictt_transport::TransportUrl::parse(&format!("ws://127.0.0.1:{port}/broker/ws"))
            .unwrap();
    let connector = Connector::new(&Default::default()).unwrap();
    let mut connected = connector.connect(&target).await.unwrap();
    connected.stream.write_all(b"x").await.unwrap();
    connected.stream.flush().await.unwrap();
    let mut accepted = listener.accept().await.unwrap();
    let mut byte = [0u8; 1];
    accepted.stream.read_exact(&mut byte).await.unwrap();
    assert_eq!(&byte, b"x");
}

#[tokio::test]
async fn a_text_frame_is_a_read_error() {
    let mut listener = bind(TransportKind::Ws, &ServerTlsSettings::default()).await;
    let port = listener.local_addr().port();
    let (mut client, _) = raw_handshake(port, "/mqtt", Some("mqtt")).await.unwrap();
    client.send(Message::text("CONNECT")).await.unwrap();
    let mut accepted = listener.accept().await.unwrap();
    let mut buf = [0u8; 16];
    let err = accepted.stream.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("MQTT-6.0.0-1"), "{err}");
}
