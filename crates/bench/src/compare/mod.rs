//! The side-by-side comparison: Mosquitto and the MQuicTT broker, each started fresh on
//! loopback for every run (see [`process`]), run the same scenarios in one invocation,
//! alternating which goes first so that drift on a shared machine does not favour either.
//! Every case pits MQuicTT over one transport against a baseline [`Contender`]: Mosquitto over
//! the same transport (TCP, TLS), or MQuicTT itself over TCP (the QUIC rows). Cases: delivered
//! msgs/s for fan-in, fan-out and point-to-point with 10 and 100 clients at QoS 0 and 1 with
//! 64 B and 1 KiB payloads over TCP, a subset over TLS and QUIC; latency at a fixed moderate
//! rate both sustain; RSS growth per idle connection. Broker CPU and RSS are sampled during
//! every run. With several rounds the median run of each side is reported, and every round
//! is kept beside it: its two runs ran back to back, so their ratio is the one least touched
//! by drift on a shared machine, and how many rounds met the goal says how firm a median is.
//! [`table`] writes the ratios as markdown and CSV, [`plots`] as charts; [`load_curve`] is
//! the broker CPU and memory study.

mod certificates;
mod contender;
pub mod load_curve;
pub mod plots;
pub mod process;
pub mod sampler;
pub mod table;

pub use certificates::BenchCertificates;
pub use contender::{transport_name, Contender};

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use mquictt_protocol::QoS;
use mquictt_transport::TransportKind;

use crate::error::BenchError;
use crate::progress::Progress;
use crate::spec::{LoadSpec, Scenario};
use crate::stats::ScenarioReport;
use contender::{run_contender, RunSetup};
use process::{BrokerKind, BrokerProcess};
use sampler::ProcessUsage;

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
    /// The kinds of case to run; empty runs them all.
    pub only: Vec<CaseKind>,
    /// Messages per second per publisher of the latency cases, one pair of cases (QoS 0 and
    /// 1) per rate; empty: 1,000 (200 when quick).
    pub latency_rates: Vec<f64>,
    /// The ceiling of QUIC path MTU discovery on our broker's QUIC listener and every QUIC
    /// client (`None`: the defaults; 6500 suits loopback).
    pub quic_max_udp_payload: Option<u16>,
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
            source_addrs: Self::loopback_sources(10_000),
            rounds: 1,
            only: Vec::new(),
            latency_rates: Vec::new(),
            quic_max_udp_payload: None,
        }
    }

    /// Loopback source addresses for `connections` idle connections: 127.0.0.1 to 127.0.0.N
    /// with one address per [`CONNECTIONS_PER_SOURCE`] connections, at least 4.
    pub fn loopback_sources(connections: usize) -> Vec<IpAddr> {
        let count =
            u8::try_from(connections.div_ceil(CONNECTIONS_PER_SOURCE).clamp(4, 254)).unwrap_or(254);
        (1..=count).map(|i| IpAddr::from([127, 0, 0, i])).collect()
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

/// TCP connections from one source address to one broker port that stay clear of trouble:
/// each address has about 28,000 ephemeral ports towards one port, and the kernel's search
/// for a free one slows down once about half are taken (docs/benchmarks.md, *100,000 idle TCP
/// connections*).
pub const CONNECTIONS_PER_SOURCE: usize = 10_000;

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

/// One scenario run by MQuicTT and by a baseline.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is about.
    pub kind: CaseKind,
    /// The load.
    pub spec: LoadSpec,
    /// MQuicTT over the transport under test.
    pub ours: Contender,
    /// What it is measured against.
    pub baseline: Contender,
}

impl Case {
    /// A short label: `fanin 10 QoS 0 64 B TLS`; TCP is not named.
    pub fn label(&self) -> String {
        let s = &self.spec;
        let transport = match self.ours.transport {
            TransportKind::Tcp => String::new(),
            other => format!(" {}", transport_name(other)),
        };
        match self.kind {
            CaseKind::IdleMemory => format!("idle {}{transport}", s.clients),
            _ => format!(
                "{} {} QoS {} {} B{transport}",
                s.scenario, s.clients, s.qos as u8, s.payload_size
            ),
        }
    }

    /// Whether the baseline is MQuicTT itself (the QUIC rows: QUIC against our TCP).
    pub fn against_ourselves(&self) -> bool {
        self.baseline.broker == BrokerKind::Mquictt
    }
}

/// One contender's run of one case.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Which broker over which transport.
    pub contender: Contender,
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

/// One round of a case: each side's run, one right after the other.
#[derive(Debug, Clone)]
pub struct Round {
    /// MQuicTT's run over the transport under test.
    pub ours: Measurement,
    /// The baseline's run.
    pub baseline: Measurement,
}

/// Both sides' runs of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// MQuicTT's median run over the transport under test.
    pub ours: Measurement,
    /// The baseline's median run.
    pub baseline: Measurement,
    /// Every round in the order run.
    pub rounds: Vec<Round>,
    /// The round (index into `rounds`) whose run of ours is the median reported.
    pub ours_round: usize,
    /// The round whose run of the baseline is the median reported.
    pub baseline_round: usize,
}

impl CaseResult {
    /// The result of `rounds`, reporting the run of ours from round `ours_round` and the
    /// baseline's from `baseline_round` (indices into `rounds`, which must hold them).
    pub fn new(case: Case, rounds: Vec<Round>, ours_round: usize, baseline_round: usize) -> Self {
        Self {
            ours: rounds[ours_round].ours.clone(),
            baseline: rounds[baseline_round].baseline.clone(),
            case,
            rounds,
            ours_round,
            baseline_round,
        }
    }
}

/// Every case of a comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// In the order run.
    pub results: Vec<CaseResult>,
}

/// The cases of a full or quick comparison.
pub fn cases(config: &CompareConfig) -> Vec<Case> {
    let tcp = (Contender::MQUICTT_TCP, Contender::MOSQUITTO_TCP);
    let tls = (
        Contender::new(BrokerKind::Mquictt, TransportKind::Tls),
        Contender::new(BrokerKind::Mosquitto, TransportKind::Tls),
    );
    let quic = (
        Contender::new(BrokerKind::Mquictt, TransportKind::Quic),
        Contender::MQUICTT_TCP,
    );
    let throughput = |(ours, baseline), scenario, clients, qos, payload_size| Case {
        kind: CaseKind::Throughput,
        spec: LoadSpec {
            qos,
            payload_size,
            rate: None,
            duration: config.duration,
            drain: Duration::from_secs(3),
            ..LoadSpec::new(scenario, clients)
        },
        ours,
        baseline,
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
        ours: tcp.0,
        baseline: tcp.1,
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
        ours: tcp.0,
        baseline: tcp.1,
    };
    let (q0, q1) = (QoS::AtMostOnce, QoS::AtLeastOnce);
    let mut cases = Vec::new();
    if config.quick {
        cases.push(throughput(tcp, Scenario::FanIn, 4, q0, 64));
        cases.push(throughput(tcp, Scenario::FanOut, 4, q1, 64));
        cases.push(throughput(tcp, Scenario::P2p, 4, q1, 1024));
        cases.push(throughput(tls, Scenario::FanOut, 4, q0, 64));
        cases.push(throughput(quic, Scenario::P2p, 1, q1, 1024));
    } else {
        for qos in [q0, q1] {
            for payload in [64, 1024] {
                for scenario in [Scenario::FanIn, Scenario::FanOut, Scenario::P2p] {
                    for clients in [10, 100] {
                        cases.push(throughput(tcp, scenario, clients, qos, payload));
                    }
                }
            }
        }
        // TLS: the shapes where the broker's own work, not one subscriber's window, sets the
        // pace (fan-in is limited by its single subscriber over any transport).
        for qos in [q0, q1] {
            for payload in [64, 1024] {
                for scenario in [Scenario::FanOut, Scenario::P2p] {
                    cases.push(throughput(tls, scenario, 10, qos, payload));
                }
            }
        }
        // QUIC single stream against our own TCP: one pair is one connection each way, one
        // stream each; ten pairs and a fan-out of ten add the per-connection cost.
        for qos in [q0, q1] {
            for payload in [64, 1024] {
                cases.push(throughput(quic, Scenario::P2p, 1, qos, payload));
            }
            cases.push(throughput(quic, Scenario::P2p, 10, qos, 1024));
            cases.push(throughput(quic, Scenario::FanOut, 10, qos, 1024));
        }
    }
    // By default 10 pairs at 1,000 msg/s each: 10,000 msg/s in all, far below what either
    // broker sustains here, so latency is the brokers' own and not queueing.
    let (pairs, default_rate) = if config.quick {
        (2, 200.0)
    } else {
        (10, 1_000.0)
    };
    let rates = if config.latency_rates.is_empty() {
        vec![default_rate]
    } else {
        config.latency_rates.clone()
    };
    for rate in rates {
        cases.push(latency(pairs, q0, rate));
        cases.push(latency(pairs, q1, rate));
    }
    cases.push(idle);
    cases.retain(|case| config.only.is_empty() || config.only.contains(&case.kind));
    cases
}

/// Runs every case against both sides, alternating which goes first, and reports.
/// `on_result` sees each case as it completes (for live output).
pub async fn compare(
    config: &CompareConfig,
    progress: &Progress,
    mut on_result: impl FnMut(&CaseResult),
) -> Result<Comparison, BenchError> {
    check_programs(config).await?;
    let certificates = BenchCertificates::generate()?;
    let mut results = Vec::new();
    let mut turn = 0usize;
    for case in cases(config) {
        let mut rounds = Vec::new();
        for _ in 0..config.rounds.max(1) {
            let first_ours = turn % 2 == 0;
            turn += 1;
            let (mut ours, mut baseline) = (None, None);
            for run_ours in [first_ours, !first_ours] {
                let contender = if run_ours { case.ours } else { case.baseline };
                let measurement = run_case(
                    config,
                    &case.kind,
                    &case.spec,
                    contender,
                    &certificates,
                    progress,
                )
                .await;
                *(if run_ours { &mut ours } else { &mut baseline }) = Some(measurement);
            }
            if let (Some(ours), Some(baseline)) = (ours, baseline) {
                rounds.push(Round { ours, baseline });
            }
        }
        let medians = (
            median(case.kind, rounds.iter().map(|r| &r.ours)),
            median(case.kind, rounds.iter().map(|r| &r.baseline)),
        );
        if let (Some(ours_round), Some(baseline_round)) = medians {
            let result = CaseResult::new(case, rounds, ours_round, baseline_round);
            on_result(&result);
            results.push(result);
        }
    }
    Ok(Comparison { results })
}

/// Fails early, with the install hint, if a broker is missing or does not start.
async fn check_programs(config: &CompareConfig) -> Result<(), BenchError> {
    for (kind, program) in [
        (BrokerKind::Mosquitto, &config.mosquitto_program),
        (BrokerKind::Mquictt, &config.mquictt_program),
    ] {
        BrokerProcess::start(kind, program).await?.stop().await;
    }
    Ok(())
}

/// The position of the median measurement by the case's metric; failed runs sort last, so
/// one failure among three rounds does not hide two good ones.
fn median<'a>(kind: CaseKind, runs: impl Iterator<Item = &'a Measurement>) -> Option<usize> {
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
    let mut runs: Vec<(usize, &Measurement)> = runs.enumerate().collect();
    runs.sort_by(|a, b| key(a.1).total_cmp(&key(b.1)));
    let middle = runs.len().saturating_sub(1) / 2;
    runs.get(middle).map(|(i, _)| *i)
}

async fn run_case(
    config: &CompareConfig,
    kind: &CaseKind,
    spec: &LoadSpec,
    contender: Contender,
    certificates: &BenchCertificates,
    progress: &Progress,
) -> Measurement {
    let setup = RunSetup {
        mquictt_program: &config.mquictt_program,
        mosquitto_program: &config.mosquitto_program,
        certificates,
        settle: Duration::from_millis(if config.quick { 50 } else { 300 }),
        quic_max_udp_payload: config.quic_max_udp_payload,
    };
    let idle = *kind == CaseKind::IdleMemory;
    let outcome = run_contender(
        &setup,
        contender,
        |target| {
            if idle {
                // "Idle" as in the goal: CONNECT done, keep alive 600 s, nothing else.
                target.keep_alive = Duration::from_secs(600);
                target.source_addrs = config.source_addrs.clone();
            }
        },
        spec,
        progress,
    )
    .await;
    match outcome {
        Ok(done) => Measurement {
            contender,
            error: (!done.survived).then(|| "the broker died during the run".to_owned()),
            usage: done.trace.usage(),
            report: Some(done.report),
        },
        Err(error) => Measurement {
            contender,
            report: None,
            usage: ProcessUsage::default(),
            error: Some(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_get_one_loopback_source_per_ten_thousand() {
        let first = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(CompareConfig::loopback_sources(200).len(), 4);
        assert_eq!(CompareConfig::loopback_sources(10_000).len(), 4);
        assert_eq!(CompareConfig::loopback_sources(100_000).len(), 10);
        assert_eq!(CompareConfig::loopback_sources(100_001).len(), 11);
        assert_eq!(CompareConfig::loopback_sources(100_000)[0], first);
        assert_eq!(CompareConfig::loopback_sources(usize::MAX).len(), 254);
    }
}
