//! The application's side of the client: [`Client`] (cheap to clone; sends requests to the
//! connection's driver task), [`PublishHandle`] (completes when the publish does),
//! [`Messages`] (the stream of received messages) and [`ConnectionStatus`]; opens
//! [`DataStream`]s. Owns the offline queue's admission count; everything else happens in the
//! driver.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::session::{ConnectionInfo, RequestError};
use mquictt_protocol::{Disconnect, Packet, Properties, ProtocolVersion, ReasonCode, TopicFilter};
use mquictt_transport::{Connector, TransportKind, TransportUrl};
use tokio::sync::{mpsc, oneshot, watch};

use crate::data_stream::{DataStream, StreamHandle};
use crate::driver::Driver;
use crate::error::ClientError;
use crate::lane::LaneId;
use crate::message::{Message, PublishOutcome, SubscribeOutcome, Subscription, UnsubscribeOutcome};
use crate::options::ClientOptions;
use crate::pending::Request;

/// Where the connection stands.
#[derive(Debug, Clone)]
pub enum ConnectionStatus {
    /// The first connection is being opened.
    Connecting,
    /// CONNACK accepted the connection.
    Connected(Box<ConnectionInfo>),
    /// The connection was lost (or an attempt failed); the next attempt starts after the
    /// backoff delay.
    Reconnecting {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// Why the last connection or attempt ended.
        cause: Arc<ClientError>,
    },
    /// The client stopped: disconnected by the application (`None`) or gave up.
    Closed(Option<Arc<ClientError>>),
}

/// A request from the application to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    /// A publish, subscribe or unsubscribe request on a lane.
    Request { lane: LaneId, request: Request },
    /// The application opened a data stream; its messages go to `messages`.
    OpenDataStream {
        lane: LaneId,
        messages: mpsc::Sender<Message>,
    },
    /// Every handle of a data stream is gone: close it.
    CloseDataStream { lane: LaneId },
    Disconnect {
        disconnect: Disconnect,
        done: oneshot::Sender<()>,
    },
}

/// Counts publishes the driver holds that the session has not taken yet (requests in the
/// command channel plus the driver's queue), against the offline queue limit.
#[derive(Debug)]
pub(crate) struct QueueCount {
    queued: AtomicUsize,
    limit: usize,
}

impl QueueCount {
    pub(crate) fn new(limit: usize) -> Self {
        QueueCount {
            queued: AtomicUsize::new(0),
            limit,
        }
    }

    /// Admits one more publish if the limit allows.
    fn try_admit(&self) -> Result<(), ClientError> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < self.limit).then_some(queued + 1)
            })
            .map(|_| ())
            .map_err(|_| ClientError::OfflineQueueFull { limit: self.limit })
    }

    /// A publish left the queue (taken by the session, or failed).
    pub(crate) fn release(&self) {
        // Never below zero: every release follows an admission or a re-admission.
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued.checked_sub(1)
            });
    }

    /// A publish re-enters the queue after its connection was lost; it was admitted before,
    /// so the limit does not apply.
    pub(crate) fn readmit(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    fn current(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    queue: Arc<QueueCount>,
    status: watch::Receiver<ConnectionStatus>,
    /// The broker URL; data streams need a `quic://` one.
    url: TransportUrl,
    /// Capacity of every `Messages` receiver.
    incoming_capacity: usize,
    /// The number of the next data stream.
    next_lane: AtomicU64,
}

/// An MQTT client: one connection to one broker, re-opened when it is lost. Clones share
/// the connection; when the last clone is dropped the client disconnects normally.
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl Client {
    /// Connects and waits for the broker's CONNACK. A failure of this first attempt is
    /// returned (it is not retried); connections lost later are re-opened as the reconnect
    /// policy says. Must be called within a tokio runtime.
    pub async fn connect(options: ClientOptions) -> Result<(Client, Messages), ClientError> {
        let (first_tx, first_rx) = oneshot::channel();
        let (client, messages) = Self::spawn(options, Some(first_tx))?;
        match first_rx.await {
            Ok(Ok(_info)) => Ok((client, messages)),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Starts connecting in the background and returns at once; failed attempts, the first
    /// included, are retried as the reconnect policy says. Requests made before the
    /// connection is up wait in the offline queue. Must be called within a tokio runtime.
    pub fn start(options: ClientOptions) -> Result<(Client, Messages), ClientError> {
        Self::spawn(options, None)
    }

    fn spawn(
        options: ClientOptions,
        first: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    ) -> Result<(Client, Messages), ClientError> {
        let config = options.session_config()?;
        let connector =
            Connector::with_options(options.tls_settings(), options.transport_options()).map_err(
                |source| ClientError::Connect {
                    url: options.url().to_string(),
                    source,
                },
            )?;
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let incoming_capacity = options.incoming_capacity();
        let url = options.url().clone();
        let (messages_tx, messages_rx) = mpsc::channel(incoming_capacity);
        let (status_tx, status_rx) = watch::channel(ConnectionStatus::Connecting);
        let queue = Arc::new(QueueCount::new(options.offline_queue_limit()));
        let driver = Driver::new(
            options,
            config,
            connector,
            commands_rx,
            messages_tx,
            status_tx,
            queue.clone(),
            first,
        );
        tokio::spawn(driver.run());
        let client = Client {
            shared: Arc::new(Shared {
                commands: commands_tx,
                queue,
                status: status_rx,
                url,
                incoming_capacity,
                next_lane: AtomicU64::new(1),
            }),
        };
        Ok((
            client,
            Messages {
                rx: messages_rx,
                _stream: None,
            },
        ))
    }

    /// Publishes a message. The handle completes when the message is done: for QoS 0 once
    /// written to the connection, for QoS 1 at PUBACK, for QoS 2 at PUBCOMP (or at a PUBREC
    /// refusing it), with the packet identifier and reason code. While disconnected the
    /// message waits in the offline queue; when that is full it is refused here.
    pub fn publish(&self, message: Message) -> Result<PublishHandle, ClientError> {
        self.publish_on(LaneId::CONTROL, message, None)
    }

    /// Subscribes and returns the broker's reason codes, one per filter. Filters the broker
    /// granted are subscribed again on a reconnect that finds no session on the broker.
    pub async fn subscribe(
        &self,
        subscription: Subscription,
    ) -> Result<SubscribeOutcome, ClientError> {
        self.subscribe_on(LaneId::CONTROL, subscription).await
    }

    /// Unsubscribes from topic filters and returns the broker's reason codes (MQTT 5).
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
        self.unsubscribe_on(LaneId::CONTROL, filters, properties)
            .await
    }

    /// Opens a data stream of a multi-stream QUIC connection (EMQX-compatible; `quic://` URLs
    /// only): publishes, subscriptions and acknowledgements made through the returned
    /// [`DataStream`] travel on a QUIC stream of their own, so a lost packet or a slow
    /// consumer on it does not hold up the other streams. The messages of its subscriptions
    /// arrive on the returned [`Messages`], not on the client's. The stream is opened once
    /// the connection is up (at once if it is) and opened again, with its subscriptions
    /// renewed, on every reconnect. See [`DataStream`] for how long it lives.
    pub fn data_stream(&self) -> Result<(DataStream, Messages), ClientError> {
        if self.shared.url.kind != TransportKind::Quic {
            return Err(ClientError::DataStreamsNeedQuic {
                url: self.shared.url.to_string(),
            });
        }
        let lane = LaneId(self.shared.next_lane.fetch_add(1, Ordering::Relaxed));
        let (messages_tx, messages_rx) = mpsc::channel(self.shared.incoming_capacity);
        self.send(Command::OpenDataStream {
            lane,
            messages: messages_tx,
        })?;
        let handle = Arc::new(StreamHandle::new(lane, self.shared.commands.clone()));
        let messages = Messages {
            rx: messages_rx,
            _stream: Some(handle.clone()),
        };
        Ok((DataStream::new(self.clone(), handle), messages))
    }

    pub(crate) fn publish_on(
        &self,
        lane: LaneId,
        message: Message,
        stream: Option<Arc<StreamHandle>>,
    ) -> Result<PublishHandle, ClientError> {
        // Sized as MQTT 5 (properties included), an upper bound of the 3.1.1 size.
        let publish = message.into_publish();
        let size = Packet::Publish(publish.clone()).encoded_len(ProtocolVersion::V5);
        if size > MAX_PACKET_SIZE as usize {
            return Err(RequestError::PacketTooLarge {
                size,
                maximum: MAX_PACKET_SIZE,
            }
            .into());
        }
        self.shared.queue.try_admit()?;
        let (done, rx) = oneshot::channel();
        let request = Request::Publish { publish, done };
        if self.send(Command::Request { lane, request }).is_err() {
            self.shared.queue.release();
            return Err(ClientError::Closed);
        }
        Ok(PublishHandle {
            rx,
            _stream: stream,
        })
    }

    pub(crate) async fn subscribe_on(
        &self,
        lane: LaneId,
        subscription: Subscription,
    ) -> Result<SubscribeOutcome, ClientError> {
        let (done, rx) = oneshot::channel();
        let request = Request::Subscribe {
            subscription,
            done: Some(done),
        };
        self.send(Command::Request { lane, request })?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    pub(crate) async fn unsubscribe_on(
        &self,
        lane: LaneId,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<UnsubscribeOutcome, ClientError> {
        let (done, rx) = oneshot::channel();
        let request = Request::Unsubscribe {
            filters,
            properties,
            done,
        };
        self.send(Command::Request { lane, request })?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Disconnects normally (the broker discards the will) and stops the client. Waits until
    /// DISCONNECT is written. Requests still pending fail with [`ClientError::Closed`].
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION))
            .await
    }

    /// Disconnects with a chosen DISCONNECT (MQTT 5: reason code 0x04 asks the broker to
    /// publish the will; properties such as a new Session Expiry Interval).
    pub async fn disconnect_with(&self, disconnect: Disconnect) -> Result<(), ClientError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Disconnect { disconnect, done })?;
        // The driver ending without answering also means the client is stopped.
        let _ = rx.await;
        Ok(())
    }

    /// Where the connection stands now.
    pub fn status(&self) -> ConnectionStatus {
        self.shared.status.borrow().clone()
    }

    /// A receiver that sees every change of [`ConnectionStatus`].
    pub fn status_changes(&self) -> watch::Receiver<ConnectionStatus> {
        self.shared.status.clone()
    }

    /// Publishes waiting to be handed to the session (offline, or beyond the broker's
    /// receive window).
    pub fn queued_publishes(&self) -> usize {
        self.shared.queue.current()
    }

    fn send(&self, command: Command) -> Result<(), ClientError> {
        self.shared
            .commands
            .send(command)
            .map_err(|_| ClientError::Closed)
    }
}

/// The topic filters of an unsubscribe request, parsed.
pub(crate) fn parse_filters<I, S>(filters: I) -> Result<Vec<TopicFilter>, ClientError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    filters
        .into_iter()
        .map(|filter| TopicFilter::new(filter).map_err(ClientError::from))
        .collect()
}

/// Completes when a publish does; see [`Client::publish`]. Dropping it does not cancel the
/// publish. A publish on a [`DataStream`] keeps that stream open until it completes.
#[derive(Debug)]
pub struct PublishHandle {
    rx: oneshot::Receiver<Result<PublishOutcome, ClientError>>,
    _stream: Option<Arc<StreamHandle>>,
}

impl Future for PublishHandle {
    type Output = Result<PublishOutcome, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ClientError::Closed)))
    }
}

/// The messages the broker delivers for our subscriptions, in order. QoS 1 and 2 messages
/// are acknowledged once they are in this stream's buffer. Ends when the client stops. The
/// client's own `Messages` carries what the subscriptions made with [`Client::subscribe`]
/// receive; each [`DataStream`] has its own, which keeps the data stream open while it lives
/// and ends when the stream is closed.
#[derive(Debug)]
pub struct Messages {
    rx: mpsc::Receiver<Message>,
    _stream: Option<Arc<StreamHandle>>,
}

impl Messages {
    /// The next message; `None` once the client stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    /// The next message if one is waiting, without waiting; `None` when none is (or the
    /// client stopped).
    pub fn try_recv(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }

    /// How many messages wait here for the application, at most the client's
    /// [`ClientOptions::incoming_buffer`](crate::ClientOptions::incoming_buffer). Once the
    /// buffer is full and the next message has arrived behind it, the client stops reading
    /// the stream these messages come on: a full buffer is how back-pressure on that stream
    /// shows. Takes no message out.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no message waits here.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}
