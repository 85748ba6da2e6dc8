//! The comparison as text: markdown tables of ratios (MQuicTT / baseline) for throughput over
//! TCP and TLS (against Mosquitto) and over QUIC (against our own TCP), latency and idle
//! memory, with the goals of the performance work beside them, and a CSV with every run's full
//! report plus broker CPU and memory.

use std::fmt::Write as _;
use std::path::Path;

use mquictt_protocol::QoS;
use mquictt_transport::TransportKind;

use super::{transport_name, CaseKind, CaseResult, Comparison, Measurement};
use crate::error::BenchError;
use crate::report::{csv_row, human_us, CSV_HEADER};

/// Delivered msgs/s ours / Mosquitto the QoS 0 throughput cases aim for.
pub const QOS0_THROUGHPUT_GOAL: f64 = 1.5;
/// Delivered msgs/s ours / Mosquitto the QoS 1 throughput cases aim for.
pub const QOS1_THROUGHPUT_GOAL: f64 = 1.2;
/// Delivered msgs/s over QUIC / over our own TCP that the QUIC rows aim for.
pub const QUIC_TO_TCP_GOAL: f64 = 0.8;
/// Resident memory per idle TCP connection the broker aims to stay under, KiB.
pub const IDLE_RSS_GOAL_KIB: f64 = 2.0;
/// A latency run sustained its rate if its publishers sent at least this share of it.
pub const SUSTAINED_SHARE: f64 = 0.95;

fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (theirs > 0.0 && ours.is_finite()).then(|| ours / theirs)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn delivered(m: &Measurement) -> Option<f64> {
    m.report.as_ref().map(|r| r.delivered_per_sec)
}

/// Delivered msgs/s of MQuicTT over its baseline's (throughput cases).
pub fn throughput_ratio(result: &CaseResult) -> Option<f64> {
    ratio(delivered(&result.ours)?, delivered(&result.baseline)?)
}

/// p99 latency of MQuicTT over its baseline's (latency cases).
pub fn p99_ratio(result: &CaseResult) -> Option<f64> {
    let p99 = |m: &Measurement| m.report.as_ref().map(|r| r.latency.p99_us as f64);
    ratio(p99(&result.ours)?, p99(&result.baseline)?)
}

/// Whether a fixed-rate run kept its rate: the publishers sent at least 95 % of the messages
/// due in the requested duration and nothing was lost. Only then is its latency the broker's
/// and not a backlog's. (Open-loop publishers fall behind only when the broker stops reading
/// them.)
pub fn sustained(m: &Measurement) -> bool {
    let Some(report) = &m.report else {
        return false;
    };
    let Some(rate) = report.rate else {
        return false;
    };
    let due = rate * report.publishers as f64 * report.duration.as_secs_f64();
    report.sent as f64 >= due * SUSTAINED_SHARE && report.lost == Some(0)
}

fn lost_percent(m: &Measurement) -> String {
    match m.report.as_ref().and_then(|r| Some((r.lost?, r.expected?))) {
        Some((_, 0)) | None => "-".to_owned(),
        Some((lost, expected)) => format!("{:.1} %", lost as f64 * 100.0 / expected as f64),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn cell(m: &Measurement, value: impl FnOnce(&Measurement) -> String) -> String {
    match &m.error {
        Some(e) if m.report.is_none() => format!("failed: {e}"),
        _ => value(m),
    }
}

/// The goal a throughput case's ratio is held to.
pub fn throughput_goal(result: &CaseResult) -> f64 {
    if result.case.against_ourselves() {
        QUIC_TO_TCP_GOAL
    } else if result.case.spec.qos == QoS::AtMostOnce {
        QOS0_THROUGHPUT_GOAL
    } else {
        QOS1_THROUGHPUT_GOAL
    }
}

/// Whether the ratio meets the goal of its case; `None` when it cannot be told (a side
/// failed, or a latency run did not sustain its rate).
pub fn meets_goal(result: &CaseResult) -> Option<bool> {
    match result.case.kind {
        CaseKind::Throughput => throughput_ratio(result).map(|r| r >= throughput_goal(result)),
        CaseKind::Latency => {
            if !(sustained(&result.ours) && sustained(&result.baseline)) {
                return None;
            }
            let ours = result.ours.report.as_ref()?.latency.p99_us;
            let theirs = result.baseline.report.as_ref()?.latency.p99_us;
            Some(ours <= theirs)
        }
        CaseKind::IdleMemory => result
            .ours
            .rss_per_connection_kib()
            .map(|kib| kib <= IDLE_RSS_GOAL_KIB),
    }
}

fn goal_mark(result: &CaseResult) -> &'static str {
    match meets_goal(result) {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "-",
    }
}

/// The comparison as markdown: one table per transport for throughput, then latency and idle
/// memory.
pub fn to_markdown(comparison: &Comparison) -> String {
    let mut out = String::new();
    let of = |kind| {
        comparison
            .results
            .iter()
            .filter(move |r| r.case.kind == kind)
    };
    for transport in [TransportKind::Tcp, TransportKind::Tls, TransportKind::Quic] {
        let rows: Vec<&CaseResult> = of(CaseKind::Throughput)
            .filter(|r| r.case.ours.transport == transport)
            .collect();
        if let Some(first) = rows.first() {
            throughput_table(&mut out, transport, first.case.baseline.name(), &rows);
        }
    }
    if of(CaseKind::Latency).next().is_some() {
        latency_table(&mut out, of(CaseKind::Latency));
    }
    if of(CaseKind::IdleMemory).next().is_some() {
        idle_table(&mut out, of(CaseKind::IdleMemory));
    }
    let problems: Vec<String> = comparison
        .results
        .iter()
        .flat_map(|r| [&r.baseline, &r.ours].map(|m| (r.case.label(), m)))
        .filter_map(|(label, m)| {
            let report_error = m.report.as_ref().and_then(|rep| rep.first_error.clone());
            m.error
                .clone()
                .or(report_error)
                .map(|e| format!("- {label}, {}: {e}", m.contender.name()))
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("Errors seen during the runs:\n\n");
        out.push_str(&problems.join("\n"));
        out.push('\n');
    }
    out
}

fn throughput_table(
    out: &mut String,
    transport: TransportKind,
    baseline: String,
    rows: &[&CaseResult],
) {
    let ours = format!("mquictt {}", transport_name(transport));
    let _ = writeln!(
        out,
        "Throughput, {ours} / {baseline} (B = {baseline}, Q = {ours}):\n\n\
         | scenario | clients | QoS | payload | B msg/s | Q msg/s | ratio | goal | goal met | \
         lost B / Q | CPU % B / Q | peak RSS MiB B / Q |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    );
    for r in rows {
        let s = &r.case.spec;
        let (b, q) = (&r.baseline, &r.ours);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} B | {} | {} | {} | {:.1} | {} | {} / {} | {:.0} / {:.0} | {} / {} |",
            s.scenario,
            s.clients,
            s.qos as u8,
            s.payload_size,
            cell(b, |m| format!("{:.0}", delivered(m).unwrap_or(0.0))),
            cell(q, |m| format!("{:.0}", delivered(m).unwrap_or(0.0))),
            fmt_ratio(throughput_ratio(r)),
            throughput_goal(r),
            goal_mark(r),
            lost_percent(b),
            lost_percent(q),
            b.usage.cpu_percent,
            q.usage.cpu_percent,
            mib(b.usage.peak_rss_kib),
            mib(q.usage.peak_rss_kib),
        );
    }
    out.push('\n');
}

fn latency_table<'a>(out: &mut String, rows: impl Iterator<Item = &'a CaseResult>) {
    out.push_str(
        "| scenario | rate per pair | QoS | Mosquitto p50 / p99 / p99.9 / max | MQuicTT p50 / p99 / p99.9 / max | sustained M / Q | p99 ratio | goal met | CPU % M / Q |\n\
         |---|---:|---:|---|---|---|---:|---|---:|\n",
    );
    let yes_no = |m: &Measurement| if sustained(m) { "yes" } else { "**no**" };
    for r in rows {
        let s = &r.case.spec;
        let lat = |m: &Measurement| {
            cell(m, |m| {
                m.report.as_ref().map_or_else(String::new, |rep| {
                    let l = &rep.latency;
                    format!(
                        "{} / {} / {} / {}",
                        human_us(l.p50_us),
                        human_us(l.p99_us),
                        human_us(l.p999_us),
                        human_us(l.max_us)
                    )
                })
            })
        };
        let _ = writeln!(
            out,
            "| {} {} pairs | {} msg/s | {} | {} | {} | {} / {} | {} | {} | {:.0} / {:.0} |",
            s.scenario,
            s.clients,
            s.rate.unwrap_or(0.0),
            s.qos as u8,
            lat(&r.baseline),
            lat(&r.ours),
            yes_no(&r.baseline),
            yes_no(&r.ours),
            fmt_ratio(p99_ratio(r)),
            goal_mark(r),
            r.baseline.usage.cpu_percent,
            r.ours.usage.cpu_percent,
        );
    }
    out.push('\n');
}

fn idle_table<'a>(out: &mut String, rows: impl Iterator<Item = &'a CaseResult>) {
    out.push_str(
        "| idle TCP connections | Mosquitto KiB / conn | MQuicTT KiB / conn | ratio | goal met (<= 2 KiB) | connected M / Q | connect p99 M / Q |\n\
         |---:|---:|---:|---:|---|---:|---|\n",
    );
    for r in rows {
        let per = |m: &Measurement| m.rss_per_connection_kib();
        let connected = |m: &Measurement| m.report.as_ref().map_or(0, |rep| rep.connected);
        let p99 = |m: &Measurement| {
            m.report.as_ref().map_or_else(
                || "-".to_owned(),
                |rep| human_us(rep.connect_latency.p99_us),
            )
        };
        let kib = |m: &Measurement| cell(m, |m| per(m).map_or("-".into(), |k| format!("{k:.2}")));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            r.case.spec.clients,
            kib(&r.baseline),
            kib(&r.ours),
            fmt_ratio(
                per(&r.ours)
                    .zip(per(&r.baseline))
                    .and_then(|(q, m)| ratio(q, m))
            ),
            goal_mark(r),
            connected(&r.baseline),
            connected(&r.ours),
            p99(&r.baseline),
            p99(&r.ours),
        );
    }
    out.push('\n');
}

/// The CSV header of [`write_csv`]: the case, the broker and transport, its CPU and memory,
/// then the scenario report's columns.
pub fn csv_header() -> String {
    format!(
        "case,kind,broker,broker_transport,cpu_percent,start_rss_kib,mean_rss_kib,peak_rss_kib,error,{CSV_HEADER}"
    )
}

/// Writes every run of `comparison` as CSV.
pub fn write_csv(path: &Path, comparison: &Comparison) -> Result<(), BenchError> {
    let mut text = csv_header();
    text.push('\n');
    for r in &comparison.results {
        for m in [&r.baseline, &r.ours] {
            let Some(report) = &m.report else {
                continue;
            };
            let error = m
                .error
                .clone()
                .or(report.first_error.clone())
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "{},{:?},{},{},{:.1},{},{},{},\"{}\",{}",
                r.case.label(),
                r.case.kind,
                m.contender.broker.name(),
                transport_name(m.contender.transport),
                m.usage.cpu_percent,
                m.usage.start_rss_kib,
                m.usage.mean_rss_kib,
                m.usage.peak_rss_kib,
                error.replace('"', "'"),
                csv_row(report)
            );
        }
    }
    std::fs::write(path, text).map_err(|source| BenchError::Output {
        path: path.to_owned(),
        source,
    })
}
