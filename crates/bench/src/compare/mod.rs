//! The side-by-side comparison: Mosquitto and the MQuicTT broker, each started fresh on
//! loopback for every case (see [`process`]), run the same scenarios in one invocation,
//! alternating which goes first so that drift on a shared machine does not favour either.
//! Cases: delivered msgs/s for fan-in, fan-out and point-to-point with 10 and 100 clients at
//! QoS 0 and 1 with 64 B and 1 KiB payloads; latency at a fixed moderate rate both sustain; RSS
//! growth per idle connection. Broker CPU and RSS are sampled during every run; with several
//! rounds the median run of each broker is kept. [`table`] writes the ratios (ours /
//! Mosquitto) as markdown and CSV.

pub mod process;
pub mod table;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use mquictt_protocol::QoS;
use mquictt_transport::ClientTlsSettings;

use crate::error::BenchError;
use crate::progress::Progress;
use crate::runner::run;
use crate::spec::{LoadSpec, Scenario, Target};
use crate::stats::ScenarioReport;
use process::{BrokerKind, BrokerProcess, ProcessSampler, ProcessUsage};

/// What a comparison runs.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The `mquictt` binary (release build for meaningful numbers).
    pub mquictt_program: PathBuf,
    /// The `mosquitto` binary.
    pub mosquitto_program: PathBuf,
    /// A few seconds in all: small client counts, short runs, 200 idle connections. For the
    /// test suite; the numbers mean little.
    pub quick: bool,
    /// Publishing time of each throughput and latency run.
    pub duration: Duration,
    /// Connections of the idle-memory case.
    pub idle_connections: usize,
    /// Local addresses the idle connections are spread over (empty: the system picks).
    pub source_addrs: Vec<IpAddr>,
    /// Runs of every case per broker; the median run (by the case's metric) is reported, so a
    /// burst of other work on the machine does not decide a ratio. Rounds alternate which
    /// broker goes first.
    pub rounds: usize,
}

impl CompareConfig {
    /// The full comparison: 5 s runs and 10,000 idle connections spread over 127.0.0.1-4.
    pub fn full(mquictt_program: PathBuf) -> Self {
        Self {
            mquictt_program,
            mosquitto_program: process::default_mosquitto_program(),
            quick: false,
            duration: Duration::from_secs(5),
            idle_connections: 10_000,
            source_addrs: (1..=4).map(|i| IpAddr::from([127, 0, 0, i])).collect(),
            rounds: 1,
        }
    }

    /// The quick comparison for tests.
    pub fn quick(mquictt_program: PathBuf) -> Self {
        Self {
            quick: true,
            duration: Duration::from_millis(300),
            idle_connections: 200,
            source_addrs: Vec::new(),
            ..Self::full(mquictt_program)
        }
    }
}

/// What a case measures and how its ratio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKind {
    /// Delivered messages per second at an unlimited publish rate: higher is better.
    Throughput,
    /// End-to-end latency at a fixed rate: lower is better.
    Latency,
    /// Resident memory per idle connection: lower is better.
    IdleMemory,
}

/// One scenario run against both brokers.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is about.
    pub kind: CaseKind,
    /// The load.
    pub spec: LoadSpec,
}

impl Case {
    /// A short label: `fanin 10 QoS 0 64 B`.
    pub fn label(&self) -> String {
        let s = &self.spec;
        match self.kind {
            CaseKind::IdleMemory => format!("idle {}", s.clients),
            _ => format!(
                "{} {} QoS {} {} B",
                s.scenario, s.clients, s.qos as u8, s.payload_size
            ),
        }
    }
}

/// One broker's run of one case.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Which broker.
    pub broker: BrokerKind,
    /// The bench's report; `None` if the broker could not be started or measured.
    pub report: Option<ScenarioReport>,
    /// The broker's CPU and memory during the run.
    pub usage: ProcessUsage,
    /// Why there is no report, or what went wrong.
    pub error: Option<String>,
}

impl Measurement {
    /// Resident memory growth per connection in KiB (idle case).
    pub fn rss_per_connection_kib(&self) -> Option<f64> {
        let report = self.report.as_ref()?;
        (report.connected > 0).then(|| {
            self.usage
                .peak_rss_kib
                .saturating_sub(self.usage.start_rss_kib) as f64
                / report.connected as f64
        })
    }
}

/// Both brokers' runs of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// MQuicTT's run.
    pub ours: Measurement,
    /// Mosquitto's run.
    pub mosquitto: Measurement,
}

/// Every case of a comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// In the order run.
    pub results: Vec<CaseResult>,
}

/// The cases of a full or quick comparison.
pub fn cases(config: &CompareConfig) -> Vec<Case> {
    let throughput = |scenario, clients, qos, payload_size| Case {
        kind: CaseKind::Throughput,
        spec: LoadSpec {
            qos,
            payload_size,
            rate: None,
            duration: config.duration,
            drain: Duration::from_secs(3),
            ..LoadSpec::new(scenario, clients)
        },
    };
    let latency = |clients, qos, rate| Case {
        kind: CaseKind::Latency,
        spec: LoadSpec {
            qos,
            rate: Some(rate),
            duration: config.duration,
            drain: Duration::from_secs(3),
            ..LoadSpec::new(Scenario::P2p, clients)
        },
    };
    let idle = Case {
        kind: CaseKind::IdleMemory,
        spec: LoadSpec {
            // Held this long after the last connection is up; keep alive 600 s is set on the
            // target in `run_case`.
            duration: if config.quick {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(3)
            },
            connect_rate: Some(if config.quick { 2_000.0 } else { 5_000.0 }),
            ..LoadSpec::new(Scenario::Idle, config.idle_connections)
        },
    };
    let (q0, q1) = (QoS::AtMostOnce, QoS::AtLeastOnce);
    let mut cases = Vec::new();
    if config.quick {
        cases.push(throughput(Scenario::FanIn, 4, q0, 64));
        cases.push(throughput(Scenario::FanOut, 4, q1, 64));
        cases.push(throughput(Scenario::P2p, 4, q1, 1024));
        cases.push(latency(2, q1, 200.0));
    } else {
        for qos in [q0, q1] {
            for payload in [64, 1024] {
                for scenario in [Scenario::FanIn, Scenario::FanOut, Scenario::P2p] {
                    for clients in [10, 100] {
                        cases.push(throughput(scenario, clients, qos, payload));
                    }
                }
            }
        }
        // 10 pairs at 1,000 msg/s each: 10,000 msg/s in all, far below what either broker
        // sustains here, so latency is the brokers' own and not queueing.
        cases.push(latency(10, q0, 1_000.0));
        cases.push(latency(10, q1, 1_000.0));
    }
    cases.push(idle);
    cases
}

/// Runs every case against both brokers, alternating which goes first, and reports.
/// `on_result` sees each case as it completes (for live output).
pub async fn compare(
    config: &CompareConfig,
    progress: &Progress,
    mut on_result: impl FnMut(&CaseResult),
) -> Result<Comparison, BenchError> {
    // Fail early, with the install hint, if a broker is missing.
    for (kind, program) in [
        (BrokerKind::Mosquitto, &config.mosquitto_program),
        (BrokerKind::Mquictt, &config.mquictt_program),
    ] {
        BrokerProcess::start(kind, program).await?.stop().await;
    }
    let mut results = Vec::new();
    let mut turn = 0usize;
    for case in cases(config) {
        let mut ours = Vec::new();
        let mut mosquitto = Vec::new();
        for _ in 0..config.rounds.max(1) {
            let order = if turn % 2 == 0 {
                [BrokerKind::Mquictt, BrokerKind::Mosquitto]
            } else {
                [BrokerKind::Mosquitto, BrokerKind::Mquictt]
            };
            turn += 1;
            for kind in order {
                let measurement = run_case(config, &case, kind, progress).await;
                match kind {
                    BrokerKind::Mquictt => ours.push(measurement),
                    BrokerKind::Mosquitto => mosquitto.push(measurement),
                }
            }
        }
        if let (Some(ours), Some(mosquitto)) =
            (median(case.kind, ours), median(case.kind, mosquitto))
        {
            let result = CaseResult {
                case,
                ours,
                mosquitto,
            };
            on_result(&result);
            results.push(result);
        }
    }
    Ok(Comparison { results })
}

/// The median measurement by the case's metric; failed runs sort last, so one failure among
/// three rounds does not hide two good ones.
fn median(kind: CaseKind, mut runs: Vec<Measurement>) -> Option<Measurement> {
    let key = |m: &Measurement| -> f64 {
        let missing = f64::INFINITY;
        match kind {
            // Higher is better: sort by the negated rate.
            CaseKind::Throughput => m.report.as_ref().map_or(missing, |r| -r.delivered_per_sec),
            CaseKind::Latency => m
                .report
                .as_ref()
                .map_or(missing, |r| r.latency.p99_us as f64),
            CaseKind::IdleMemory => m.rss_per_connection_kib().unwrap_or(missing),
        }
    };
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = runs.len().saturating_sub(1) / 2;
    (middle < runs.len()).then(|| runs.swap_remove(middle))
}

async fn run_case(
    config: &CompareConfig,
    case: &Case,
    kind: BrokerKind,
    progress: &Progress,
) -> Measurement {
    let failed = |error: String| Measurement {
        broker: kind,
        report: None,
        usage: ProcessUsage::default(),
        error: Some(error),
    };
    let program = match kind {
        BrokerKind::Mosquitto => &config.mosquitto_program,
        BrokerKind::Mquictt => &config.mquictt_program,
    };
    let mut broker = match BrokerProcess::start(kind, program).await {
        Ok(broker) => broker,
        Err(e) => return failed(e.to_string()),
    };
    let target = match Target::parse(
        &format!("mqtt://{}", broker.addr),
        &ClientTlsSettings::default(),
    ) {
        Ok(mut target) => {
            if case.kind == CaseKind::IdleMemory {
                // "Idle" as in the goal: CONNECT done, keep alive 600 s, nothing else.
                target.keep_alive = Duration::from_secs(600);
                target.source_addrs = config.source_addrs.clone();
            }
            target
        }
        Err(e) => return failed(e.to_string()),
    };
    // Let the broker finish starting up before its baseline memory is read.
    let settle = if config.quick { 50 } else { 300 };
    tokio::time::sleep(Duration::from_millis(settle)).await;
    let sampler = match ProcessSampler::start(broker.pid) {
        Ok(sampler) => sampler,
        Err(e) => return failed(format!("cannot read /proc/{}: {e}", broker.pid)),
    };
    let result = run(&target, &case.spec, progress).await;
    let usage = sampler.finish().await.unwrap_or_default();
    let alive = broker.is_running();
    broker.stop().await;
    match result {
        Ok(report) => Measurement {
            broker: kind,
            error: (!alive).then(|| "the broker died during the run".to_owned()),
            report: Some(report),
            usage,
        },
        Err(e) => failed(e.to_string()),
    }
}
