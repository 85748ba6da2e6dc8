//! Turning [`ScenarioReport`]s into text: the summary table printed after a run and the CSV
//! file (`--csv`), one row per run with every count and percentile.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::BenchError;
use crate::stats::{LatencySummary, ScenarioReport};

/// The CSV header; [`csv_row`] writes the fields in this order.
pub const CSV_HEADER: &str = "scenario,transport,url,qos,payload_bytes,clients,publishers,\
subscribers,rate_per_client,duration_s,publish_elapsed_s,delivery_elapsed_s,sent,acked,expected,\
received,duplicates,lost,sent_per_s,delivered_per_s,latency_count,latency_mean_us,latency_p50_us,\
latency_p99_us,latency_p999_us,latency_max_us,connected,connect_failed,connect_p50_us,\
connect_p99_us,connect_p999_us,connect_max_us,client_errors";

/// One CSV line (without newline) for `report`, fields as in [`CSV_HEADER`].
pub fn csv_row(report: &ScenarioReport) -> String {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let l = &report.latency;
    let c = &report.connect_latency;
    format!(
        "{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{},{},{},{},{},{},{:.1},{:.1},{},{:.1},{},{},{},{},{},{},{},{},{},{},{}",
        report.scenario,
        report.transport.scheme(),
        report.url,
        report.qos as u8,
        report.payload_size,
        report.clients,
        report.publishers,
        report.subscribers,
        report.rate.map(|r| r.to_string()).unwrap_or_default(),
        report.duration.as_secs_f64(),
        report.publish_elapsed.as_secs_f64(),
        report.delivery_elapsed.as_secs_f64(),
        report.sent,
        report.acked,
        opt(report.expected),
        report.received,
        report.duplicates,
        opt(report.lost),
        report.sent_per_sec,
        report.delivered_per_sec,
        l.count,
        l.mean_us,
        l.p50_us,
        l.p99_us,
        l.p999_us,
        l.max_us,
        report.connected,
        report.connect_failed,
        c.p50_us,
        c.p99_us,
        c.p999_us,
        c.max_us,
        report.client_errors,
    )
}

/// Writes `reports` as CSV to `path`, header first.
pub fn write_csv(path: &Path, reports: &[ScenarioReport]) -> Result<(), BenchError> {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for report in reports {
        text.push_str(&csv_row(report));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|source| BenchError::Output {
        path: path.to_owned(),
        source,
    })
}

/// A microsecond count for people: `850 us`, `12.3 ms`, `1.20 s`.
pub(crate) fn human_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us} us"),
        1_000..=999_999 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn percentiles(summary: &LatencySummary) -> String {
    if summary.count == 0 {
        return "-".to_owned();
    }
    format!(
        "p50 {}  p99 {}  p99.9 {}  max {}",
        human_us(summary.p50_us),
        human_us(summary.p99_us),
        human_us(summary.p999_us),
        human_us(summary.max_us)
    )
}

/// The summary printed after a run.
pub fn summary_table(report: &ScenarioReport) -> String {
    let mut out = String::new();
    let rate = report.rate.map_or_else(
        || "unlimited".to_owned(),
        |r| format!("{r} msg/s per publisher"),
    );
    let rows: Vec<(&str, String)> = vec![
        (
            "scenario",
            format!(
                "{} over {} ({}), QoS {}, {} B payload, {rate}",
                report.scenario,
                report.transport,
                report.url,
                report.qos as u8,
                report.payload_size
            ),
        ),
        (
            "clients",
            format!(
                "{} publishers, {} subscribers, {} connected, {} failed",
                report.publishers, report.subscribers, report.connected, report.connect_failed
            ),
        ),
        ("connect latency", percentiles(&report.connect_latency)),
        (
            "sent",
            format!(
                "{} in {:.2} s = {:.0} msg/s{}",
                report.sent,
                report.publish_elapsed.as_secs_f64(),
                report.sent_per_sec,
                if report.acked > 0 {
                    format!(" ({} acknowledged)", report.acked)
                } else {
                    String::new()
                }
            ),
        ),
        (
            "received",
            format!(
                "{} ({} duplicates) in {:.2} s = {:.0} msg/s delivered",
                report.received,
                report.duplicates,
                report.delivery_elapsed.as_secs_f64(),
                report.delivered_per_sec
            ),
        ),
        (
            "lost",
            match (report.lost, report.expected) {
                (Some(lost), Some(expected)) if expected > 0 => {
                    format!(
                        "{lost} of {expected} ({:.3} %)",
                        lost as f64 * 100.0 / expected as f64
                    )
                }
                (Some(lost), _) => lost.to_string(),
                (None, _) => "-".to_owned(),
            },
        ),
        ("latency", percentiles(&report.latency)),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "{name:>16}  {value}");
    }
    if report.client_errors > 0 || report.first_error.is_some() {
        let _ = writeln!(
            out,
            "{:>16}  {} clients failed after connecting; first error: {}",
            "errors",
            report.client_errors,
            report.first_error.as_deref().unwrap_or("-")
        );
    }
    out
}
