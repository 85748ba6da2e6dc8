//! One publisher/subscriber pair of a lab run and what it shares: the run's specification
//! ([`RunSpec`]), how its clients connect ([`FlowOptions`]), the send and arrival times of every
//! sequence number ([`Flow`]), the two sides' client code (library clients for TCP, TLS and
//! single-stream QUIC; the raw multi-stream clients otherwise), and [`run_lab`], which builds one
//! lab with a pair per (broker, transport) and runs them side by side.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mquictt_client::{Client, ClientOptions, Message, QoS, Subscription};
use mquictt_lab::{HostLink, Lab, LinkProfile, QueueLimit, Topology};
use tokio::sync::oneshot;

use crate::brokers::{BrokerFiles, RunningBroker};
use crate::connection::lab_options;
use crate::delivery::DeliveryRun;
use crate::error::ExperimentError;
use crate::multistream;
use crate::run::ClientThread;
use crate::settings::Settings;
use crate::stats::Percentiles;
use crate::transports::{BrokerKind, Transport};
use crate::workload::{sequence_number, Workload};

/// What one lab runs.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub(crate) workload: Workload,
    pub(crate) scenario: String,
    pub(crate) link: LinkProfile,
    pub(crate) qos: QoS,
    pub(crate) seed: u64,
    pub(crate) count: u32,
    pub(crate) drain: Duration,
    /// Time between publishes; zero publishes back to back.
    pub(crate) interval: Duration,
    /// A fixed payload size instead of the workload's message.
    pub(crate) payload_size: Option<usize>,
}

impl RunSpec {
    pub(crate) fn payload(&self, seq: u32) -> bytes::Bytes {
        match self.payload_size {
            Some(size) => crate::workload::sized_payload(seq, size),
            None => self.workload.payload(seq),
        }
    }
}

pub(crate) fn run_lab(
    settings: &Settings,
    files: &BrokerFiles,
    spec: &RunSpec,
    pairs: &[(BrokerKind, Transport)],
) -> Result<(Vec<DeliveryRun>, bool), ExperimentError> {
    let client_link = HostLink::symmetric(spec.link.link_config(QueueLimit::default()));
    let topology = Topology::star(HostLink::default(), vec![client_link; 2 * pairs.len()])
        .with_seed(spec.seed);
    let lab = Lab::start_with(topology, lab_options())?;
    let mut brokers = Vec::new();
    for kind in [BrokerKind::Mquictt, BrokerKind::Mosquitto] {
        if pairs.iter().any(|(b, _)| *b == kind) {
            brokers.push(RunningBroker::start(
                kind,
                lab.broker(),
                files,
                &settings.broker_program,
                settings.mosquitto.as_deref(),
            )?);
        }
    }
    let tls = files.client_tls()?;
    let mut threads = Vec::new();
    for (k, &(broker, transport)) in pairs.iter().enumerate() {
        let (publisher, subscriber) = match (lab.client(2 * k), lab.client(2 * k + 1)) {
            (Some(p), Some(s)) => (p, s),
            _ => return Err(ExperimentError::Client("missing client hosts".to_owned())),
        };
        let flow = Flow::new(spec.count);
        let (ready_tx, ready_rx) = oneshot::channel();
        let options = FlowOptions {
            url: broker.url(transport),
            tls: transport.client_tls(tls.clone()),
            transport,
            id: k,
            spec: spec.clone(),
        };
        let sub = {
            let (flow, options) = (flow.clone(), options.clone());
            ClientThread::spawn(subscriber, move || subscribe_side(options, flow, ready_tx))?
        };
        let publ = {
            let (flow, options) = (flow.clone(), options.clone());
            ClientThread::spawn(publisher, move || publish_side(options, flow, ready_rx))?
        };
        threads.push((broker, transport, flow, sub, publ));
    }
    let mut runs = Vec::new();
    for (broker, transport, flow, sub, publ) in threads {
        let publish_outcome = publ.join()?;
        let subscribe_outcome = sub.join()?;
        // Both sides' errors: the publisher's alone often only says the subscriber never got
        // ready, while the subscriber's says why.
        let failure = match (publish_outcome.err(), subscribe_outcome.err()) {
            (Some(publishing), Some(subscribing)) => Some(format!("{publishing}; {subscribing}")),
            (publishing, subscribing) => publishing.or(subscribing),
        };
        runs.push(flow.summarise(spec, broker, transport, failure));
    }
    drop(brokers);
    let stats = lab.finish()?;
    Ok((runs, stats.is_flagged()))
}

/// A placeholder run for probes that need a [`FlowOptions`] but send no workload.
pub(crate) fn probe_spec() -> RunSpec {
    RunSpec {
        workload: Workload::Synthetic,
        scenario: "probe".to_owned(),
        link: LinkProfile {
            name: "ideal".to_owned(),
            // 1 Gbit/s is a valid rate.
            bandwidth: mquictt_lab::Bandwidth::from_bits_per_sec(1_000_000_000)
                .unwrap_or_else(|| unreachable!("1 Gbit/s is not zero")),
            delay: Duration::ZERO,
            loss: mquictt_lab::Probability::ZERO,
        },
        qos: QoS::AtMostOnce,
        seed: 0,
        count: 0,
        drain: Duration::ZERO,
        interval: Duration::ZERO,
        payload_size: None,
    }
}

/// How a pair's clients connect.
#[derive(Debug, Clone)]
pub(crate) struct FlowOptions {
    pub(crate) url: String,
    pub(crate) tls: mquictt_client::ClientTlsSettings,
    pub(crate) transport: Transport,
    pub(crate) id: usize,
    pub(crate) spec: RunSpec,
}

impl FlowOptions {
    fn client_options(&self, role: &str) -> Result<ClientOptions, String> {
        Ok(ClientOptions::new(&self.url)
            .map_err(|e| e.to_string())?
            .client_id(format!("{role}-{}", self.id))
            .tls(self.tls.clone())
            // The session outlives a dropped connection, so QoS 1 and 2 messages survive
            // reconnects as MQTT promises.
            .session_expiry(Duration::from_secs(600))
            .connect_timeout(Duration::from_secs(10)))
    }
}

/// What the two sides of a pair share: when each message was sent and first received.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    inner: Arc<Mutex<FlowState>>,
}

#[derive(Debug)]
struct FlowState {
    sent: Vec<Option<Instant>>,
    received: Vec<Option<Instant>>,
    duplicates: u32,
    publishing_done: Option<Instant>,
}

impl Flow {
    pub(crate) fn new(count: u32) -> Flow {
        Flow {
            inner: Arc::new(Mutex::new(FlowState {
                sent: vec![None; count as usize],
                received: vec![None; count as usize],
                duplicates: 0,
                publishing_done: None,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FlowState> {
        // A panicking client thread leaves timestamps that are still valid.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mark_sent(&self, seq: u32) {
        if let Some(slot) = self.state().sent.get_mut(seq as usize) {
            *slot = Some(Instant::now());
        }
    }

    /// Records an arrival; returns whether every message has now arrived.
    pub(crate) fn mark_received(&self, payload: &[u8]) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(slot) =
            sequence_number(payload).and_then(|seq| state.received.get_mut(seq as usize))
        {
            if slot.is_some() {
                state.duplicates += 1;
            } else {
                *slot = Some(now);
            }
        }
        state.received.iter().all(Option::is_some)
    }

    /// Whether every message has arrived.
    pub(crate) fn is_complete(&self) -> bool {
        self.state().received.iter().all(Option::is_some)
    }

    /// Latencies of the delivered messages, ms.
    pub(crate) fn latencies_ms(&self) -> Vec<f64> {
        let state = self.state();
        state
            .sent
            .iter()
            .zip(&state.received)
            .filter_map(|(s, r)| {
                Some(
                    r.as_ref()?
                        .saturating_duration_since(*s.as_ref()?)
                        .as_secs_f64()
                        * 1000.0,
                )
            })
            .collect()
    }

    pub(crate) fn publishing_done(&self) {
        self.state().publishing_done = Some(Instant::now());
    }

    /// Whether the receiver should stop waiting: publishing ended more than `drain` ago.
    pub(crate) fn drained(&self, drain: Duration) -> bool {
        self.state()
            .publishing_done
            .is_some_and(|t| t.elapsed() > drain)
    }

    pub(crate) fn summarise(
        &self,
        spec: &RunSpec,
        broker: BrokerKind,
        transport: Transport,
        failure: Option<String>,
    ) -> DeliveryRun {
        let state = self.state();
        let latencies: Vec<f64> = state
            .sent
            .iter()
            .zip(&state.received)
            .filter_map(|(s, r)| {
                Some(
                    r.as_ref()?
                        .saturating_duration_since(*s.as_ref()?)
                        .as_secs_f64()
                        * 1000.0,
                )
            })
            .collect();
        let sent = state.sent.iter().filter(|s| s.is_some()).count() as u32;
        let delivered = state.received.iter().filter(|r| r.is_some()).count() as u32;
        let first = state.sent.iter().flatten().min().copied();
        let last = state.received.iter().flatten().max().copied();
        let complete = sent == spec.count && delivered == spec.count;
        let completion_ms = match (first, last) {
            (Some(first), Some(last)) if complete => {
                last.saturating_duration_since(first).as_secs_f64() * 1000.0
            }
            _ => f64::NAN,
        };
        let span_ms = match (first, last) {
            (Some(first), Some(last)) => {
                last.saturating_duration_since(first).as_secs_f64() * 1000.0
            }
            _ => f64::NAN,
        };
        let delivered_bytes = state
            .received
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .map(|(seq, _)| spec.payload(seq as u32).len() as u64)
            .sum();
        DeliveryRun {
            span_ms,
            delivered_bytes,
            scenario: spec.scenario.clone(),
            link: spec.link.name.clone(),
            qos: spec.qos as u8,
            broker,
            transport,
            seed: spec.seed,
            sent,
            delivered,
            duplicates: state.duplicates,
            latency: Percentiles::of(&latencies),
            completion_ms,
            failure,
        }
    }
}

/// Connects, retrying until `budget` runs out (a lossy link can lose a whole handshake).
pub(crate) async fn connect_within(
    options: &FlowOptions,
    role: &str,
    budget: Duration,
) -> Result<(Client, mquictt_client::Messages), String> {
    let deadline = Instant::now() + budget;
    loop {
        match Client::connect(options.client_options(role)?).await {
            Ok(pair) => return Ok(pair),
            Err(e) if Instant::now() >= deadline => return Err(format!("{role}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How long the clients may take to connect and subscribe: a lossy link can cost several
/// handshake timeouts.
pub(crate) const SETUP_BUDGET: Duration = Duration::from_secs(30);

async fn subscribe_side(
    options: FlowOptions,
    flow: Flow,
    ready: oneshot::Sender<()>,
) -> Result<(), String> {
    if options.transport == Transport::QuicMultiStream {
        return multistream::subscribe_side(options, flow, ready).await;
    }
    let spec = &options.spec;
    let (client, mut messages) = connect_within(&options, "sub", SETUP_BUDGET).await?;
    let subscription = Subscription::new(spec.workload.filter_for(options.id), spec.qos)
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(SETUP_BUDGET, client.subscribe(subscription))
        .await
        .map_err(|_| "sub: no SUBACK".to_owned())?
        .map_err(|e| format!("sub: {e}"))?;
    let _ = ready.send(());
    loop {
        match tokio::time::timeout(Duration::from_millis(50), messages.recv()).await {
            Ok(Some(message)) => {
                if flow.mark_received(&message.payload) {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) if flow.drained(spec.drain) => break,
            Err(_) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    Ok(())
}

async fn publish_side(
    options: FlowOptions,
    flow: Flow,
    ready: oneshot::Receiver<()>,
) -> Result<(), String> {
    if options.transport == Transport::QuicMultiStream {
        return multistream::publish_side(options, flow, ready).await;
    }
    let spec = &options.spec;
    let connected = connect_within(&options, "pub", SETUP_BUDGET).await;
    // The subscriber must be in place before the first message; it may fail to connect.
    let subscribed = tokio::time::timeout(2 * SETUP_BUDGET, ready).await;
    let (client, _messages) = match (connected, subscribed) {
        (Ok(pair), Ok(Ok(()))) => pair,
        (Err(e), _) => {
            flow.publishing_done();
            return Err(e);
        }
        (Ok(_), _) => {
            flow.publishing_done();
            return Err("sub: not subscribed in time".to_owned());
        }
    };
    let mut ticker = tokio::time::interval(spec.interval.max(Duration::from_nanos(1)));
    let mut handles = Vec::with_capacity(spec.count as usize);
    for seq in 0..spec.count {
        if !spec.interval.is_zero() {
            ticker.tick().await;
        }
        let message = Message::new(spec.workload.topic_for(options.id), spec.payload(seq))
            .map_err(|e| e.to_string())?
            .qos(spec.qos);
        flow.mark_sent(seq);
        handles.push(client.publish(message).map_err(|e| format!("pub: {e}"))?);
    }
    let deadline = tokio::time::Instant::now() + spec.drain;
    for handle in handles {
        if tokio::time::timeout_at(deadline, handle).await.is_err() {
            break;
        }
    }
    flow.publishing_done();
    // Stay connected until the subscriber is done, so nothing in flight is cut off.
    while !flow.drained(spec.drain) && !flow.is_complete() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    Ok(())
}
