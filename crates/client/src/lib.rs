//! An async MQTT 3.1.1 and 5.0 client on tokio, built on the sans-IO session machine of
//! `mquictt-protocol` and the transports of `mquictt-transport`: one URL selects TCP
//! (`mqtt://`), TLS (`mqtts://`), WebSocket (`ws://`, `wss://`) or QUIC (`quic://`).
//! TCP is always built in; the Cargo features `tls`, `ws` and `quic` (all on by default, and
//! forwarded to the transport crate) bring the others, so a device build carries only what
//! it uses. A URL whose transport was left out fails to connect with a permanent error that
//! names the feature. This crate never depends on the broker.
//!
//! [`Client::connect`] opens the connection and spawns its driver task; the [`Client`] sends
//! requests, [`Messages`] yields what the subscriptions receive. A publish returns a
//! [`PublishHandle`] that completes when the broker acknowledged it (QoS 1 and 2, with the
//! packet identifier and reason code) or when it was written (QoS 0). A lost connection is
//! re-opened with exponential backoff and jitter ([`ReconnectPolicy`]); a persistent session
//! (MQTT 5 Session Expiry, or 3.1.1 Clean Session 0) is resumed, unacknowledged messages are
//! re-sent, and subscriptions are made again when the broker lost the session. Publishes
//! made while disconnected wait in a bounded offline queue.
//!
//! Over QUIC the client speaks EMQX-compatible multi-stream MQTT when asked to:
//! [`Client::data_stream`] opens a [`DataStream`], a QUIC stream of its own on the same
//! connection for the publishes and subscriptions made through it. Its subscriptions'
//! messages arrive on its own [`Messages`] and are acknowledged on that stream; its packet
//! identifiers, Receive Maximum window and topic aliases are its own. Because QUIC orders
//! bytes per stream only, a lost packet, a backlog or an application that does not read one
//! stream does not delay the others. Everything made through the [`Client`] itself travels on
//! the control stream (the first one, which also carries CONNECT and the keep alive), so a
//! client that opens no data stream is an ordinary single-stream MQTT-over-QUIC client. After
//! a reconnect every data stream is opened again and its subscriptions are made again. On
//! other transports `data_stream` fails with [`ClientError::DataStreamsNeedQuic`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mquictt_client::ClientError> {
//! use mquictt_client::{Client, ClientOptions, Message, QoS, Subscription};
//!
//! let options = ClientOptions::new("mqtt://127.0.0.1")?.client_id("sensor-1");
//! let (client, mut messages) = Client::connect(options).await?;
//! client.subscribe(Subscription::new("sensors/#", QoS::AtLeastOnce)?).await?;
//! let done = client.publish(Message::new("sensors/1/temp", "21.5")?.qos(QoS::AtLeastOnce))?;
//! let outcome = done.await?;
//! println!("acknowledged as {:?}: {}", outcome.packet_id, outcome.reason_code);
//! while let Some(message) = messages.recv().await {
//!     println!("{} {:?}", message.topic, message.payload);
//! }
//! # Ok(()) }
//! ```
//!
//! Two topics on two QUIC streams, so that a video backlog never delays an alarm:
//!
//! ```no_run
//! # async fn demo() -> Result<(), mquictt_client::ClientError> {
//! use mquictt_client::{Client, ClientOptions, QoS, Subscription};
//!
//! let (client, _control_messages) = Client::connect(ClientOptions::new("quic://127.0.0.1")?).await?;
//! let (video, mut frames) = client.data_stream()?;
//! let (alarms, mut alarm_messages) = client.data_stream()?;
//! video.subscribe(Subscription::new("camera/+/frames", QoS::AtMostOnce)?).await?;
//! alarms.subscribe(Subscription::new("alarms/#", QoS::AtLeastOnce)?).await?;
//! tokio::spawn(async move { while let Some(_frame) = frames.recv().await { /* slow work */ } });
//! while let Some(alarm) = alarm_messages.recv().await {
//!     println!("alarm on {}", alarm.topic);
//! }
//! # Ok(()) }
//! ```

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backoff;
mod client;
mod connection;
mod data_stream;
mod driver;
mod error;
mod lane;
mod link;
mod message;
mod options;
mod pending;
mod stream_turn;
mod subscriptions;
mod wire;

pub use backoff::{Backoff, ReconnectPolicy};
pub use client::{Client, ConnectionStatus, Messages, PublishHandle};
pub use data_stream::DataStream;
pub use error::ClientError;
pub use message::{Message, PublishOutcome, SubscribeOutcome, Subscription, UnsubscribeOutcome};
pub use options::ClientOptions;

/// The protocol types the API speaks, re-exported so users name the same version.
pub use mquictt_protocol::session::ConnectionInfo;
pub use mquictt_protocol::{
    Disconnect, PacketId, Properties, ProtocolVersion, QoS, ReasonCode, RetainHandling,
    SubscriptionOptions, TopicFilter, TopicName,
};
/// The range of QUIC datagram ceilings ([`ClientOptions::quic_max_udp_payload`]).
pub use mquictt_transport::quic::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};
/// TLS and QUIC settings of the transport layer.
pub use mquictt_transport::{
    CertError, ClientTlsSettings, QuicClientOptions, TlsIdentity, TransportUrl,
};
