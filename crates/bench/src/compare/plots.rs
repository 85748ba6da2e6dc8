//! The comparison as charts, for a reader who would rather look than read the tables: per
//! transport, the throughput ratio of every case (bars grouped by scenario, one bar per QoS
//! and payload); and the p99 latency of both brokers at each rate and QoS.

use std::path::Path;

use mquictt_charts::{self as plot, Labels, Series};
use mquictt_transport::TransportKind;

use super::table::{
    throughput_ratio, QOS0_THROUGHPUT_GOAL, QOS1_THROUGHPUT_GOAL, QUIC_TO_TCP_GOAL,
};
use super::{transport_name, CaseKind, CaseResult, Comparison, Measurement};
use crate::error::BenchError;

/// Writes `comparison_throughput_{tcp,tls,quic}` and `comparison_latency` (SVG and PNG) to
/// `dir`, each only when the comparison has such cases; returns the stems written.
pub fn write_plots(dir: &Path, comparison: &Comparison) -> Result<Vec<String>, BenchError> {
    let mut stems = Vec::new();
    for transport in [TransportKind::Tcp, TransportKind::Tls, TransportKind::Quic] {
        let rows: Vec<&CaseResult> = comparison
            .results
            .iter()
            .filter(|r| r.case.kind == CaseKind::Throughput && r.case.ours.transport == transport)
            .collect();
        let Some(first) = rows.first() else {
            continue;
        };
        let name = transport_name(transport);
        let goals = if first.case.against_ourselves() {
            format!("goal {QUIC_TO_TCP_GOAL}")
        } else {
            format!("goals {QOS0_THROUGHPUT_GOAL} at QoS 0, {QOS1_THROUGHPUT_GOAL} at QoS 1")
        };
        let labels = Labels::new(
            format!(
                "Delivered msgs/s, mquictt {name} / {} ({goals})",
                first.case.baseline.name()
            ),
            "scenario and clients",
            "ratio",
        );
        let stem = format!("comparison_throughput_{}", name.to_lowercase());
        let (categories, series) = grouped(
            &rows,
            |r| format!("{} {}", r.case.spec.scenario, r.case.spec.clients),
            |r| {
                let s = &r.case.spec;
                format!("QoS {}, {} B", s.qos as u8, s.payload_size)
            },
            throughput_ratio,
        );
        plot::grouped_bars(dir, &stem, &labels, &categories, &series)?;
        stems.push(stem);
    }
    let latency: Vec<&CaseResult> = comparison
        .results
        .iter()
        .filter(|r| r.case.kind == CaseKind::Latency)
        .collect();
    if let Some(first) = latency.first() {
        let labels = Labels::new(
            format!(
                "p99 latency, {} pairs at a fixed rate each (goal: mquictt at most mosquitto)",
                first.case.spec.clients
            ),
            "msgs/s per pair, QoS",
            "p99, microseconds",
        );
        let category = |r: &CaseResult| {
            format!(
                "{} msg/s, QoS {}",
                r.case.spec.rate.unwrap_or(0.0),
                r.case.spec.qos as u8
            )
        };
        let categories: Vec<String> = latency.iter().map(|r| category(r)).collect();
        let p99 = |pick: fn(&CaseResult) -> &Measurement| {
            latency
                .iter()
                .map(|r| {
                    pick(r)
                        .report
                        .as_ref()
                        .map_or(f64::NAN, |rep| rep.latency.p99_us as f64)
                })
                .collect()
        };
        let series = [
            Series {
                name: first.case.baseline.name(),
                values: p99(|r| &r.baseline),
            },
            Series {
                name: first.case.ours.name(),
                values: p99(|r| &r.ours),
            },
        ];
        let stem = "comparison_latency".to_owned();
        plot::grouped_bars(dir, &stem, &labels, &categories, &series)?;
        stems.push(stem);
    }
    Ok(stems)
}

/// Bars grouped by `category`, one series per `series_of` value, in the order first seen;
/// a combination without a case, or without a value, is left out of its group.
fn grouped(
    rows: &[&CaseResult],
    category: impl Fn(&CaseResult) -> String,
    series_of: impl Fn(&CaseResult) -> String,
    value: impl Fn(&CaseResult) -> Option<f64>,
) -> (Vec<String>, Vec<Series<f64>>) {
    let mut categories: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for (list, key) in [(&mut categories, category(r)), (&mut names, series_of(r))] {
            if !list.contains(&key) {
                list.push(key);
            }
        }
    }
    let series = names
        .into_iter()
        .map(|name| Series {
            values: categories
                .iter()
                .map(|c| {
                    rows.iter()
                        .find(|r| &category(r) == c && series_of(r) == name)
                        .and_then(|r| value(r))
                        .unwrap_or(f64::NAN)
                })
                .collect(),
            name,
        })
        .collect();
    (categories, series)
}
