//! The driver task: one per client, it owns everything mutable and runs the connection's
//! life: open a [`Link`], run the connection on it (`connection.rs`), and when it is lost,
//! wait out the backoff delay and open the next one, carrying the session state and the
//! pending requests over. While no connection is up, requests go to the offline queue. When
//! the application disconnects (or drops every `Client`), or reconnecting is off or useless,
//! it fails what is still pending and reports [`ConnectionStatus::Closed`].

use std::sync::Arc;

use mquictt_protocol::session::{ClientConfig, ConnectionInfo, OutboundMessage, SessionState};
use mquictt_protocol::{Properties, ReasonCode};
use mquictt_transport::{Connector, TransportUrl};
use tokio::sync::{mpsc, oneshot, watch};

use crate::backoff::{Backoff, ReconnectPolicy};
use crate::client::{Command, ConnectionStatus, QueueCount};
use crate::error::ClientError;
use crate::link::Link;
use crate::message::Message;
use crate::options::ClientOptions;
use crate::pending::{InFlight, Queued, Request, RequestQueue};
use crate::subscriptions::SubscriptionRecord;

/// The application asked the client to stop.
#[derive(Debug)]
pub(crate) struct StopRequest {
    /// Answered once the client has stopped; `None` when every `Client` was dropped.
    pub(crate) done: Option<oneshot::Sender<()>>,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The application asked to stop.
    Stopped,
    /// The connection (or the attempt to open it) failed.
    Lost(ClientError),
}

/// The state of one client across its connections.
#[derive(Debug)]
pub(crate) struct Driver {
    url: TransportUrl,
    connector: Connector,
    /// The session configuration; `clean_start` is set per connection.
    pub(crate) config: ClientConfig,
    first_clean_start: bool,
    /// The session outlives a connection (MQTT 5 Session Expiry > 0, or 3.1.1 Clean Session
    /// 0): reconnects resume it.
    pub(crate) persistent: bool,
    pub(crate) max_incoming_packet: u32,
    reconnect: ReconnectPolicy,
    pub(crate) backoff: Backoff,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) messages: mpsc::Sender<Message>,
    pub(crate) status: watch::Sender<ConnectionStatus>,
    pub(crate) queue_count: Arc<QueueCount>,
    /// Waiting for the first CONNACK (`Client::connect`): its failure ends the client.
    pub(crate) first: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    pub(crate) requests: RequestQueue,
    pub(crate) in_flight: InFlight,
    pub(crate) subscriptions: SubscriptionRecord,
    /// The state of the last connection's session, to resume on the next one.
    pub(crate) session_state: Option<SessionState>,
    pub(crate) connected_once: bool,
    pub(crate) stop: Option<StopRequest>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        options: ClientOptions,
        config: ClientConfig,
        connector: Connector,
        commands: mpsc::UnboundedReceiver<Command>,
        messages: mpsc::Sender<Message>,
        status: watch::Sender<ConnectionStatus>,
        queue_count: Arc<QueueCount>,
        first: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    ) -> Self {
        let reconnect = options.reconnect_policy().clone();
        Driver {
            url: options.url().clone(),
            connector,
            first_clean_start: config.connect.clean_start,
            config,
            persistent: options.session_persists(),
            max_incoming_packet: options.max_incoming_packet_size(),
            backoff: Backoff::new(reconnect.clone()),
            reconnect,
            commands,
            messages,
            status,
            queue_count,
            first,
            requests: RequestQueue::default(),
            in_flight: InFlight::default(),
            subscriptions: SubscriptionRecord::default(),
            session_state: None,
            connected_once: false,
            stop: None,
        }
    }

    /// Runs until the client stops.
    pub(crate) async fn run(mut self) {
        let cause = loop {
            let Some(opened) = self.open().await else {
                break None;
            };
            let ended = match opened {
                Ok(link) => self.run_connection(link).await,
                Err(error) => Ended::Lost(error),
            };
            let error = match ended {
                Ended::Stopped => break None,
                Ended::Lost(error) => error,
            };
            if let Some(first) = self.first.take() {
                // `Client::connect` reports the first failure instead of retrying.
                let _ = first.send(Err(error));
                break None;
            }
            if !self.reconnect.enabled || error.is_permanent() {
                tracing::warn!(url = %self.url, "connection ended, not reconnecting: {error}");
                break Some(error);
            }
            let delay = self.backoff.next_delay();
            tracing::info!(url = %self.url, ?delay, "connection ended, reconnecting: {error}");
            self.status.send_replace(ConnectionStatus::Reconnecting {
                attempt: self.backoff.attempt(),
                cause: Arc::new(error),
            });
            if !self.wait(delay).await {
                break None;
            }
        };
        self.shutdown(cause);
    }

    /// The clean start flag and resumed state of the next connection's session.
    pub(crate) fn next_session(&mut self) -> (bool, Option<SessionState>) {
        let clean_start = if self.connected_once {
            !self.persistent
        } else {
            self.first_clean_start
        };
        if clean_start {
            if let Some(state) = self.session_state.take() {
                self.abandon(state);
            }
            (true, None)
        } else {
            // On the very first connection there is no state yet: resume "a session with
            // nothing in flight", so that a broker still holding our subscriptions may say
            // Session Present [MQTT-3.2.2-4].
            (false, Some(self.session_state.take().unwrap_or_default()))
        }
    }

    /// Turns the state of a session that will not be resumed back into requests: unfinished
    /// publishes are published again as new messages ("at least once" holds; the broker never
    /// confirmed them), and QoS 2 messages whose PUBREC arrived are complete (the broker has
    /// them).
    pub(crate) fn abandon(&mut self, state: SessionState) {
        let mut resend = Vec::new();
        for message in state.outbound {
            match message {
                OutboundMessage::Publish(publish) => resend.extend(self.republish(*publish)),
                OutboundMessage::Release(packet_id) => {
                    self.in_flight.complete_publish(
                        packet_id,
                        ReasonCode::Success,
                        Properties::default(),
                    );
                }
            }
        }
        self.requests.requeue(resend);
    }

    /// A publish of a lost session, as a new request in its original place.
    pub(crate) fn republish(&mut self, mut publish: mquictt_protocol::Publish) -> Option<Queued> {
        let pending = self.in_flight.publishes.remove(&publish.packet_id?)?;
        publish.packet_id = None;
        publish.dup = false;
        self.queue_count.readmit();
        Some(Queued {
            seq: pending.seq,
            request: Request::Publish {
                publish,
                done: pending.done,
            },
        })
    }

    /// Opens the next link, queueing requests meanwhile; `None` when asked to stop.
    async fn open(&mut self) -> Option<Result<Link, ClientError>> {
        let opening = Link::open(self.connector.clone(), self.url.clone());
        tokio::pin!(opening);
        loop {
            tokio::select! {
                result = &mut opening => return Some(result),
                command = self.commands.recv() => {
                    if !self.accept_offline(command) {
                        return None;
                    }
                }
            }
        }
    }

    /// Waits out a backoff delay, queueing requests meanwhile; false when asked to stop.
    async fn wait(&mut self, delay: std::time::Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = self.commands.recv() => {
                    if !self.accept_offline(command) {
                        return false;
                    }
                }
            }
        }
    }

    /// Takes a command while no connection is up; false when it asks to stop.
    fn accept_offline(&mut self, command: Option<Command>) -> bool {
        match command {
            None => {
                self.stop = Some(StopRequest { done: None });
                false
            }
            Some(Command::Disconnect { done, .. }) => {
                self.stop = Some(StopRequest { done: Some(done) });
                false
            }
            Some(command) => {
                self.enqueue(command);
                true
            }
        }
    }

    /// Queues a publish, subscribe or unsubscribe request.
    pub(crate) fn enqueue(&mut self, command: Command) {
        let request = match command {
            Command::Publish { message, done } => Request::Publish {
                publish: message.into_publish(),
                done,
            },
            Command::Subscribe { subscription, done } => Request::Subscribe {
                subscription,
                done: Some(done),
            },
            Command::Unsubscribe {
                filters,
                properties,
                done,
            } => Request::Unsubscribe {
                filters,
                properties,
                done,
            },
            Command::Disconnect { .. } => return,
        };
        self.requests.push(request);
    }

    /// Fails everything pending and reports the end.
    fn shutdown(&mut self, cause: Option<ClientError>) {
        let cause = cause.map(Arc::new);
        let error = || match &cause {
            Some(cause) => ClientError::ConnectionLost(cause.clone()),
            None => ClientError::Closed,
        };
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            self.enqueue(command);
        }
        for queued in self.requests.drain() {
            if matches!(queued.request, Request::Publish { .. }) {
                self.queue_count.release();
            }
            queued.request.fail(error());
        }
        self.in_flight.fail_all(error);
        self.status
            .send_replace(ConnectionStatus::Closed(cause.clone()));
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error()));
        }
        if let Some(StopRequest { done: Some(done) }) = self.stop.take() {
            let _ = done.send(());
        }
    }
}
