//! The head-of-line-blocking lab of the loss sweep: one publisher and one subscriber per
//! transport, 8 topics each (topic 0 the bulk flow most losses hit, topics 1-7 small
//! readings), every pair on its own hosts behind the same lossy link type. Over TCP and
//! single-stream QUIC the topics share one ordered stream; multi-stream QUIC gives each topic
//! its own data stream.

use std::sync::Arc;
use std::time::Duration;

use mquictt_client::{Message, QoS, Subscription};
use mquictt_lab::{HostLink, Lab, LinkProfile, QueueLimit, Topology};
use tokio::sync::oneshot;

use crate::brokers::{BrokerFiles, RunningBroker};
use crate::connection::lab_options;
use crate::delivery::{connect_within, Flow, FlowOptions, RunSpec, SETUP_BUDGET};
use crate::error::ExperimentError;
use crate::multistream::{self, MultiStreamClient};
use crate::run::ClientThread;
use crate::settings::Settings;
use crate::stats::Percentiles;
use crate::sweep::{HolRun, HOL_BULK, HOL_INTERVAL, HOL_SMALL, HOL_TOPICS};
use crate::transports::{BrokerKind, Transport};
use crate::workload::Workload;

/// One lab with a publisher/subscriber pair per transport, 8 topics each.
pub(crate) fn hol_lab(
    settings: &Settings,
    files: &BrokerFiles,
    link: &LinkProfile,
    seed: u64,
    rounds: u32,
) -> Result<(Vec<HolRun>, bool), ExperimentError> {
    let mut transports = vec![Transport::Tcp, Transport::Quic];
    if multistream::broker_supports(settings, files)? {
        transports.push(Transport::QuicMultiStream);
    }
    let client_link = HostLink::symmetric(link.link_config(QueueLimit::default()));
    let topology = Topology::star(HostLink::default(), vec![client_link; 2 * transports.len()])
        .with_seed(seed);
    let lab = Lab::start_with(topology, lab_options())?;
    let broker = RunningBroker::start(
        BrokerKind::Mquictt,
        lab.broker(),
        files,
        &settings.broker_program,
        None,
    )?;
    let tls = files.client_tls()?;
    let drain = settings.drain_deadline();
    let mut threads = Vec::new();
    for (k, &transport) in transports.iter().enumerate() {
        let (publisher, subscriber) = match (lab.client(2 * k), lab.client(2 * k + 1)) {
            (Some(p), Some(s)) => (p, s),
            _ => return Err(ExperimentError::Client("missing client hosts".to_owned())),
        };
        let flows: Arc<Vec<Flow>> = Arc::new((0..HOL_TOPICS).map(|_| Flow::new(rounds)).collect());
        let options = FlowOptions {
            url: BrokerKind::Mquictt.url(transport),
            tls: transport.client_tls(tls.clone()),
            transport,
            id: k,
            spec: RunSpec {
                workload: Workload::Synthetic,
                scenario: "hol".to_owned(),
                link: link.clone(),
                qos: QoS::AtMostOnce,
                seed,
                count: rounds,
                drain,
                interval: HOL_INTERVAL,
                payload_size: None,
            },
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let sub = {
            let (flows, options) = (flows.clone(), options.clone());
            ClientThread::spawn(subscriber, move || hol_subscriber(options, flows, ready_tx))?
        };
        let publ = {
            let (flows, options) = (flows.clone(), options.clone());
            ClientThread::spawn(publisher, move || hol_publisher(options, flows, ready_rx))?
        };
        threads.push((transport, flows, sub, publ));
    }
    let mut runs = Vec::new();
    for (transport, flows, sub, publ) in threads {
        let failure = publ.join()?.err().or(sub.join()?.err());
        let small: Vec<f64> = flows
            .iter()
            .skip(1)
            .flat_map(|f| f.latencies_ms())
            .collect();
        let bulk = flows.first().map(|f| f.latencies_ms()).unwrap_or_default();
        let sent = f64::from(rounds) * (HOL_TOPICS - 1) as f64;
        runs.push(HolRun {
            loss_pct: link.loss.value() * 100.0,
            transport,
            seed,
            small_ratio: small.len() as f64 / sent,
            small: Percentiles::of(&small),
            bulk: Percentiles::of(&bulk),
            failure,
        });
    }
    drop(broker);
    let stats = lab.finish()?;
    Ok((runs, stats.is_flagged()))
}

/// Topic `i` of pair `pair`: each pair has its own root, so pairs never see each other.
fn hol_topic(pair: usize, i: usize) -> String {
    format!("hol-{pair}/{i}")
}

pub(crate) fn hol_size(i: usize) -> usize {
    if i == 0 {
        HOL_BULK
    } else {
        HOL_SMALL
    }
}

fn all_done(flows: &[Flow], drain: Duration) -> bool {
    flows.iter().all(|f| f.is_complete()) || flows.iter().any(|f| f.drained(drain))
}

async fn hol_subscriber(
    options: FlowOptions,
    flows: Arc<Vec<Flow>>,
    ready: oneshot::Sender<()>,
) -> Result<(), String> {
    let drain = options.spec.drain;
    let id = options.id;
    if options.transport == Transport::QuicMultiStream {
        let client = Arc::new(
            MultiStreamClient::connect(&options, &format!("sub-{}", options.id), SETUP_BUDGET)
                .await?,
        );
        let mut tasks = Vec::new();
        let mut subscribed = Vec::new();
        for i in 0..HOL_TOPICS {
            let (tx, rx) = oneshot::channel();
            subscribed.push(rx);
            let (client, flows) = (client.clone(), flows.clone());
            tasks.push(tokio::spawn(async move {
                let record = |payload: &[u8]| {
                    if let Some(flow) = flows.get(i) {
                        flow.mark_received(payload);
                    }
                };
                let stop = || all_done(&flows, drain);
                multistream::receive_topic(&client, hol_topic(id, i), tx, record, stop).await
            }));
        }
        for rx in subscribed {
            let _ = tokio::time::timeout(SETUP_BUDGET, rx).await;
        }
        let _ = ready.send(());
        for task in tasks {
            let _ = task.await;
        }
        client.close();
        return Ok(());
    }
    let (client, mut messages) = connect_within(&options, "sub", SETUP_BUDGET).await?;
    let subscription = Subscription::new(format!("hol-{}/#", options.id), QoS::AtMostOnce)
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(SETUP_BUDGET, client.subscribe(subscription))
        .await
        .map_err(|_| "sub: no SUBACK".to_owned())?
        .map_err(|e| format!("sub: {e}"))?;
    let _ = ready.send(());
    loop {
        match tokio::time::timeout(Duration::from_millis(50), messages.recv()).await {
            Ok(Some(message)) => {
                let topic = message.topic.as_str();
                let index = topic
                    .rsplit('/')
                    .next()
                    .and_then(|i| i.parse::<usize>().ok());
                if let Some(flow) = index.and_then(|i| flows.get(i)) {
                    flow.mark_received(&message.payload);
                }
                if all_done(&flows, drain) {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) if all_done(&flows, drain) => break,
            Err(_) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    Ok(())
}

async fn hol_publisher(
    options: FlowOptions,
    flows: Arc<Vec<Flow>>,
    ready: oneshot::Receiver<()>,
) -> Result<(), String> {
    let rounds = options.spec.count;
    let drain = options.spec.drain;
    let id = options.id;
    let finish = |flows: &[Flow]| flows.iter().for_each(Flow::publishing_done);
    if options.transport == Transport::QuicMultiStream {
        let connected =
            MultiStreamClient::connect(&options, &format!("pub-{}", options.id), SETUP_BUDGET)
                .await;
        let subscribed = tokio::time::timeout(2 * SETUP_BUDGET, ready).await;
        let client = match (connected, subscribed) {
            (Ok(client), Ok(Ok(()))) => Arc::new(client),
            (Err(e), _) => {
                finish(&flows);
                return Err(e);
            }
            (Ok(_), _) => {
                finish(&flows);
                return Err("sub: not subscribed in time".to_owned());
            }
        };
        let mut tasks = Vec::new();
        for i in 0..HOL_TOPICS {
            let (client, flows) = (client.clone(), flows.clone());
            tasks.push(tokio::spawn(async move {
                let sent = |seq: u32| {
                    if let Some(flow) = flows.get(i) {
                        flow.mark_sent(seq);
                    }
                };
                multistream::publish_topic(
                    &client,
                    hol_topic(id, i),
                    rounds,
                    hol_size(i),
                    HOL_INTERVAL,
                    sent,
                )
                .await
            }));
        }
        let mut failure = None;
        for task in tasks {
            if let Ok(Err(e)) = task.await {
                failure = Some(e);
            }
        }
        finish(&flows);
        while !all_done(&flows, drain) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.close();
        return failure.map_or(Ok(()), Err);
    }
    let connected = connect_within(&options, "pub", SETUP_BUDGET).await;
    let subscribed = tokio::time::timeout(2 * SETUP_BUDGET, ready).await;
    let (client, _messages) = match (connected, subscribed) {
        (Ok(pair), Ok(Ok(()))) => pair,
        (Err(e), _) => {
            finish(&flows);
            return Err(e);
        }
        (Ok(_), _) => {
            finish(&flows);
            return Err("sub: not subscribed in time".to_owned());
        }
    };
    let mut ticker = tokio::time::interval(HOL_INTERVAL);
    for seq in 0..rounds {
        ticker.tick().await;
        for i in 0..HOL_TOPICS {
            let payload = crate::workload::sized_payload(seq, hol_size(i));
            let message =
                Message::new(hol_topic(options.id, i), payload).map_err(|e| e.to_string())?;
            if let Some(flow) = flows.get(i) {
                flow.mark_sent(seq);
            }
            client.publish(message).map_err(|e| format!("pub: {e}"))?;
        }
    }
    finish(&flows);
    while !all_done(&flows, drain) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    Ok(())
}
