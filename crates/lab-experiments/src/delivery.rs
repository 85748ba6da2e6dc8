//! Experiment 2, delivery under the study's scenarios: for each scenario, link type, QoS and
//! seed, one lab in which every (broker, transport) pair under test has its own publisher and
//! subscriber hosts on the scenario's link type, side by side; the broker host sits behind an
//! ideal link, so the pairs do not compete and each one's losses come from its own hosts'
//! seeded loss streams. The publisher sends the scenario's message 100 times (one every
//! 10 ms) through our broker or Mosquitto; the subscriber (on a wildcard filter) records
//! when each sequence number first arrives. Reported per run: delivery ratio, duplicates,
//! latency percentiles and completion time; across seeds: median and spread.

use std::time::Duration;

use mquictt_client::QoS;
use mquictt_lab::{LinkProfile, Scenario};

use crate::brokers::BrokerFiles;
use crate::connection::tempdir;
use crate::error::ExperimentError;
pub(crate) use crate::flow::{
    connect_within, probe_spec, run_lab, Flow, FlowOptions, RunSpec, SETUP_BUDGET,
};
use crate::multistream;
use crate::plot::{self, Labels, Series};
use crate::settings::{Progress, Settings};
use crate::stats::{format_value, Percentiles, Spread};
use crate::table::Table;
use crate::transports::{BrokerKind, Transport};
use crate::workload::Workload;

/// Time between two publishes of a run.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(10);

/// The QoS levels compared.
pub const QOS_LEVELS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// One run of one (broker, transport) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRun {
    /// Scenario key.
    pub scenario: String,
    /// Link type.
    pub link: String,
    /// QoS of the publishes and the subscription.
    pub qos: u8,
    /// Broker.
    pub broker: BrokerKind,
    /// Transport of both clients.
    pub transport: Transport,
    /// Seed of the lab's loss streams.
    pub seed: u64,
    /// Messages published.
    pub sent: u32,
    /// Distinct messages received.
    pub delivered: u32,
    /// Messages received more than once.
    pub duplicates: u32,
    /// Latency from publish call to arrival, ms, over the delivered messages.
    pub latency: Percentiles,
    /// From the first publish to the last message's arrival, ms; `NaN` when some were lost.
    pub completion_ms: f64,
    /// From the first publish to the last arrival, ms, whether or not all arrived.
    pub span_ms: f64,
    /// Payload bytes of the delivered messages.
    pub delivered_bytes: u64,
    /// Why the clients could not start (no connection within the deadline), if so.
    pub failure: Option<String>,
}

impl DeliveryRun {
    /// Delivered over sent.
    pub fn ratio(&self) -> f64 {
        if self.sent == 0 {
            f64::NAN
        } else {
            f64::from(self.delivered) / f64::from(self.sent)
        }
    }
}

/// What the experiment produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeliveryResults {
    /// Every run.
    pub runs: Vec<DeliveryRun>,
    /// Labs the relay flagged as late.
    pub flagged_runs: u32,
    /// Pairs left out, with the reason.
    pub left_out: Vec<String>,
}

/// The (broker, transport) pairs of this run.
pub fn pairs(
    settings: &Settings,
    multi_stream: bool,
    left_out: &mut Vec<String>,
) -> Vec<(BrokerKind, Transport)> {
    let mut pairs = vec![
        (BrokerKind::Mquictt, Transport::Tcp),
        (BrokerKind::Mquictt, Transport::Tls13),
        (BrokerKind::Mquictt, Transport::Quic),
    ];
    if multi_stream {
        pairs.push((BrokerKind::Mquictt, Transport::QuicMultiStream));
    } else {
        left_out.push(
            "QUIC multi-stream rows: this broker build does not answer a SUBSCRIBE on a QUIC \
             data stream (multi-stream mode)"
                .to_owned(),
        );
    }
    if settings.mosquitto.is_some() {
        pairs.push((BrokerKind::Mosquitto, Transport::Tcp));
        pairs.push((BrokerKind::Mosquitto, Transport::Tls13));
    } else {
        left_out.push("Mosquitto rows: Mosquitto is not installed".to_owned());
    }
    pairs
}

/// Messages per run: the study's 100, or 20 when quick.
fn message_count(settings: &Settings) -> u32 {
    if settings.quick {
        20
    } else {
        100
    }
}

/// Runs the experiment and writes `delivery.csv`, `delivery_summary.csv` and the charts.
pub fn run(
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<DeliveryResults, ExperimentError> {
    let scenarios = settings.selected_scenarios()?;
    let mut plan: Vec<(&Scenario, &LinkProfile)> = Vec::new();
    for scenario in &scenarios {
        for link in settings.selected_links(scenario)? {
            plan.push((scenario, link));
        }
    }
    let qos_levels: Vec<QoS> = if settings.quick {
        vec![QoS::AtLeastOnce]
    } else {
        QOS_LEVELS.to_vec()
    };
    let seeds = settings.seed_list();
    let mut results = DeliveryResults::default();
    let work = tempdir(settings, "delivery")?;
    let files = BrokerFiles::prepare(&work)?;
    let multi_stream = multistream::broker_supports(settings, &files)?;
    let pairs = pairs(settings, multi_stream, &mut results.left_out);
    progress.begin(
        "delivery",
        (plan.len() * qos_levels.len() * seeds.len()) as u64,
    );
    for (scenario, link) in &plan {
        for &qos in &qos_levels {
            for &seed in &seeds {
                let spec = RunSpec {
                    workload: Workload::for_scenario(&scenario.name),
                    scenario: scenario.name.clone(),
                    link: (*link).clone(),
                    qos,
                    seed,
                    count: message_count(settings),
                    drain: settings.drain_deadline(),
                    interval: PUBLISH_INTERVAL,
                    payload_size: None,
                };
                let (runs, flagged) = run_lab(settings, &files, &spec, &pairs)?;
                if flagged {
                    results.flagged_runs += 1;
                    progress.note(&format!(
                        "delivery {}/{} QoS {} seed {seed}: the relay ran late",
                        scenario.name, link.name, qos as u8
                    ));
                }
                results.runs.extend(runs);
                progress.step(&format!(
                    "{}/{} QoS {} seed {seed}",
                    scenario.name, link.name, qos as u8
                ));
            }
        }
    }
    write_outputs(settings, &results)?;
    progress.end("delivery");
    let _ = std::fs::remove_dir_all(&work);
    Ok(results)
}

fn qos_label(qos: u8) -> String {
    format!("QoS {qos}")
}

/// The pair's label in tables and charts: transport, and the broker when it is not ours.
pub fn pair_label(broker: BrokerKind, transport: Transport) -> String {
    match broker {
        BrokerKind::Mquictt => transport.label().to_owned(),
        BrokerKind::Mosquitto => format!("{} (Mosquitto)", transport.label()),
    }
}

fn write_outputs(settings: &Settings, results: &DeliveryResults) -> Result<(), ExperimentError> {
    let out = &settings.out_dir;
    runs_table(results).write_csv(&out.join("delivery.csv"))?;
    summary_table(results).write_csv(&out.join("delivery_summary.csv"))?;
    let mut pairs: Vec<(BrokerKind, Transport)> = Vec::new();
    for r in &results.runs {
        if !pairs.contains(&(r.broker, r.transport)) {
            pairs.push((r.broker, r.transport));
        }
    }
    // One pair of charts per scenario: all of them in one chart are unreadable.
    for scenario in scenario_names(results) {
        let groups: Vec<(String, String, u8)> = groups(results)
            .into_iter()
            .filter(|(s, _, _)| *s == scenario)
            .collect();
        let categories: Vec<String> = groups
            .iter()
            .map(|(_, link, qos)| format!("{link} Q{qos}"))
            .collect();
        let series = |value: &dyn Fn(&DeliveryRun) -> f64| -> Vec<Series<f64>> {
            pairs
                .iter()
                .map(|&(broker, transport)| Series {
                    name: pair_label(broker, transport),
                    values: groups
                        .iter()
                        .map(|(scenario, link, qos)| {
                            Spread::of(
                                results
                                    .runs
                                    .iter()
                                    .filter(|r| {
                                        &r.scenario == scenario
                                            && &r.link == link
                                            && r.qos == *qos
                                            && r.broker == broker
                                            && r.transport == transport
                                    })
                                    .map(value),
                            )
                            .median
                        })
                        .collect(),
                })
                .collect()
        };
        plot::grouped_bars(
            out,
            &format!("delivery_ratio_{scenario}"),
            &Labels::new(
                format!("Delivery ratio, {scenario} (median over seeds)"),
                "link type, QoS",
                "delivered / sent",
            ),
            &categories,
            &series(&|r| r.ratio()),
        )?;
        plot::grouped_bars(
            out,
            &format!("delivery_latency_p99_{scenario}"),
            &Labels::new(
                format!("99th percentile latency, {scenario} (median over seeds)"),
                "link type, QoS",
                "ms",
            ),
            &categories,
            &series(&|r| r.latency.p99),
        )?;
    }
    Ok(())
}

/// The scenarios of the results, in order of first appearance.
pub fn scenario_names(results: &DeliveryResults) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in &results.runs {
        if !names.contains(&r.scenario) {
            names.push(r.scenario.clone());
        }
    }
    names
}

/// The (scenario, link, QoS) groups in order of first appearance.
fn groups(results: &DeliveryResults) -> Vec<(String, String, u8)> {
    let mut groups: Vec<(String, String, u8)> = Vec::new();
    for r in &results.runs {
        let key = (r.scenario.clone(), r.link.clone(), r.qos);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    groups
}

fn runs_table(results: &DeliveryResults) -> Table {
    let mut table = Table::new(&[
        "scenario",
        "link",
        "qos",
        "broker",
        "transport",
        "seed",
        "sent",
        "delivered",
        "duplicates",
        "ratio",
        "latency_p50_ms",
        "latency_p90_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "completion_ms",
        "failure",
    ]);
    for r in &results.runs {
        table.push(vec![
            r.scenario.clone(),
            r.link.clone(),
            r.qos.to_string(),
            r.broker.label().to_owned(),
            r.transport.label().to_owned(),
            r.seed.to_string(),
            r.sent.to_string(),
            r.delivered.to_string(),
            r.duplicates.to_string(),
            format_value(r.ratio(), 3),
            format_value(r.latency.p50, 2),
            format_value(r.latency.p90, 2),
            format_value(r.latency.p99, 2),
            format_value(r.latency.max, 2),
            format_value(r.completion_ms, 1),
            r.failure.clone().unwrap_or_default(),
        ]);
    }
    table
}

/// Median and spread (min-max) over seeds per scenario, link, QoS, broker and transport.
pub fn summary_table(results: &DeliveryResults) -> Table {
    let mut table = Table::new(&[
        "scenario",
        "link",
        "qos",
        "pair",
        "seeds",
        "ratio_median",
        "ratio_min",
        "p50_ms_median",
        "p99_ms_median",
        "p99_ms_min",
        "p99_ms_max",
        "completion_ms_median",
        "completion_ms_min",
        "completion_ms_max",
        "complete_runs",
    ]);
    for (scenario, link, qos) in groups(results) {
        let mut pairs: Vec<(BrokerKind, Transport)> = Vec::new();
        for r in &results.runs {
            if !pairs.contains(&(r.broker, r.transport)) {
                pairs.push((r.broker, r.transport));
            }
        }
        for (broker, transport) in pairs {
            let runs: Vec<&DeliveryRun> = results
                .runs
                .iter()
                .filter(|r| {
                    r.scenario == scenario
                        && r.link == link
                        && r.qos == qos
                        && r.broker == broker
                        && r.transport == transport
                })
                .collect();
            if runs.is_empty() {
                continue;
            }
            let ratio = Spread::of(runs.iter().map(|r| r.ratio()));
            let p50 = Spread::of(runs.iter().map(|r| r.latency.p50));
            let p99 = Spread::of(runs.iter().map(|r| r.latency.p99));
            let completion = Spread::of(runs.iter().map(|r| r.completion_ms));
            table.push(vec![
                scenario.clone(),
                link.clone(),
                qos_label(qos),
                pair_label(broker, transport),
                runs.len().to_string(),
                format_value(ratio.median, 3),
                format_value(ratio.min, 3),
                format_value(p50.median, 1),
                format_value(p99.median, 1),
                format_value(p99.min, 1),
                format_value(p99.max, 1),
                format_value(completion.median, 0),
                format_value(completion.min, 0),
                format_value(completion.max, 0),
                format!("{}/{}", completion.runs, runs.len()),
            ]);
        }
    }
    table
}
