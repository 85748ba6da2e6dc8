//! Experiment 1, connection cost: for TCP, TLS 1.2, TLS 1.3, QUIC and QUIC 0-RTT over each
//! link type, the time until the transport is secure, until CONNACK and until the first
//! PUBLISH reaches a subscriber; and the bytes and packets on the wire to reach CONNECTED,
//! then PUBLISHED, SUBSCRIBED and DISCONNECTED, each counted from the state before (the
//! Raspberry Pi study's table 3 counted the same states). Links run without random loss here:
//! the handshake's cost, not its retransmissions, is measured.
//!
//! Each repetition builds one lab: the measured client on the link type, our broker behind an
//! ideal link, and a subscriber inside the broker host (local, so its traffic crosses no
//! emulated link). Timings come from a first connection that goes straight through; byte
//! counts from a second one that pauses after each state until every acknowledgement has
//! crossed (2 RTT + 250 ms, beyond TCP's delayed ACK and QUIC's ack delay).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mquictt_lab::{HostLink, Lab, LabOptions, LinkProfile, Probability, QueueLimit, Topology};
use mquictt_protocol::{Packet, QoS};
use mquictt_transport::{
    ClientTlsSettings, ConnectOptions, Connected, Connector, QuicClientOptions, TransportUrl,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::brokers::{BrokerFiles, RunningBroker};
use crate::error::ExperimentError;
use crate::interface::{read_counters, WireCount};
use crate::plot::{self, Labels, Series};
use crate::probe::{MqttLine, ProbeError};
use crate::run::ClientThread;
use crate::settings::{Progress, Settings};
use crate::stats::{format_value, Spread};
use crate::table::Table;
use crate::transports::{BrokerKind, Transport};

/// The topic of the measured PUBLISH: four bytes, as in the Raspberry Pi study.
const TOPIC: &str = "test";

/// The states whose cost is counted, in the order they are reached.
pub const STATES: [&str; 4] = ["CONNECTED", "PUBLISHED", "SUBSCRIBED", "DISCONNECTED"];

/// One connection measured over one link type.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSample {
    /// The link type.
    pub link: String,
    /// The transport.
    pub transport: Transport,
    /// Repetition number, from 1.
    pub repetition: u32,
    /// Round-trip propagation delay of the path (twice the one-way delays), ms.
    pub rtt_ms: f64,
    /// From the first packet to a usable secure (or, for TCP, open) transport, ms.
    pub secure_ms: f64,
    /// From the first packet to CONNACK, ms.
    pub connack_ms: f64,
    /// From the first packet to the first PUBLISH arriving at a subscriber, ms.
    pub first_publish_ms: f64,
    /// Traffic to reach each of [`STATES`], each from the state before.
    pub wire: [WireCount; 4],
    /// For QUIC 0-RTT, whether the broker accepted the early data.
    pub zero_rtt_accepted: Option<bool>,
}

/// What the experiment produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionResults {
    /// Every measured connection.
    pub samples: Vec<ConnectionSample>,
    /// Runs the relay flagged as late (their timings are less trustworthy).
    pub flagged_runs: u32,
}

/// Runs the experiment and writes `connection.csv`, `connection_summary.csv` and the charts.
pub fn run(
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<ConnectionResults, ExperimentError> {
    let scenario = settings
        .selected_scenarios()?
        .into_iter()
        .next()
        .ok_or_else(|| ExperimentError::Selection("no scenario selected".to_owned()))?;
    let links = settings.selected_links(scenario)?;
    let repetitions: u32 = if settings.quick {
        1
    } else {
        settings.seeds.max(1) + 2
    };
    progress.begin(
        "connection cost",
        links.len() as u64 * u64::from(repetitions),
    );
    let work = tempdir(settings, "connection")?;
    let files = BrokerFiles::prepare(&work)?;
    files.set_quic_mtu_discovery(settings.quic_mtu_discovery)?;
    let mut results = ConnectionResults::default();
    for link in &links {
        for repetition in 1..=repetitions {
            let (samples, flagged) = run_one(settings, &files, link, repetition)?;
            if flagged {
                results.flagged_runs += 1;
                progress.note(&format!(
                    "connection {} #{repetition}: the relay ran late; timings flagged",
                    link.name
                ));
            }
            results.samples.extend(samples);
            progress.step(&format!("{} #{repetition}", link.name));
        }
    }
    write_outputs(&settings.out_dir, &results)?;
    progress.end("connection cost");
    let _ = std::fs::remove_dir_all(&work);
    Ok(results)
}

pub(crate) fn tempdir(
    settings: &Settings,
    name: &str,
) -> Result<std::path::PathBuf, ExperimentError> {
    let dir = settings.out_dir.join(format!(".work-{name}"));
    std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
    Ok(dir)
}

/// One lab: every transport in turn over `link` without loss.
fn run_one(
    settings: &Settings,
    files: &BrokerFiles,
    link: &LinkProfile,
    repetition: u32,
) -> Result<(Vec<ConnectionSample>, bool), ExperimentError> {
    let lossless = link.with_loss(Probability::ZERO);
    let client_link = HostLink::symmetric(lossless.link_config(QueueLimit::default()));
    let topology =
        Topology::star(HostLink::default(), vec![client_link]).with_seed(u64::from(repetition));
    let lab = Lab::start_with(topology, lab_options())?;
    let broker = RunningBroker::start(
        BrokerKind::Mquictt,
        lab.broker(),
        files,
        &settings.broker_program,
        None,
    )?;
    let (arrivals_tx, arrivals_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let subscriber = ClientThread::spawn(lab.broker(), move || {
        local_subscriber(ready_tx, arrivals_tx)
    })?;
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| {
            ExperimentError::Client("the local subscriber did not subscribe".to_owned())
        })?;

    let rtt = 2 * link.delay;
    let tls = files.client_tls()?;
    let link_name = link.name.clone();
    let mtu_discovery = settings.quic_mtu_discovery;
    let client = lab
        .client(0)
        .ok_or_else(|| ExperimentError::Client("no client host".to_owned()))?;
    let measured = ClientThread::spawn(client, move || async move {
        let mut arrivals = arrivals_rx;
        let mut samples = Vec::new();
        for transport in Transport::CONNECTION {
            let sample = measure(transport, &tls, rtt, &mut arrivals, mtu_discovery)
                .await
                .map_err(|e| format!("{transport} over {link_name}: {e}"))?;
            samples.push(ConnectionSample {
                link: link_name.clone(),
                repetition,
                ..sample
            });
        }
        Ok::<_, String>(samples)
    })?;
    let samples = measured.join()?.map_err(ExperimentError::Client);
    drop(broker);
    let _ = subscriber.join();
    let stats = lab.finish()?;
    Ok((samples?, stats.is_flagged()))
}

pub(crate) fn lab_options() -> LabOptions {
    LabOptions {
        // The CLI handles Ctrl-C itself and tears the namespaces down.
        handle_signals: false,
        ..LabOptions::default()
    }
}

/// A subscriber to [`TOPIC`] over TCP inside the broker host; reports each arrival's time.
async fn local_subscriber(
    ready: std::sync::mpsc::Sender<()>,
    arrivals: mpsc::UnboundedSender<Instant>,
) -> Result<(), ProbeError> {
    let url = BrokerKind::Mquictt.url(Transport::Tcp);
    let addr = url.trim_start_matches("mqtt://");
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut line = MqttLine::new(stream);
    line.connect("local-subscriber", Duration::from_secs(600))
        .await?;
    line.subscribe(TOPIC, QoS::AtMostOnce, 1).await?;
    let _ = ready.send(());
    loop {
        if let Packet::Publish(_) = line.recv().await? {
            let _ = arrivals.send(Instant::now());
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times one connection, then counts the bytes of another.
async fn measure(
    transport: Transport,
    ca: &ClientTlsSettings,
    rtt: Duration,
    arrivals: &mut mpsc::UnboundedReceiver<Instant>,
    mtu_discovery: bool,
) -> Result<ConnectionSample, ProbeError> {
    let url = TransportUrl::parse(&BrokerKind::Mquictt.url(transport))
        .map_err(|e| ProbeError::Invalid(e.to_string()))?;
    let options = ConnectOptions {
        timeout: Duration::from_secs(20),
        quic: QuicClientOptions {
            zero_rtt: transport == Transport::QuicZeroRtt,
            mtu_discovery,
            ..QuicClientOptions::default()
        },
    };
    let connector = Arc::new(
        Connector::with_options(&transport.client_tls(ca.clone()), options)
            .map_err(|e| ProbeError::Invalid(e.to_string()))?,
    );
    let settle = 2 * rtt + Duration::from_millis(250);
    if transport == Transport::QuicZeroRtt {
        // A first, full connection leaves a session ticket in the connector.
        let (mut line, connected) = open(&connector, &url).await?;
        line.connect("warm-up", Duration::from_secs(60)).await?;
        tokio::time::sleep(settle).await;
        close(line, connected.quic.as_ref()).await?;
        tokio::time::sleep(settle).await;
    }

    // Timing: nothing between the steps.
    while arrivals.try_recv().is_ok() {}
    let start = Instant::now();
    let (mut line, connected) = open(&connector, &url).await?;
    let secure = start.elapsed();
    line.connect("measured", Duration::from_secs(60)).await?;
    let connack = start.elapsed();
    line.publish_qos0(TOPIC, Bytes::new()).await?;
    let arrival = tokio::time::timeout(Duration::from_secs(20), arrivals.recv())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            ProbeError::Invalid("the PUBLISH never reached the subscriber".to_owned())
        })?;
    let first_publish = arrival.saturating_duration_since(start);
    let zero_rtt_accepted = match &connected.quic {
        Some(quic) if transport == Transport::QuicZeroRtt => Some(
            quic.zero_rtt_accepted()
                .await
                .map_err(|e| ProbeError::Invalid(e.to_string()))?,
        ),
        _ => None,
    };
    tokio::time::sleep(settle).await;
    close(line, connected.quic.as_ref()).await?;
    tokio::time::sleep(settle).await;

    // Bytes: wait after each state until its last acknowledgement has crossed.
    let before = read_counters();
    let (mut line, connected) = open(&connector, &url).await?;
    line.connect("counted", Duration::from_secs(60)).await?;
    tokio::time::sleep(settle).await;
    let connected_at = read_counters();
    line.publish_qos0(TOPIC, Bytes::new()).await?;
    tokio::time::sleep(settle).await;
    let published_at = read_counters();
    line.subscribe("test/sub", QoS::AtMostOnce, 1).await?;
    tokio::time::sleep(settle).await;
    let subscribed_at = read_counters();
    close(line, connected.quic.as_ref()).await?;
    tokio::time::sleep(settle).await;
    let disconnected_at = read_counters();
    // The measured PUBLISH of this connection also reached the local subscriber.
    while arrivals.try_recv().is_ok() {}

    Ok(ConnectionSample {
        link: String::new(),
        transport,
        repetition: 0,
        rtt_ms: ms(rtt),
        secure_ms: ms(secure),
        connack_ms: ms(connack),
        first_publish_ms: ms(first_publish),
        wire: [
            connected_at - before,
            published_at - connected_at,
            subscribed_at - published_at,
            disconnected_at - subscribed_at,
        ],
        zero_rtt_accepted,
    })
}

async fn open(
    connector: &Connector,
    url: &TransportUrl,
) -> Result<(MqttLine<mquictt_transport::BoxStream>, ConnectedInfo), ProbeError> {
    let Connected { stream, quic, .. } = connector
        .connect(url)
        .await
        .map_err(|e| ProbeError::Invalid(e.to_string()))?;
    Ok((MqttLine::new(stream), ConnectedInfo { quic }))
}

/// What stays of a connection once its stream went into the [`MqttLine`].
struct ConnectedInfo {
    quic: Option<mquictt_transport::QuicClientConnection>,
}

/// DISCONNECT, then closes the transport (QUIC: CONNECTION_CLOSE once the stream is done).
async fn close(
    mut line: MqttLine<mquictt_transport::BoxStream>,
    quic: Option<&mquictt_transport::QuicClientConnection>,
) -> Result<(), ProbeError> {
    line.disconnect().await?;
    // The broker closes its side after DISCONNECT; reading to the end waits for that.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while line.recv().await.is_ok() {}
    })
    .await;
    if let Some(quic) = quic {
        quic.connection().close(0u32.into(), b"");
        quic.endpoint().wait_idle().await;
    }
    Ok(())
}

/// Writes the per-connection CSV, the summary CSV and the charts.
fn write_outputs(out: &Path, results: &ConnectionResults) -> Result<(), ExperimentError> {
    samples_table(results).write_csv(&out.join("connection.csv"))?;
    summary_table(results).write_csv(&out.join("connection_summary.csv"))?;
    let links = link_names(results);
    let series = |value: fn(&ConnectionSample) -> f64| -> Vec<Series<f64>> {
        Transport::CONNECTION
            .iter()
            .map(|&t| Series {
                name: t.label().to_owned(),
                values: links
                    .iter()
                    .map(|l| median_of(results, l, t, value))
                    .collect(),
            })
            .collect()
    };
    plot::grouped_bars(
        out,
        "connection_connack",
        &Labels::new("Time to CONNACK (median)", "link type", "ms"),
        &links,
        &series(|s| s.connack_ms),
    )?;
    plot::grouped_bars(
        out,
        "connection_round_trips",
        &Labels::new(
            "Round trips to the first delivered PUBLISH (median)",
            "link type",
            "round trips (time / RTT)",
        ),
        &links,
        &series(|s| s.first_publish_ms / s.rtt_ms),
    )?;
    let states: Vec<String> = STATES.iter().map(|s| (*s).to_owned()).collect();
    let first_link = links.first().cloned().unwrap_or_default();
    let bytes: Vec<Series<f64>> = Transport::CONNECTION
        .iter()
        .map(|&t| Series {
            name: t.label().to_owned(),
            values: (0..STATES.len())
                .map(|i| {
                    median_of(results, &first_link, t, |s| {
                        s.wire.get(i).map_or(f64::NAN, |w| w.bytes as f64)
                    })
                })
                .collect(),
        })
        .collect();
    plot::grouped_bars(
        out,
        "connection_bytes",
        &Labels::new(
            format!("IP bytes to reach each state ({first_link})"),
            "state (each from the one before)",
            "bytes",
        ),
        &states,
        &bytes,
    )?;
    Ok(())
}

/// The link types measured, in order of first appearance.
pub fn link_names(results: &ConnectionResults) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in &results.samples {
        if !names.contains(&s.link) {
            names.push(s.link.clone());
        }
    }
    names
}

/// The median of `value` over the repetitions of one link and transport.
pub fn median_of(
    results: &ConnectionResults,
    link: &str,
    transport: Transport,
    value: impl Fn(&ConnectionSample) -> f64,
) -> f64 {
    Spread::of(
        results
            .samples
            .iter()
            .filter(|s| s.link == link && s.transport == transport)
            .map(&value),
    )
    .median
}

fn samples_table(results: &ConnectionResults) -> Table {
    let mut table = Table::new(&[
        "link",
        "transport",
        "repetition",
        "rtt_ms",
        "secure_ms",
        "connack_ms",
        "first_publish_ms",
        "connected_bytes",
        "connected_packets",
        "published_bytes",
        "published_packets",
        "subscribed_bytes",
        "subscribed_packets",
        "disconnected_bytes",
        "disconnected_packets",
        "zero_rtt_accepted",
    ]);
    for s in &results.samples {
        let mut row = vec![
            s.link.clone(),
            s.transport.label().to_owned(),
            s.repetition.to_string(),
            format_value(s.rtt_ms, 1),
            format_value(s.secure_ms, 2),
            format_value(s.connack_ms, 2),
            format_value(s.first_publish_ms, 2),
        ];
        for w in &s.wire {
            row.push(w.bytes.to_string());
            row.push(w.packets.to_string());
        }
        row.push(s.zero_rtt_accepted.map_or(String::new(), |a| a.to_string()));
        table.push(row);
    }
    table
}

/// Medians per link and transport, with round trips (time divided by the path's RTT).
pub fn summary_table(results: &ConnectionResults) -> Table {
    let mut table = Table::new(&[
        "link",
        "transport",
        "runs",
        "secure_ms",
        "connack_ms",
        "first_publish_ms",
        "secure_rtts",
        "connack_rtts",
        "first_publish_rtts",
        "connected_bytes",
        "connected_packets",
        "published_bytes",
        "subscribed_bytes",
        "disconnected_bytes",
    ]);
    for link in link_names(results) {
        for transport in Transport::CONNECTION {
            let runs = results
                .samples
                .iter()
                .filter(|s| s.link == link && s.transport == transport)
                .count();
            if runs == 0 {
                continue;
            }
            let m =
                |value: fn(&ConnectionSample) -> f64| median_of(results, &link, transport, value);
            table.push(vec![
                link.clone(),
                transport.label().to_owned(),
                runs.to_string(),
                format_value(m(|s| s.secure_ms), 1),
                format_value(m(|s| s.connack_ms), 1),
                format_value(m(|s| s.first_publish_ms), 1),
                format_value(m(|s| s.secure_ms / s.rtt_ms), 2),
                format_value(m(|s| s.connack_ms / s.rtt_ms), 2),
                format_value(m(|s| s.first_publish_ms / s.rtt_ms), 2),
                format_value(m(|s| s.wire[0].bytes as f64), 0),
                format_value(m(|s| s.wire[0].packets as f64), 0),
                format_value(m(|s| s.wire[1].bytes as f64), 0),
                format_value(m(|s| s.wire[2].bytes as f64), 0),
                format_value(m(|s| s.wire[3].bytes as f64), 0),
            ]);
        }
    }
    table
}
