//! The comparison as text: markdown tables of ratios (MQuicTT / baseline) for throughput over
//! TCP and TLS (against Mosquitto) and over QUIC (against our own TCP), latency and idle
//! memory, with the goals of the performance work beside them, and a CSV with every run's full
//! report plus broker CPU and memory.

use std::fmt::Write as _;
use std::path::Path;

use mquictt_protocol::QoS;
use mquictt_transport::TransportKind;

use super::{transport_name, Case, CaseKind, CaseResult, Comparison, Measurement};
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
    run_ratio(CaseKind::Throughput, &result.ours, &result.baseline)
}

fn p99(m: &Measurement) -> Option<f64> {
    m.report.as_ref().map(|r| r.latency.p99_us as f64)
}

/// p99 latency of MQuicTT over its baseline's (latency cases).
pub fn p99_ratio(result: &CaseResult) -> Option<f64> {
    run_ratio(CaseKind::Latency, &result.ours, &result.baseline)
}

/// The ratio a case of `kind` reports, of one run of each side: delivered msgs/s, p99
/// latency or memory per idle connection, MQuicTT's over the baseline's.
pub fn run_ratio(kind: CaseKind, ours: &Measurement, baseline: &Measurement) -> Option<f64> {
    match kind {
        CaseKind::Throughput => ratio(delivered(ours)?, delivered(baseline)?),
        CaseKind::Latency => ratio(p99(ours)?, p99(baseline)?),
        CaseKind::IdleMemory => ratio(
            ours.rss_per_connection_kib()?,
            baseline.rss_per_connection_kib()?,
        ),
    }
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
pub fn throughput_goal(case: &Case) -> f64 {
    if case.against_ourselves() {
        QUIC_TO_TCP_GOAL
    } else if case.spec.qos == QoS::AtMostOnce {
        QOS0_THROUGHPUT_GOAL
    } else {
        QOS1_THROUGHPUT_GOAL
    }
}

/// Whether the reported (median) runs meet the goal of their case; `None` when it cannot be
/// told (a side failed, or a latency run did not sustain its rate).
pub fn meets_goal(result: &CaseResult) -> Option<bool> {
    run_meets_goal(&result.case, &result.ours, &result.baseline)
}

/// Whether one run of each side meets the goal of `case`; `None` when it cannot be told.
pub fn run_meets_goal(case: &Case, ours: &Measurement, baseline: &Measurement) -> Option<bool> {
    match case.kind {
        CaseKind::Throughput => {
            run_ratio(case.kind, ours, baseline).map(|r| r >= throughput_goal(case))
        }
        CaseKind::Latency => {
            if !(sustained(ours) && sustained(baseline)) {
                return None;
            }
            Some(ours.report.as_ref()?.latency.p99_us <= baseline.report.as_ref()?.latency.p99_us)
        }
        CaseKind::IdleMemory => ours
            .rss_per_connection_kib()
            .map(|kib| kib <= IDLE_RSS_GOAL_KIB),
    }
}

/// How the rounds of a case went, one round (its two runs back to back) at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundsSummary {
    /// Rounds whose verdict could be told.
    pub judged: usize,
    /// Of those, the rounds that met the goal.
    pub met: usize,
    /// The lowest and highest ratio of a round, when any had one.
    pub ratios: Option<(f64, f64)>,
}

/// Every round of `result` judged by itself.
pub fn rounds_summary(result: &CaseResult) -> RoundsSummary {
    let mut summary = RoundsSummary {
        judged: 0,
        met: 0,
        ratios: None,
    };
    for round in &result.rounds {
        if let Some(met) = run_meets_goal(&result.case, &round.ours, &round.baseline) {
            summary.judged += 1;
            summary.met += usize::from(met);
        }
        if let Some(r) = run_ratio(result.case.kind, &round.ours, &round.baseline) {
            let (low, high) = summary.ratios.unwrap_or((r, r));
            summary.ratios = Some((low.min(r), high.max(r)));
        }
    }
    summary
}

/// Rounds that met the goal, with the range of their ratios: "2 of 3 (0.91 to 1.12)"; with
/// one round only the count.
pub fn rounds_at_goal(result: &CaseResult) -> String {
    let s = rounds_summary(result);
    match s.ratios {
        Some((low, high)) if result.rounds.len() > 1 => {
            format!("{} of {} ({low:.2} to {high:.2})", s.met, s.judged)
        }
        _ => format!("{} of {}", s.met, s.judged),
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
         rounds at goal | lost B / Q | CPU % B / Q | peak RSS MiB B / Q |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"
    );
    for r in rows {
        let s = &r.case.spec;
        let (b, q) = (&r.baseline, &r.ours);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} B | {} | {} | {} | {:.1} | {} | {} | {} / {} | {:.0} / {:.0} | {} / {} |",
            s.scenario,
            s.clients,
            s.qos as u8,
            s.payload_size,
            cell(b, |m| format!("{:.0}", delivered(m).unwrap_or(0.0))),
            cell(q, |m| format!("{:.0}", delivered(m).unwrap_or(0.0))),
            fmt_ratio(throughput_ratio(r)),
            throughput_goal(&r.case),
            goal_mark(r),
            rounds_at_goal(r),
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
        "| scenario | rate per pair | QoS | Mosquitto p50 / p99 / p99.9 / max | MQuicTT p50 / p99 / p99.9 / max | sustained M / Q | p99 ratio | goal met | rounds at goal | CPU % M / Q |\n\
         |---|---:|---:|---|---|---|---:|---|---|---:|\n",
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
            "| {} {} pairs | {} msg/s | {} | {} | {} | {} / {} | {} | {} | {} | {:.0} / {:.0} |",
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
            rounds_at_goal(r),
            r.baseline.usage.cpu_percent,
            r.ours.usage.cpu_percent,
        );
    }
    out.push('\n');
}

fn idle_table<'a>(out: &mut String, rows: impl Iterator<Item = &'a CaseResult>) {
    out.push_str(
        "| idle TCP connections | Mosquitto KiB / conn | MQuicTT KiB / conn | ratio | goal met (<= 2 KiB) | rounds at goal | connected M / Q | connect p99 M / Q |\n\
         |---:|---:|---:|---:|---|---|---:|---|\n",
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
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            r.case.spec.clients,
            kib(&r.baseline),
            kib(&r.ours),
            fmt_ratio(run_ratio(r.case.kind, &r.ours, &r.baseline)),
            goal_mark(r),
            rounds_at_goal(r),
            connected(&r.baseline),
            connected(&r.ours),
            p99(&r.baseline),
            p99(&r.ours),
        );
    }
    out.push('\n');
}

/// The CSV header of [`write_csv`]: the case, the round (from 1) and whether the run is the
/// median the tables report, the broker and transport, its CPU and memory, then the scenario
/// report's columns.
pub fn csv_header() -> String {
    format!(
        "case,kind,round,reported,broker,broker_transport,cpu_percent,start_rss_kib,mean_rss_kib,peak_rss_kib,error,{CSV_HEADER}"
    )
}

/// Writes every run of every round of `comparison` as CSV.
pub fn write_csv(path: &Path, comparison: &Comparison) -> Result<(), BenchError> {
    let mut text = csv_header();
    text.push('\n');
    for r in &comparison.results {
        let runs = r.rounds.iter().enumerate().flat_map(|(i, round)| {
            [
                (i, &round.baseline, i == r.baseline_round),
                (i, &round.ours, i == r.ours_round),
            ]
        });
        for (i, m, reported) in runs {
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
                "{},{:?},{},{},{},{},{:.1},{},{},{},\"{}\",{}",
                r.case.label(),
                r.case.kind,
                i + 1,
                reported,
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::compare::{Contender, Round};
    use crate::spec::{LoadSpec, Scenario};
    use crate::stats::{LatencySummary, ScenarioReport};

    /// A run of 10 pairs at 1,000 msg/s for 1 s: `sent` messages, all delivered, this p99.
    fn run(contender: Contender, sent: u64, p99_us: u64) -> Measurement {
        let report = ScenarioReport {
            scenario: Scenario::P2p,
            transport: TransportKind::Tcp,
            url: String::new(),
            qos: QoS::AtMostOnce,
            payload_size: 64,
            clients: 10,
            publishers: 10,
            subscribers: 10,
            rate: Some(1_000.0),
            duration: Duration::from_secs(1),
            publish_started: Instant::now(),
            publish_elapsed: Duration::from_secs(1),
            delivery_elapsed: Duration::from_secs(1),
            sent,
            acked: 0,
            expected: Some(sent),
            received: sent,
            duplicates: 0,
            lost: Some(0),
            sent_per_sec: sent as f64,
            delivered_per_sec: sent as f64,
            latency: LatencySummary {
                count: sent,
                p99_us,
                ..LatencySummary::default()
            },
            connect_latency: LatencySummary::default(),
            connected: 20,
            connect_failed: 0,
            client_errors: 0,
            first_error: None,
        };
        Measurement {
            contender,
            report: Some(report),
            usage: Default::default(),
            error: None,
        }
    }

    /// A latency case whose rounds had these p99s (ours, Mosquitto's); a round with `sent`
    /// below 9,500 did not keep its rate.
    fn latency_case(
        rounds: &[(u64, u64, u64)],
        ours_round: usize,
        baseline_round: usize,
    ) -> CaseResult {
        let case = Case {
            kind: CaseKind::Latency,
            spec: LoadSpec {
                rate: Some(1_000.0),
                duration: Duration::from_secs(1),
                ..LoadSpec::new(Scenario::P2p, 10)
            },
            ours: Contender::MQUICTT_TCP,
            baseline: Contender::MOSQUITTO_TCP,
        };
        let rounds: Vec<Round> = rounds
            .iter()
            .map(|&(ours, theirs, sent)| Round {
                ours: run(Contender::MQUICTT_TCP, sent, ours),
                baseline: run(Contender::MOSQUITTO_TCP, 10_000, theirs),
            })
            .collect();
        CaseResult::new(case, rounds, ours_round, baseline_round)
    }

    #[test]
    fn each_round_is_judged_by_its_own_two_runs() {
        // Medians 100 us and 120 us meet the goal, but one round of three did not.
        let result = latency_case(
            &[(100, 120, 10_000), (150, 120, 10_000), (90, 100, 10_000)],
            0,
            1,
        );
        assert_eq!(meets_goal(&result), Some(true));
        let summary = rounds_summary(&result);
        assert_eq!((summary.met, summary.judged), (2, 3));
        let (low, high) = summary.ratios.unwrap();
        assert!(
            (low - 100.0 / 120.0).abs() < 1e-9 && (high - 1.25).abs() < 1e-9,
            "{low} {high}"
        );
        assert_eq!(rounds_at_goal(&result), "2 of 3 (0.83 to 1.25)");
        let markdown = to_markdown(&Comparison {
            results: vec![result],
        });
        assert!(markdown.contains("| rounds at goal |"), "{markdown}");
        assert!(markdown.contains("| 2 of 3 (0.83 to 1.25) |"), "{markdown}");
    }

    #[test]
    fn a_round_that_did_not_keep_its_rate_is_not_judged() {
        let result = latency_case(&[(100, 120, 10_000), (80, 120, 5_000)], 0, 0);
        let summary = rounds_summary(&result);
        assert_eq!((summary.met, summary.judged), (1, 1));
        // Its ratio still counts among the ratios seen: the table shows what was measured.
        assert_eq!(
            summary.ratios.map(|(low, _)| (low * 100.0).round()),
            Some(67.0)
        );
        let single = latency_case(&[(100, 120, 10_000)], 0, 0);
        assert_eq!(rounds_at_goal(&single), "1 of 1");
    }

    #[test]
    fn the_csv_has_every_run_and_marks_the_reported_ones() {
        let result = latency_case(
            &[(100, 120, 10_000), (150, 110, 10_000), (90, 100, 10_000)],
            0,
            1,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("comparison.csv");
        write_csv(
            &path,
            &Comparison {
                results: vec![result],
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), 6, "{text}");
        let rounds: Vec<&str> = rows.iter().map(|r| r[2]).collect();
        assert_eq!(rounds, ["1", "1", "2", "2", "3", "3"]);
        let reported: Vec<(&str, &str, &str)> = rows
            .iter()
            .filter(|r| r[3] == "true")
            .map(|r| (r[2], r[4], r[5]))
            .collect();
        assert_eq!(
            reported,
            [("1", "mquictt", "TCP"), ("2", "mosquitto", "TCP")]
        );
    }
}
