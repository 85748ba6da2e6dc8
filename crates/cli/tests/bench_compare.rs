//! `--quick` comparison of this crate's `mquictt` binary with Mosquitto through the bench
//! library: both brokers start, every case runs against both, counts, CPU and memory are
//! filled in, and the markdown and CSV come out. Fails with an install hint when Mosquitto is
//! missing. No assertion depends on which broker is faster.

use std::path::PathBuf;

use mquictt_bench::compare::{self, table, CaseKind, CompareConfig};
use mquictt_bench::Progress;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_comparison_measures_both_brokers() {
    let config = CompareConfig::quick(PathBuf::from(env!("CARGO_BIN_EXE_mquictt")));
    let expected_cases = compare::cases(&config).len();
    let mut seen = 0;
    let comparison = match compare::compare(&config, &Progress::hidden(), |_| seen += 1).await {
        Ok(comparison) => comparison,
        Err(e) => panic!("{e}\n(the comparison needs `sudo apt-get install mosquitto`)"),
    };
    assert_eq!(seen, expected_cases);
    assert_eq!(comparison.results.len(), expected_cases);
    for result in &comparison.results {
        assert_eq!(result.rounds.len(), 1, "{}", result.case.label());
        for m in [&result.ours, &result.baseline] {
            let label = format!("{} on {}", result.case.label(), m.contender.name());
            assert!(m.error.is_none(), "{label}: {:?}", m.error);
            let report = m.report.as_ref().expect("a report");
            assert_eq!(report.connect_failed, 0, "{label}");
            assert!(
                report.first_error.is_none(),
                "{label}: {:?}",
                report.first_error
            );
            assert!(m.usage.peak_rss_kib > 0, "{label}: memory read from /proc");
            match result.case.kind {
                CaseKind::Throughput | CaseKind::Latency => {
                    assert!(report.sent > 0, "{label}");
                    assert!(report.delivered_per_sec > 0.0, "{label}");
                    assert!(report.latency.count > 0, "{label}");
                    if result.case.spec.qos as u8 >= 1 {
                        assert_eq!(report.lost, Some(0), "{label}: QoS 1 loses nothing");
                    }
                }
                CaseKind::IdleMemory => {
                    assert_eq!(
                        report.connected as usize, config.idle_connections,
                        "{label}"
                    );
                    assert!(m.rss_per_connection_kib().is_some(), "{label}");
                }
            }
        }
        // A latency goal is judged only when both sides kept the rate (on a loaded machine
        // they may not); every other case always has a verdict.
        let judged = table::meets_goal(result).is_some();
        match result.case.kind {
            CaseKind::Latency => assert_eq!(
                judged,
                table::sustained(&result.ours) && table::sustained(&result.baseline),
                "{}",
                result.case.label()
            ),
            _ => assert!(judged, "{}", result.case.label()),
        }
        if result.case.kind == CaseKind::Throughput {
            assert!(table::throughput_ratio(result).is_some());
        }
    }
    let transports: Vec<(String, String)> = comparison
        .results
        .iter()
        .map(|r| (r.case.ours.name(), r.case.baseline.name()))
        .collect();
    for pair in [
        ("mquictt TLS", "mosquitto TLS"),
        ("mquictt QUIC", "mquictt TCP"),
    ] {
        assert!(
            transports.contains(&(pair.0.to_owned(), pair.1.to_owned())),
            "{pair:?} in {transports:?}"
        );
    }

    let markdown = table::to_markdown(&comparison);
    assert!(
        markdown.contains("| scenario | clients | QoS |"),
        "{markdown}"
    );
    assert!(markdown.contains("p99 ratio"), "{markdown}");
    assert!(markdown.contains("| rounds at goal |"), "{markdown}");
    assert!(
        markdown.contains("Throughput, mquictt QUIC / mquictt TCP"),
        "{markdown}"
    );
    assert!(
        markdown.contains("Throughput, mquictt TLS / mosquitto TLS"),
        "{markdown}"
    );
    assert!(markdown.contains("KiB / conn"), "{markdown}");
    assert!(!markdown.contains("Errors seen"), "{markdown}");

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("comparison.csv");
    table::write_csv(&csv, &comparison).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(table::csv_header().as_str()));
    assert_eq!(
        lines.count(),
        2 * expected_cases,
        "one row per broker and case"
    );

    let stems = compare::plots::write_plots(dir.path(), &comparison).unwrap();
    assert_eq!(
        stems,
        [
            "comparison_throughput_tcp",
            "comparison_throughput_tls",
            "comparison_throughput_quic",
            "comparison_latency"
        ]
    );
    for stem in &stems {
        for file in ["svg", "png"].map(|ext| dir.path().join(format!("{stem}.{ext}"))) {
            let size = std::fs::metadata(&file).map_or(0, |m| m.len());
            assert!(size > 1_000, "{} holds a chart", file.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_chosen_kind_runs_and_every_round_is_kept() {
    let mut config = CompareConfig::quick(PathBuf::from(env!("CARGO_BIN_EXE_mquictt")));
    config.only = vec![CaseKind::IdleMemory];
    config.rounds = 3;
    let comparison = match compare::compare(&config, &Progress::hidden(), |_| ()).await {
        Ok(comparison) => comparison,
        Err(e) => panic!("{e}\n(the comparison needs `sudo apt-get install mosquitto`)"),
    };
    let [result] = comparison.results.as_slice() else {
        panic!("one case: {:?}", comparison.results.len());
    };
    assert_eq!(result.case.kind, CaseKind::IdleMemory);
    assert_eq!(result.rounds.len(), 3);
    for round in &result.rounds {
        assert_eq!(round.ours.contender.name(), "mquictt TCP");
        assert_eq!(round.baseline.contender.name(), "mosquitto TCP");
        assert!(round.ours.rss_per_connection_kib().is_some());
        assert!(round.baseline.rss_per_connection_kib().is_some());
    }
    // The reported runs are the medians of each side's three.
    let median = |mut kib: Vec<f64>| {
        kib.sort_by(f64::total_cmp);
        kib[1]
    };
    let kib = |m: &compare::Measurement| m.rss_per_connection_kib().unwrap();
    assert_eq!(
        kib(&result.ours),
        median(result.rounds.iter().map(|r| kib(&r.ours)).collect())
    );
    assert_eq!(
        kib(&result.baseline),
        median(result.rounds.iter().map(|r| kib(&r.baseline)).collect())
    );
    assert_eq!(table::rounds_summary(result).judged, 3);

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("comparison.csv");
    table::write_csv(&csv, &comparison).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + 6,
        "a header and both runs of three rounds"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.split(',').nth(3) == Some("true"))
            .count(),
        2,
        "one reported run per side"
    );
}

#[test]
fn latency_cases_come_one_pair_per_rate_asked_for() {
    let mut config = CompareConfig::full(PathBuf::from(env!("CARGO_BIN_EXE_mquictt")));
    config.only = vec![CaseKind::Latency];
    let default: Vec<(Option<f64>, u8)> = compare::cases(&config)
        .iter()
        .map(|c| (c.spec.rate, c.spec.qos as u8))
        .collect();
    assert_eq!(default, [(Some(1_000.0), 0), (Some(1_000.0), 1)]);
    config.latency_rates = vec![500.0, 5_000.0];
    let cases = compare::cases(&config);
    let asked: Vec<(Option<f64>, u8, usize)> = cases
        .iter()
        .map(|c| (c.spec.rate, c.spec.qos as u8, c.spec.clients))
        .collect();
    assert_eq!(
        asked,
        [
            (Some(500.0), 0, 10),
            (Some(500.0), 1, 10),
            (Some(5_000.0), 0, 10),
            (Some(5_000.0), 1, 10)
        ]
    );
    assert!(cases.iter().all(|c| c.kind == CaseKind::Latency));
}
