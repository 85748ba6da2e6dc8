//! The load curve of the Raspberry Pi study: broker CPU % and resident memory with one
//! publisher at full speed and 10, 20, ... 100 subscribers on its topic (fan-out), at QoS 0, 1
//! and 2, for MQuicTT over TCP, TLS and QUIC and Mosquitto over TCP and TLS. Every point runs
//! against a fresh broker process; its CPU time and RSS are sampled from `/proc` every 100 ms
//! and reported over the publishing phase only, so connecting a hundred subscribers and
//! draining their queues do not dilute the figure. Writes a markdown table, a CSV and line
//! charts (one line per broker and transport, one chart per metric and QoS).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mquictt_protocol::QoS;
use mquictt_transport::TransportKind;

use super::certificates::BenchCertificates;
use super::contender::{run_contender, transport_name, Contender, RunSetup};
use super::process::{default_mosquitto_program, BrokerKind};
use super::sampler::ProcessUsage;
use crate::error::BenchError;
use crate::progress::Progress;
use crate::spec::{LoadSpec, Scenario};
use crate::stats::ScenarioReport;
use mquictt_charts::{self as plot, Labels, Series};

/// What a load curve runs.
#[derive(Debug, Clone)]
pub struct LoadCurveConfig {
    /// The `mquictt` binary (release build for meaningful numbers).
    pub mquictt_program: PathBuf,
    /// The `mosquitto` binary.
    pub mosquitto_program: PathBuf,
    /// Subscriber counts, one point each.
    pub subscribers: Vec<usize>,
    /// QoS of the publisher and the subscriptions, one curve each.
    pub qos: Vec<QoS>,
    /// Brokers and transports, one curve each.
    pub contenders: Vec<Contender>,
    /// Publishing time of each point.
    pub step_duration: Duration,
    /// Payload bytes per message.
    pub payload_size: usize,
    /// How long subscribers may drain after publishing stops.
    pub drain: Duration,
    /// Wait after a broker starts before sampling begins.
    pub settle: Duration,
    /// The ceiling of QUIC path MTU discovery on our broker's QUIC listener and every QUIC
    /// client (`None`: the defaults).
    pub quic_max_udp_payload: Option<u16>,
}

impl LoadCurveConfig {
    /// The study's curve: 10 to 100 subscribers in steps of 10, QoS 0, 1 and 2, 64-byte
    /// payloads, 3 s of publishing per point.
    pub fn full(mquictt_program: PathBuf) -> Self {
        Self {
            mquictt_program,
            mosquitto_program: default_mosquitto_program(),
            subscribers: (1..=10).map(|i| i * 10).collect(),
            qos: vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce],
            contenders: default_contenders(),
            step_duration: Duration::from_secs(3),
            payload_size: 64,
            drain: Duration::from_secs(2),
            settle: Duration::from_millis(300),
            quic_max_udp_payload: None,
        }
    }

    /// A few seconds' version for tests: 2 and 4 subscribers, short steps; every QoS and
    /// contender still runs.
    pub fn quick(mquictt_program: PathBuf) -> Self {
        Self {
            subscribers: vec![2, 4],
            step_duration: Duration::from_millis(200),
            drain: Duration::from_secs(1),
            settle: Duration::from_millis(50),
            ..Self::full(mquictt_program)
        }
    }
}

/// MQuicTT over TCP, TLS and QUIC; Mosquitto over TCP and TLS (it has no QUIC).
pub fn default_contenders() -> Vec<Contender> {
    vec![
        Contender::new(BrokerKind::Mosquitto, TransportKind::Tcp),
        Contender::new(BrokerKind::Mosquitto, TransportKind::Tls),
        Contender::new(BrokerKind::Mquictt, TransportKind::Tcp),
        Contender::new(BrokerKind::Mquictt, TransportKind::Tls),
        Contender::new(BrokerKind::Mquictt, TransportKind::Quic),
    ]
}

/// One point of one curve.
#[derive(Debug, Clone)]
pub struct LoadCurvePoint {
    /// Broker and transport.
    pub contender: Contender,
    /// QoS of the run.
    pub qos: QoS,
    /// Subscribers of the one publisher.
    pub subscribers: usize,
    /// The broker's CPU and memory while the publisher published.
    pub usage: ProcessUsage,
    /// The bench's report; `None` if the run failed.
    pub report: Option<ScenarioReport>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// Every point, in the order run.
#[derive(Debug, Clone, Default)]
pub struct LoadCurve {
    /// The points.
    pub points: Vec<LoadCurvePoint>,
}

impl LoadCurve {
    /// The point of `contender` at `qos` with `subscribers`.
    pub fn point(
        &self,
        contender: Contender,
        qos: QoS,
        subscribers: usize,
    ) -> Option<&LoadCurvePoint> {
        self.points
            .iter()
            .find(|p| p.contender == contender && p.qos == qos && p.subscribers == subscribers)
    }

    fn contenders(&self) -> Vec<Contender> {
        let mut seen = Vec::new();
        for p in &self.points {
            if !seen.contains(&p.contender) {
                seen.push(p.contender);
            }
        }
        seen
    }

    fn values<T: PartialEq + Copy>(&self, of: impl Fn(&LoadCurvePoint) -> T) -> Vec<T> {
        let mut seen = Vec::new();
        for p in &self.points {
            let v = of(p);
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen
    }
}

/// Runs every point: for each QoS and subscriber count, every contender in turn, the first
/// one rotating from step to step so that none always runs on a machine just warmed up by
/// another. `on_point` sees each point as it completes.
pub async fn run_load_curve(
    config: &LoadCurveConfig,
    progress: &Progress,
    mut on_point: impl FnMut(&LoadCurvePoint),
) -> Result<LoadCurve, BenchError> {
    let certificates = BenchCertificates::generate()?;
    let setup = RunSetup {
        mquictt_program: &config.mquictt_program,
        mosquitto_program: &config.mosquitto_program,
        certificates: &certificates,
        settle: config.settle,
        quic_max_udp_payload: config.quic_max_udp_payload,
    };
    let mut curve = LoadCurve::default();
    let mut turn = 0;
    for &qos in &config.qos {
        for &subscribers in &config.subscribers {
            let n = config.contenders.len();
            for k in 0..n {
                let Some(&contender) = config.contenders.get((turn + k) % n) else {
                    continue;
                };
                let point = run_point(config, &setup, contender, qos, subscribers, progress).await;
                on_point(&point);
                curve.points.push(point);
            }
            turn += 1;
        }
    }
    Ok(curve)
}

async fn run_point(
    config: &LoadCurveConfig,
    setup: &RunSetup<'_>,
    contender: Contender,
    qos: QoS,
    subscribers: usize,
    progress: &Progress,
) -> LoadCurvePoint {
    let spec = LoadSpec {
        qos,
        payload_size: config.payload_size,
        rate: None,
        duration: config.step_duration,
        drain: config.drain,
        ..LoadSpec::new(Scenario::FanOut, subscribers)
    };
    let mut point = LoadCurvePoint {
        contender,
        qos,
        subscribers,
        usage: ProcessUsage::default(),
        report: None,
        error: None,
    };
    match run_contender(setup, contender, |_| {}, &spec, progress).await {
        Ok(done) => {
            let from = done.report.publish_started;
            point.usage = done
                .trace
                .usage_between(from, from + done.report.publish_elapsed);
            point.error = (!done.survived)
                .then(|| "the broker died during the run".to_owned())
                .or_else(|| done.report.first_error.clone());
            point.report = Some(done.report);
        }
        Err(e) => point.error = Some(e),
    }
    point
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The curve as markdown: per QoS a table with one row per subscriber count and one column per
/// broker and transport, each cell CPU % / mean RSS MiB / delivered msgs/s.
pub fn to_markdown(curve: &LoadCurve) -> String {
    let mut out = String::new();
    let contenders = curve.contenders();
    for qos in curve.values(|p| p.qos) {
        let _ = writeln!(
            out,
            "QoS {}: broker CPU % / mean RSS MiB / delivered msg/s (all subscribers together)\n",
            qos as u8
        );
        out.push_str("| subscribers |");
        for c in &contenders {
            let _ = write!(out, " {} |", c.name());
        }
        out.push_str("\n|---:|");
        for _ in &contenders {
            out.push_str("---:|");
        }
        out.push('\n');
        for subscribers in curve.values(|p| p.subscribers) {
            let _ = write!(out, "| {subscribers} |");
            for &c in &contenders {
                let text = match curve.point(c, qos, subscribers) {
                    Some(LoadCurvePoint {
                        report: Some(r),
                        usage,
                        ..
                    }) => format!(
                        "{:.0} / {:.1} / {:.0}",
                        usage.cpu_percent,
                        mib(usage.mean_rss_kib),
                        r.delivered_per_sec
                    ),
                    Some(LoadCurvePoint { error: Some(_), .. }) => "failed".to_owned(),
                    _ => "-".to_owned(),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let problems: Vec<String> = curve
        .points
        .iter()
        .filter_map(|p| {
            let e = p.error.as_ref()?;
            Some(format!(
                "- {} QoS {} {} subscribers: {e}",
                p.contender.name(),
                p.qos as u8,
                p.subscribers
            ))
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("Errors seen during the load curve:\n\n");
        out.push_str(&problems.join("\n"));
        out.push('\n');
    }
    out
}

/// The CSV header of [`write_csv`].
pub const CSV_HEADER: &str = "broker,transport,qos,subscribers,cpu_percent,mean_rss_kib,\
peak_rss_kib,start_rss_kib,sent_per_sec,delivered_per_sec,lost,expected,latency_p99_us,error";

/// Writes every point as CSV.
pub fn write_csv(path: &Path, curve: &LoadCurve) -> Result<(), BenchError> {
    let mut text = format!("{CSV_HEADER}\n");
    for p in &curve.points {
        let r = p.report.as_ref();
        let opt = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        let _ = writeln!(
            text,
            "{},{},{},{},{:.1},{},{},{},{:.0},{:.0},{},{},{},\"{}\"",
            p.contender.broker.name(),
            transport_name(p.contender.transport),
            p.qos as u8,
            p.subscribers,
            p.usage.cpu_percent,
            p.usage.mean_rss_kib,
            p.usage.peak_rss_kib,
            p.usage.start_rss_kib,
            r.map_or(0.0, |r| r.sent_per_sec),
            r.map_or(0.0, |r| r.delivered_per_sec),
            opt(r.and_then(|r| r.lost)),
            opt(r.and_then(|r| r.expected)),
            opt(r.map(|r| r.latency.p99_us)),
            p.error.as_deref().unwrap_or_default().replace('"', "'"),
        );
    }
    std::fs::write(path, text).map_err(|source| BenchError::Output {
        path: path.to_owned(),
        source,
    })
}

/// Draws CPU % and mean RSS against subscribers, one chart per metric and QoS
/// (`load_curve_cpu_qos0`, `load_curve_rss_qos0`, ...), each as SVG and PNG in `dir`, one
/// line per broker and transport. Returns the stems written.
pub fn write_plots(dir: &Path, curve: &LoadCurve) -> Result<Vec<String>, BenchError> {
    let mut stems = Vec::new();
    let contenders = curve.contenders();
    type Metric = fn(&LoadCurvePoint) -> f64;
    let metrics: [(&str, &str, &str, Metric); 2] = [
        ("cpu", "Broker CPU", "CPU time, % of one core", |p| {
            p.usage.cpu_percent
        }),
        ("rss", "Broker resident memory", "mean RSS, MiB", |p| {
            mib(p.usage.mean_rss_kib)
        }),
    ];
    for qos in curve.values(|p| p.qos) {
        for (key, title, y, metric) in metrics {
            let series: Vec<Series<(f64, f64)>> = contenders
                .iter()
                .map(|&c| Series {
                    name: c.name(),
                    values: curve
                        .points
                        .iter()
                        .filter(|p| p.contender == c && p.qos == qos)
                        .map(|p| {
                            let value = if p.report.is_some() {
                                metric(p)
                            } else {
                                f64::NAN
                            };
                            (p.subscribers as f64, value)
                        })
                        .collect(),
                })
                .collect();
            let stem = format!("load_curve_{key}_qos{}", qos as u8);
            let labels = Labels {
                title: format!(
                    "{title}, 1 publisher at full speed, QoS {} fan-out",
                    qos as u8
                ),
                x: "subscribers".to_owned(),
                y: y.to_owned(),
            };
            plot::lines(dir, &stem, &labels, &series)?;
            stems.push(stem);
        }
    }
    Ok(stems)
}
