//! The comparison as text: markdown tables of ratios (ours / Mosquitto) for throughput,
//! latency and idle memory, with the goals of the performance work beside them, and a CSV
//! with every run's full report plus broker CPU and memory.

use std::fmt::Write as _;
use std::path::Path;

use mquictt_protocol::QoS;

use super::{CaseKind, CaseResult, Comparison, Measurement};
use crate::error::BenchError;
use crate::report::{csv_row, human_us, CSV_HEADER};

/// Delivered msgs/s ours / Mosquitto the QoS 0 throughput cases aim for.
pub const QOS0_THROUGHPUT_GOAL: f64 = 1.5;
/// Delivered msgs/s ours / Mosquitto the QoS 1 throughput cases aim for.
pub const QOS1_THROUGHPUT_GOAL: f64 = 1.2;
/// Resident memory per idle TCP connection the broker aims to stay under, KiB.
pub const IDLE_RSS_GOAL_KIB: f64 = 2.0;

fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (theirs > 0.0 && ours.is_finite()).then(|| ours / theirs)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn delivered(m: &Measurement) -> Option<f64> {
    m.report.as_ref().map(|r| r.delivered_per_sec)
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

/// Whether the ratio meets the goal of its case; `None` when the case has no goal.
pub fn meets_goal(result: &CaseResult) -> Option<bool> {
    match result.case.kind {
        CaseKind::Throughput => {
            let goal = match result.case.spec.qos {
                QoS::AtMostOnce => QOS0_THROUGHPUT_GOAL,
                _ => QOS1_THROUGHPUT_GOAL,
            };
            ratio(delivered(&result.ours)?, delivered(&result.mosquitto)?).map(|r| r >= goal)
        }
        CaseKind::Latency => {
            let ours = result.ours.report.as_ref()?.latency.p99_us;
            let theirs = result.mosquitto.report.as_ref()?.latency.p99_us;
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

/// The comparison as markdown: one table per case kind.
pub fn to_markdown(comparison: &Comparison) -> String {
    let mut out = String::new();
    let of = |kind| {
        comparison
            .results
            .iter()
            .filter(move |r| r.case.kind == kind)
    };

    if of(CaseKind::Throughput).next().is_some() {
        out.push_str(
            "| scenario | clients | QoS | payload | Mosquitto msg/s | MQuicTT msg/s | ratio | goal met | \
             lost M / Q | CPU % M / Q | peak RSS MiB M / Q |\n\
             |---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n",
        );
        for r in of(CaseKind::Throughput) {
            let s = &r.case.spec;
            let (m, q) = (&r.mosquitto, &r.ours);
            let _ =
                writeln!(
                out,
                "| {} | {} | {} | {} B | {} | {} | {} | {} | {} / {} | {:.0} / {:.0} | {} / {} |",
                s.scenario,
                s.clients,
                s.qos as u8,
                s.payload_size,
                cell(m, |m| format!("{:.0}", delivered(m).unwrap_or(0.0))),
                cell(q, |q| format!("{:.0}", delivered(q).unwrap_or(0.0))),
                fmt_ratio(delivered(q).zip(delivered(m)).and_then(|(q, m)| ratio(q, m))),
                goal_mark(r),
                lost_percent(m),
                lost_percent(q),
                m.usage.cpu_percent,
                q.usage.cpu_percent,
                mib(m.usage.peak_rss_kib),
                mib(q.usage.peak_rss_kib),
            );
        }
        out.push('\n');
    }

    if of(CaseKind::Latency).next().is_some() {
        out.push_str(
            "| scenario | rate per pair | QoS | Mosquitto p50 / p99 / p99.9 / max | MQuicTT p50 / p99 / p99.9 / max | p99 ratio | goal met | CPU % M / Q |\n\
             |---|---:|---:|---|---|---:|---|---:|\n",
        );
        for r in of(CaseKind::Latency) {
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
            let p99 = |m: &Measurement| m.report.as_ref().map(|rep| rep.latency.p99_us as f64);
            let _ = writeln!(
                out,
                "| {} {} pairs | {} msg/s | {} | {} | {} | {} | {} | {:.0} / {:.0} |",
                s.scenario,
                s.clients,
                s.rate.unwrap_or(0.0),
                s.qos as u8,
                lat(&r.mosquitto),
                lat(&r.ours),
                fmt_ratio(
                    p99(&r.ours)
                        .zip(p99(&r.mosquitto))
                        .and_then(|(q, m)| ratio(q, m))
                ),
                goal_mark(r),
                r.mosquitto.usage.cpu_percent,
                r.ours.usage.cpu_percent,
            );
        }
        out.push('\n');
    }

    if of(CaseKind::IdleMemory).next().is_some() {
        out.push_str(
            "| idle TCP connections | Mosquitto KiB / conn | MQuicTT KiB / conn | ratio | goal met (<= 2 KiB) | connected M / Q | connect p99 M / Q |\n\
             |---:|---:|---:|---:|---|---:|---|\n",
        );
        for r in of(CaseKind::IdleMemory) {
            let per = |m: &Measurement| m.rss_per_connection_kib();
            let connected = |m: &Measurement| m.report.as_ref().map_or(0, |rep| rep.connected);
            let p99 = |m: &Measurement| {
                m.report.as_ref().map_or_else(
                    || "-".to_owned(),
                    |rep| human_us(rep.connect_latency.p99_us),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} / {} | {} / {} |",
                r.case.spec.clients,
                cell(&r.mosquitto, |m| per(m)
                    .map_or("-".into(), |k| format!("{k:.2}"))),
                cell(&r.ours, |q| per(q)
                    .map_or("-".into(), |k| format!("{k:.2}"))),
                fmt_ratio(
                    per(&r.ours)
                        .zip(per(&r.mosquitto))
                        .and_then(|(q, m)| ratio(q, m))
                ),
                goal_mark(r),
                connected(&r.mosquitto),
                connected(&r.ours),
                p99(&r.mosquitto),
                p99(&r.ours),
            );
        }
        out.push('\n');
    }
    let problems: Vec<String> = comparison
        .results
        .iter()
        .flat_map(|r| [&r.mosquitto, &r.ours].map(|m| (r.case.label(), m)))
        .filter_map(|(label, m)| {
            let report_error = m.report.as_ref().and_then(|rep| rep.first_error.clone());
            m.error
                .clone()
                .or(report_error)
                .map(|e| format!("- {label}, {}: {e}", m.broker.name()))
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("Errors seen during the runs:\n\n");
        out.push_str(&problems.join("\n"));
        out.push('\n');
    }
    out
}

/// The CSV header of [`write_csv`]: the case, the broker, its CPU and memory, then the
/// scenario report's columns.
pub fn csv_header() -> String {
    format!("case,kind,broker,cpu_percent,start_rss_kib,peak_rss_kib,error,{CSV_HEADER}")
}

/// Writes every run of `comparison` as CSV.
pub fn write_csv(path: &Path, comparison: &Comparison) -> Result<(), BenchError> {
    let mut text = csv_header();
    text.push('\n');
    for r in &comparison.results {
        for m in [&r.mosquitto, &r.ours] {
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
                "{},{:?},{},{:.1},{},{},\"{}\",{}",
                r.case.label(),
                r.case.kind,
                m.broker.name(),
                m.usage.cpu_percent,
                m.usage.start_rss_kib,
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
