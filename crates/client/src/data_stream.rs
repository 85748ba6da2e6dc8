//! [`DataStream`]: the application's handle on one data stream of a multi-stream QUIC
//! connection, made by [`Client::data_stream`]. It sends the same requests as [`Client`],
//! tagged with its lane, and owns the stream's lifetime: the stream stays open while a clone
//! of the handle, its [`Messages`](crate::Messages) or one of its unfinished
//! [`PublishHandle`]s lives, and the driver closes it when the last of them is dropped.

use std::sync::Arc;

use mquictt_protocol::{Properties, TopicFilter};
use tokio::sync::mpsc;

use crate::client::{parse_filters, Client, Command, PublishHandle};
use crate::error::ClientError;
use crate::lane::LaneId;
use crate::message::{Message, SubscribeOutcome, Subscription, UnsubscribeOutcome};

/// One data stream of a multi-stream MQTT-over-QUIC connection (EMQX-compatible): a QUIC
/// stream of its own for the publishes, subscriptions and acknowledgements made through it.
///
/// - A subscription made here is delivered here only, on this stream's
///   [`Messages`](crate::Messages); a message published here is acknowledged here.
/// - Packet identifiers, the Receive Maximum window and topic aliases are per stream: two
///   streams may both have a publish with packet identifier 1 in flight.
/// - QUIC orders bytes per stream, so a lost packet, a large backlog or a consumer that does
///   not read on one stream does not hold up another. Across streams there is no order.
/// - After a reconnect the stream is opened again and its subscriptions are made again (the
///   broker never keeps a data stream's subscriptions in the session). Publishes the broker
///   had not acknowledged are sent again as new messages, as for a session that was not
///   resumed: QoS 1 and 2 messages arrive at least once.
///
/// Clones share the stream. It is closed when every clone, its `Messages` and its
/// unfinished publish handles are dropped: the broker then removes its subscriptions.
/// Requests still queued for it fail with [`ClientError::Closed`].
#[derive(Debug, Clone)]
pub struct DataStream {
    client: Client,
    handle: Arc<StreamHandle>,
}

impl DataStream {
    pub(crate) fn new(client: Client, handle: Arc<StreamHandle>) -> Self {
        DataStream { client, handle }
    }

    /// Which data stream of the client this is: 1 for the first one opened, then 2, 3, ...
    /// The number stays the same across reconnects; the QUIC stream under it changes.
    pub fn number(&self) -> u64 {
        self.handle.lane.0
    }

    /// The client this stream belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Publishes a message on this stream; see [`Client::publish`]. The handle keeps the
    /// stream open until the publish completes.
    pub fn publish(&self, message: Message) -> Result<PublishHandle, ClientError> {
        self.client
            .publish_on(self.handle.lane, message, Some(self.handle.clone()))
    }

    /// Subscribes on this stream: the messages arrive on this stream's `Messages`.
    pub async fn subscribe(
        &self,
        subscription: Subscription,
    ) -> Result<SubscribeOutcome, ClientError> {
        self.client
            .subscribe_on(self.handle.lane, subscription)
            .await
    }

    /// Unsubscribes filters subscribed on this stream.
    pub async fn unsubscribe<I, S>(&self, filters: I) -> Result<UnsubscribeOutcome, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.unsubscribe_with(parse_filters(filters)?, Properties::default())
            .await
    }

    /// Unsubscribes with UNSUBSCRIBE properties (User Properties, MQTT 5).
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<UnsubscribeOutcome, ClientError> {
        self.client
            .unsubscribe_on(self.handle.lane, filters, properties)
            .await
    }
}

/// Closes its data stream when the last reference is dropped.
#[derive(Debug)]
pub(crate) struct StreamHandle {
    lane: LaneId,
    commands: mpsc::UnboundedSender<Command>,
}

impl StreamHandle {
    pub(crate) fn new(lane: LaneId, commands: mpsc::UnboundedSender<Command>) -> Self {
        StreamHandle { lane, commands }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        // Fails only when the client has stopped, and with it every stream.
        let _ = self
            .commands
            .send(Command::CloseDataStream { lane: self.lane });
    }
}
