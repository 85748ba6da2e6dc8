//! `mquictt bench`: the load generator's command line. `conn`, `idle`, `pub`, `sub`, `fanin`,
//! `fanout` and `p2p` turn flags into a target and a load spec, run it with a progress bar and
//! print the summary (and `--csv`); `compare` runs the side-by-side comparison with Mosquitto
//! and, with `--load-curve`, the broker CPU and memory curve, and writes their markdown, CSV
//! and charts. The work is done by the `mquictt-bench` library.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use mquictt_bench::compare::load_curve::{self, LoadCurveConfig, LoadCurvePoint};
use mquictt_bench::compare::{self, table, CompareConfig, CONNECTIONS_PER_SOURCE};
use mquictt_bench::{
    run as run_load, summary_table, write_csv, LoadSpec, Progress, Scenario, Target,
};
use mquictt_protocol::{ProtocolVersion, QoS};
use mquictt_transport::{ClientTlsSettings, QuicClientOptions, TransportKind, TransportUrl};

use crate::quic_datagrams::{parse_max_udp_payload, parse_socket_buffer};

/// `mquictt bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The load shapes and the comparison. Boxed, so that `mquictt`'s command enum stays small.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Open N connections at --connect-rate and hold them for --duration; report connect
    /// latency percentiles and failures.
    Conn(Box<LoadArgs>),
    /// Like conn, for memory measurements: keep alive 600 s unless --keep-alive says otherwise.
    Idle(Box<LoadArgs>),
    /// N publishers on --topic (`%i` is the client index).
    Pub(Box<LoadArgs>),
    /// N subscribers on --topic, measuring latency of messages from `mquictt bench pub`.
    Sub(Box<LoadArgs>),
    /// N publishers on topic/%i, one subscriber on topic/+.
    Fanin(Box<LoadArgs>),
    /// One publisher, N subscribers on one topic.
    Fanout(Box<LoadArgs>),
    /// N publisher/subscriber pairs, pair i on topic/%i.
    P2p(Box<LoadArgs>),
    /// Start Mosquitto and this broker on loopback, run the same scenarios against each,
    /// alternating, and print a table of ratios (ours / Mosquitto).
    Compare(Box<CompareArgs>),
}

/// Flags of every load shape.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Broker URL: mqtt://, mqtts://, ws://, wss:// or quic:// with host and port.
    #[arg(short = 'u', long, default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,
    /// N: connections, publishers, subscribers or pairs, depending on the shape.
    #[arg(short = 'c', long, default_value_t = 10)]
    pub clients: usize,
    /// Topic pattern; `%i` becomes the client index. Default per shape, e.g. bench/p2p/%i.
    #[arg(short = 't', long)]
    pub topic: Option<String>,
    /// QoS of publishes and subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (at least 20: the timestamp header).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    pub payload_size: usize,
    /// Messages per second per publisher; unlimited when absent.
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// How long to publish, or to hold connections: 10s, 1m, 500ms.
    #[arg(short = 'd', long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// New connections per second; all at once when absent.
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// Unacknowledged QoS 1/2 publishes per publisher.
    #[arg(long, default_value_t = 32)]
    pub inflight: u16,
    /// After publishing, how long subscribers may still receive before counting stops.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Local source addresses for mqtt:// connections, comma-separated; ranges like
    /// 127.0.0.1-127.0.0.8. Each address has its own ~28,000 ephemeral ports.
    #[arg(long, value_delimiter = ',', value_name = "ADDR[-ADDR]")]
    pub source: Vec<String>,
    /// MQTT version: 3.1.1 or 5.
    #[arg(long = "mqtt-version", default_value = "3.1.1", value_parser = ["3.1.1", "5"])]
    pub mqtt_version: String,
    /// Keep alive sent in CONNECT (default 60s; 600s for idle).
    #[arg(short = 'k', long, value_parser = humantime::parse_duration)]
    pub keep_alive: Option<Duration>,
    /// CA certificates (PEM) to trust for mqtts://, wss:// and quic://, e.g. the broker's
    /// mquictt-data/certs/ca.pem.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Name to verify the server certificate against, when it differs from the URL's host.
    #[arg(long)]
    pub server_name: Option<String>,
    /// quic:// only: the ceiling of path MTU discovery of every client, in UDP payload bytes
    /// (1200 to 65527; default 1452). Datagrams grow beyond 1,472 bytes only if the broker's
    /// listener sets `quic_max_udp_payload` too; 6500 suits loopback.
    #[arg(long, value_name = "BYTES", value_parser = parse_max_udp_payload)]
    pub quic_max_udp_payload: Option<u16>,
    /// quic:// only: receive and send buffer to request for every client's UDP socket, in
    /// bytes (65536 to 268435456; default 4 MiB, capped by net.core.rmem_max/wmem_max).
    #[arg(long, value_name = "BYTES", value_parser = parse_socket_buffer)]
    pub quic_socket_buffer: Option<usize>,
    /// User name sent in CONNECT.
    #[arg(short = 'U', long)]
    pub username: Option<String>,
    /// Password sent in CONNECT.
    #[arg(short = 'P', long)]
    pub password: Option<String>,
    /// Also write the result as CSV to this file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// Flags of `mquictt bench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A few seconds in all, for tests: small loads, 200 idle connections.
    #[arg(long)]
    pub quick: bool,
    /// The Mosquitto broker binary.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/mosquitto")]
    pub mosquitto: PathBuf,
    /// The mquictt binary whose broker is compared (default: this one; use a release build).
    #[arg(long, value_name = "PATH")]
    pub mquictt: Option<PathBuf>,
    /// Publishing time of each throughput and latency run.
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Connections of the idle-memory case.
    #[arg(long)]
    pub idle_connections: Option<usize>,
    /// Source addresses of the idle connections (default 127.0.0.1 to 127.0.0.N, one address
    /// per 10,000 connections and at least 4).
    #[arg(long, value_delimiter = ',', value_name = "ADDR[-ADDR]")]
    pub source: Vec<String>,
    /// Runs of every case per broker, alternating which goes first; the median is reported,
    /// with how many rounds (each broker's run back to back) met the goal and their range.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Only these kinds of case, comma-separated: e.g. `--only latency --rounds 20` for a
    /// firmer latency verdict without the throughput runs.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND")]
    pub only: Vec<CaseKindArg>,
    /// Messages per second per publisher of the latency cases (10 pairs, QoS 0 and 1), one
    /// pair of cases per rate, comma-separated [default: 1000; 200 with --quick].
    #[arg(long, value_delimiter = ',', value_name = "MSGS_PER_SEC", value_parser = parse_rate)]
    pub latency_rate: Vec<f64>,
    /// Also run the load curve: broker CPU % and RSS with one publisher at full speed and
    /// 10, 20, ... 100 subscribers, QoS 0/1/2, over TCP, TLS and QUIC (with --quick: 2 and 4
    /// subscribers, short steps).
    #[arg(long)]
    pub load_curve: bool,
    /// Run only the load curve, none of the comparison's cases.
    #[arg(long, conflicts_with = "load_curve")]
    pub load_curve_only: bool,
    /// Publishing time of each load-curve point (default 3s; 200ms with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step_duration: Option<Duration>,
    /// Directory for comparison.md, comparison.csv and the comparison's charts, and with the
    /// load curve load_curve.md, load_curve.csv and its charts (charts as SVG and PNG).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The ceiling of QUIC path MTU discovery, in UDP payload bytes (1200 to 65527), on our
    /// broker's QUIC listener (`quic_max_udp_payload`, which switches its discovery on) and
    /// every QUIC client; 6500 suits loopback. Default: neither sets one.
    #[arg(long, value_name = "BYTES", value_parser = parse_max_udp_payload)]
    pub quic_max_udp_payload: Option<u16>,
}

/// The kinds of case `--only` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaseKindArg {
    /// Delivered msgs/s at full speed (TCP, TLS, QUIC).
    Throughput,
    /// p99 latency at a fixed rate.
    Latency,
    /// Memory per idle TCP connection.
    Idle,
}

impl From<CaseKindArg> for compare::CaseKind {
    fn from(kind: CaseKindArg) -> Self {
        match kind {
            CaseKindArg::Throughput => Self::Throughput,
            CaseKindArg::Latency => Self::Latency,
            CaseKindArg::Idle => Self::IdleMemory,
        }
    }
}

/// Why a bench command failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchCliError {
    #[error(transparent)]
    Bench(#[from] mquictt_bench::BenchError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs a bench subcommand.
pub async fn run(args: BenchArgs) -> Result<(), BenchCliError> {
    let (scenario, load) = match args.command {
        BenchCommand::Compare(compare) => return run_compare(*compare).await,
        BenchCommand::Conn(load) => (Scenario::Conn, load),
        BenchCommand::Idle(load) => (Scenario::Idle, load),
        BenchCommand::Pub(load) => (Scenario::Pub, load),
        BenchCommand::Sub(load) => (Scenario::Sub, load),
        BenchCommand::Fanin(load) => (Scenario::FanIn, load),
        BenchCommand::Fanout(load) => (Scenario::FanOut, load),
        BenchCommand::P2p(load) => (Scenario::P2p, load),
    };
    let target = target(scenario, &load)?;
    // Idle connections over plain TCP past the limit wait without a descriptor (Linux 6.8 or
    // later); the bench says so itself when it cannot.
    let idle = scenario.idle_connections(load.clients);
    let idle_needing_files = if target.url.kind == TransportKind::Tcp {
        0
    } else {
        idle
    };
    let connections =
        scenario.publishers(load.clients) + scenario.subscribers(load.clients) + idle_needing_files;
    crate::open_files::raise_for(connections as u64, "the connections asked for", false);
    let all = scenario.publishers(load.clients) + scenario.subscribers(load.clients) + idle;
    if let Some(warning) = one_source_warning(&target, all) {
        eprintln!("{warning}");
    }
    let spec = LoadSpec {
        topic: load
            .topic
            .clone()
            .unwrap_or_else(|| scenario.default_topic().to_owned()),
        qos: QoS::from_u8(load.qos).unwrap_or_default(),
        payload_size: load.payload_size,
        rate: load.rate,
        duration: load.duration,
        connect_rate: load.connect_rate,
        inflight: load.inflight,
        drain: load.drain,
        ..LoadSpec::new(scenario, load.clients)
    };
    let progress = if load.no_progress {
        Progress::hidden()
    } else {
        Progress::on_terminal()
    };
    let report = run_load(&target, &spec, &progress).await?;
    print!("{}", summary_table(&report));
    if let Some(path) = &load.csv {
        write_csv(path, std::slice::from_ref(&report))?;
    }
    Ok(())
}

fn target(scenario: Scenario, load: &LoadArgs) -> Result<Target, BenchCliError> {
    let url = TransportUrl::parse(&load.url).map_err(|e| BenchCliError::Usage(e.to_string()))?;
    let mut tls = match &load.cafile {
        Some(path) => ClientTlsSettings::trusting_ca_file(path)
            .map_err(|e| BenchCliError::Usage(format!("--cafile {}: {e}", path.display())))?,
        None => ClientTlsSettings::default(),
    };
    tls.server_name = load.server_name.clone();
    if url.kind.is_encrypted() && tls.trusted_cas.is_empty() {
        return Err(BenchCliError::Usage(format!(
            "{} needs --cafile with the CA that signed the broker's certificate (for a broker \
             with the development certificate: DATA_DIR/certs/ca.pem)",
            url.kind.scheme()
        )));
    }
    let mut quic = QuicClientOptions {
        max_udp_payload: load.quic_max_udp_payload,
        ..QuicClientOptions::default()
    };
    if let Some(bytes) = load.quic_socket_buffer {
        quic.socket_buffer = bytes;
    }
    let mut target = Target::with_quic(url, &tls, quic)?;
    target.source_addrs = parse_sources(&load.source)?;
    target.version = if load.mqtt_version == "5" {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
    target.keep_alive = load.keep_alive.unwrap_or(match scenario {
        Scenario::Idle => Duration::from_secs(600),
        _ => Duration::from_secs(60),
    });
    target.username = load.username.clone();
    target.password = load.password.clone();
    Ok(target)
}

/// A rate of messages per second per publisher: a positive number.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate: give messages per second, e.g. 1000"
        )),
    }
}

/// What to tell a user who opens many plain TCP connections from one source address, or
/// `None`.
fn one_source_warning(target: &Target, connections: usize) -> Option<String> {
    (target.url.kind == TransportKind::Tcp
        && target.source_addrs.is_empty()
        && connections > 2 * CONNECTIONS_PER_SOURCE)
        .then(|| {
            format!(
                "warning: {connections} connections from one source address, which has about \
                 28,000 ephemeral ports towards one broker port, and finding a free one slows \
                 down once about half are taken; spread them with --source (one address per \
                 {CONNECTIONS_PER_SOURCE}, e.g. --source 127.0.0.1-127.0.0.{} on loopback)",
                connections.div_ceil(CONNECTIONS_PER_SOURCE)
            )
        })
}

/// Parses `127.0.0.1,127.0.0.5-127.0.0.8` into addresses.
fn parse_sources(items: &[String]) -> Result<Vec<IpAddr>, BenchCliError> {
    let bad = |item: &str| {
        BenchCliError::Usage(format!(
            "--source `{item}`: expected ADDR or IPv4 range ADDR-ADDR"
        ))
    };
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match item.split_once('-') {
            Some((first, last)) => {
                let first: Ipv4Addr = first.trim().parse().map_err(|_| bad(item))?;
                let last: Ipv4Addr = last.trim().parse().map_err(|_| bad(item))?;
                let (first, last) = (u32::from(first), u32::from(last));
                if last < first || last - first >= 65_536 {
                    return Err(bad(item));
                }
                out.extend((first..=last).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
            }
            None => out.push(item.parse().map_err(|_| bad(item))?),
        }
    }
    Ok(out)
}

async fn run_compare(args: CompareArgs) -> Result<(), BenchCliError> {
    let mquictt = match &args.mquictt {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| BenchCliError::Usage(format!("cannot find this program's path: {e}")))?,
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|source| BenchCliError::Write {
            path: dir.clone(),
            source,
        })?;
    }
    let progress = Progress::on_terminal();
    if !args.load_curve_only {
        run_cases(&args, mquictt.clone(), &progress).await?;
    }
    if args.load_curve || args.load_curve_only {
        run_curve(&args, mquictt, &progress).await?;
    }
    Ok(())
}

async fn run_cases(
    args: &CompareArgs,
    mquictt: PathBuf,
    progress: &Progress,
) -> Result<(), BenchCliError> {
    let mut config = if args.quick {
        CompareConfig::quick(mquictt)
    } else {
        CompareConfig::full(mquictt)
    };
    config.mosquitto_program = args.mosquitto.clone();
    config.rounds = args.rounds;
    config.only = args.only.iter().map(|&kind| kind.into()).collect();
    config.latency_rates = args.latency_rate.clone();
    config.quic_max_udp_payload = args.quic_max_udp_payload;
    if let Some(duration) = args.duration {
        config.duration = duration;
    }
    if let Some(n) = args.idle_connections {
        config.idle_connections = n;
        if !config.quick {
            config.source_addrs = CompareConfig::loopback_sources(n);
        }
    }
    if !args.source.is_empty() {
        config.source_addrs = parse_sources(&args.source)?;
    }
    let comparison = compare::compare(&config, progress, |result| {
        eprintln!(
            "{:<32} {} {:>12}  {} {:>12}  rounds at goal: {}",
            result.case.label(),
            result.case.baseline.name(),
            brief(&result.baseline),
            result.case.ours.name(),
            brief(&result.ours),
            table::rounds_at_goal(result)
        );
    })
    .await?;
    let markdown = table::to_markdown(&comparison);
    print!("{markdown}");
    if let Some(dir) = &args.out {
        write_file(&dir.join("comparison.md"), &markdown)?;
        table::write_csv(&dir.join("comparison.csv"), &comparison)?;
        compare::plots::write_plots(dir, &comparison)?;
    }
    Ok(())
}

async fn run_curve(
    args: &CompareArgs,
    mquictt: PathBuf,
    progress: &Progress,
) -> Result<(), BenchCliError> {
    let mut config = if args.quick {
        LoadCurveConfig::quick(mquictt)
    } else {
        LoadCurveConfig::full(mquictt)
    };
    config.mosquitto_program = args.mosquitto.clone();
    config.quic_max_udp_payload = args.quic_max_udp_payload;
    if let Some(step) = args.step_duration {
        config.step_duration = step;
    }
    let curve = load_curve::run_load_curve(&config, progress, |point: &LoadCurvePoint| {
        eprintln!(
            "load curve QoS {} {:>3} subscribers {:<16} CPU {:>5.1} %  RSS {:>7.1} MiB  {}",
            point.qos as u8,
            point.subscribers,
            point.contender.name(),
            point.usage.cpu_percent,
            point.usage.mean_rss_kib as f64 / 1024.0,
            match (&point.report, &point.error) {
                (_, Some(e)) => format!("error: {e}"),
                (Some(r), None) => format!("{:.0} msg/s delivered", r.delivered_per_sec),
                (None, None) => String::new(),
            }
        );
    })
    .await?;
    let markdown = load_curve::to_markdown(&curve);
    print!("{markdown}");
    if let Some(dir) = &args.out {
        write_file(&dir.join("load_curve.md"), &markdown)?;
        load_curve::write_csv(&dir.join("load_curve.csv"), &curve)?;
        load_curve::write_plots(dir, &curve)?;
    }
    Ok(())
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), BenchCliError> {
    std::fs::write(path, text).map_err(|source| BenchCliError::Write {
        path: path.to_owned(),
        source,
    })
}

fn brief(m: &compare::Measurement) -> String {
    match (&m.report, &m.error) {
        (Some(report), _) if report.sent > 0 => format!("{:.0} msg/s", report.delivered_per_sec),
        (Some(report), _) => format!("{} conn", report.connected),
        (None, Some(e)) => format!("failed: {e}"),
        (None, None) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ranges_expand() {
        let parsed = parse_sources(&["127.0.0.1".into(), "127.0.0.3-127.0.0.5".into()]).unwrap();
        let expected: Vec<IpAddr> = ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(parsed, expected);
        assert!(parse_sources(&["127.0.0.5-127.0.0.1".into()]).is_err());
        assert!(parse_sources(&["nonsense".into()]).is_err());
    }

    #[test]
    fn many_connections_from_one_source_are_warned_about() {
        let tls = ClientTlsSettings::default();
        let mut target = Target::parse("mqtt://127.0.0.1:1883", &tls).unwrap();
        assert_eq!(one_source_warning(&target, 20_000), None);
        let warning = one_source_warning(&target, 100_000).unwrap();
        assert!(
            warning.contains("--source 127.0.0.1-127.0.0.10"),
            "{warning}"
        );
        target.source_addrs = parse_sources(&["127.0.0.1-127.0.0.10".into()]).unwrap();
        assert_eq!(one_source_warning(&target, 100_000), None);
        let quic = Target::parse("quic://127.0.0.1:14567", &tls).unwrap();
        assert_eq!(one_source_warning(&quic, 100_000), None);
    }

    #[test]
    fn latency_rates_are_positive_numbers() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-5", "nan", "inf", "fast", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
