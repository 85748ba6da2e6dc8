//! The driver task: one per client, it owns everything mutable and runs the connection's
//! life: open a [`Link`], run the connection on it (`connection.rs`), and when it is lost,
//! wait out the backoff delay and open the next one, carrying the session state and the
//! pending requests over. Requests are kept per [`Lane`] (the control stream, and each data
//! stream of a multi-stream QUIC connection). While no connection is up, requests go to the
//! offline queue. When the application disconnects (or drops every `Client`), or
//! reconnecting is off or useless, it fails what is still pending and reports
//! [`ConnectionStatus::Closed`].

use std::collections::BTreeMap;
use std::sync::Arc;

use mquictt_protocol::session::{ClientConfig, ConnectionInfo, SessionState};
use mquictt_transport::{Connector, TransportUrl};
use tokio::sync::{mpsc, oneshot, watch};

use crate::backoff::{Backoff, ReconnectPolicy};
use crate::client::{Command, ConnectionStatus, QueueCount};
use crate::error::ClientError;
use crate::lane::{Lane, LaneId};
use crate::link::Link;
use crate::message::Message;
use crate::options::ClientOptions;
use crate::pending::Request;

/// The application asked the client to stop.
#[derive(Debug)]
pub(crate) struct StopRequest {
    /// Answered once the client has stopped; `None` when every `Client` was dropped.
    pub(crate) done: Option<oneshot::Sender<()>>,
}

/// A data stream the application opened or closed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LaneChange {
    Opened(LaneId),
    Closed(LaneId),
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
    pub(crate) status: watch::Sender<ConnectionStatus>,
    pub(crate) queue_count: Arc<QueueCount>,
    /// Waiting for the first CONNACK (`Client::connect`): its failure ends the client.
    pub(crate) first: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    /// The control stream's lane and those of the open data streams, by number.
    pub(crate) lanes: BTreeMap<LaneId, Lane>,
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
            status,
            queue_count,
            first,
            lanes: BTreeMap::from([(LaneId::CONTROL, Lane::new(messages))]),
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

    /// Turns the state of a control-stream session that will not be resumed back into
    /// requests (see [`Lane::abandon`]).
    pub(crate) fn abandon(&mut self, state: SessionState) {
        if let Some(lane) = self.lanes.get_mut(&LaneId::CONTROL) {
            lane.abandon(state, &self.queue_count);
        }
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

    /// Takes a command other than Disconnect into the lanes' bookkeeping: queues a request,
    /// adds or removes a data stream's lane. Returns the lane that was opened or closed, for
    /// the connection to act on.
    pub(crate) fn enqueue(&mut self, command: Command) -> Option<LaneChange> {
        match command {
            Command::Request { lane, request } => {
                match self.lanes.get_mut(&lane) {
                    Some(target) => target.requests.push(request),
                    // A request always precedes its stream's closing in the channel; this is
                    // only reachable if that order were broken.
                    None => {
                        if matches!(request, Request::Publish { .. }) {
                            self.queue_count.release();
                        }
                        request.fail(ClientError::Closed);
                    }
                }
                None
            }
            Command::OpenDataStream { lane, messages } => {
                self.lanes.insert(lane, Lane::new(messages));
                Some(LaneChange::Opened(lane))
            }
            Command::CloseDataStream { lane } => {
                let mut closed = self.lanes.remove(&lane)?;
                closed.fail_all(&self.queue_count, || ClientError::Closed);
                Some(LaneChange::Closed(lane))
            }
            Command::Disconnect { .. } => None,
        }
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
        // Dropping the lanes ends every `Messages`.
        for (_, mut lane) in std::mem::take(&mut self.lanes) {
            lane.fail_all(&self.queue_count, error);
        }
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
