//! Every scenario, short, against the MQuicTT broker started in-process on 127.0.0.1:0: the
//! bench counts what it sent and received exactly, finds no losses where the broker's queues
//! cannot overflow, fills its latency histograms and writes its CSV. No assertion depends on
//! timing.

mod common;

use std::time::Duration;

use mquictt_bench::{run, write_csv, LoadSpec, Progress, Scenario, ScenarioReport, CSV_HEADER};
use mquictt_protocol::{ProtocolVersion, QoS};

use common::{short_spec, start_broker, tcp_target};

fn assert_clean(report: &ScenarioReport) {
    assert_eq!(report.connect_failed, 0, "{report:?}");
    assert_eq!(report.client_errors, 0, "{report:?}");
    assert!(report.first_error.is_none(), "{report:?}");
    assert_eq!(report.connect_latency.count, report.connected);
}

fn assert_lossless(report: &ScenarioReport) {
    assert_clean(report);
    let expected = report
        .expected
        .expect("publishers and subscribers are both in the bench");
    assert!(report.sent > 0, "{report:?}");
    assert_eq!(
        report.received, expected,
        "received == sent x receivers: {report:?}"
    );
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert_eq!(report.lost, Some(0), "{report:?}");
    assert_eq!(
        report.latency.count, expected,
        "one latency sample per message"
    );
    assert!(report.latency.p50_us > 0 && report.latency.p50_us <= report.latency.max_us);
    assert!(report.latency.p99_us <= report.latency.p999_us);
    assert!(report.delivered_per_sec > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_qos1_receives_everything_sent() {
    let addr = start_broker().await;
    let spec = LoadSpec {
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::P2p, 5)
    };
    let report = run(&tcp_target(addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!((report.publishers, report.subscribers), (5, 5));
    assert_eq!(
        report.acked, report.sent,
        "every QoS 1 publish was acknowledged"
    );
    assert_eq!(report.expected, Some(report.sent));
    assert_lossless(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_qos2_completes_every_exchange() {
    let addr = start_broker().await;
    let spec = LoadSpec {
        qos: QoS::ExactlyOnce,
        ..short_spec(Scenario::P2p, 3)
    };
    let report = run(&tcp_target(addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!(
        report.acked, report.sent,
        "every QoS 2 publish got its PUBCOMP"
    );
    assert_lossless(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_qos0_delivers_every_publisher_to_one_subscriber() {
    let addr = start_broker().await;
    let spec = LoadSpec {
        payload_size: 1024,
        ..short_spec(Scenario::FanIn, 8)
    };
    let report = run(&tcp_target(addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!((report.publishers, report.subscribers), (8, 1));
    assert_eq!(report.acked, 0, "QoS 0 has no acknowledgements");
    assert_lossless(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_multiplies_deliveries_by_the_subscribers() {
    let addr = start_broker().await;
    let spec = LoadSpec {
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::FanOut, 6)
    };
    let report = run(&tcp_target(addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!((report.publishers, report.subscribers), (1, 6));
    assert_eq!(report.expected, Some(report.sent * 6));
    assert_lossless(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_clients_work_too() {
    let addr = start_broker().await;
    let mut target = tcp_target(addr);
    target.version = ProtocolVersion::V5;
    let spec = LoadSpec {
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::P2p, 2)
    };
    let report = run(&target, &spec, &Progress::hidden()).await.unwrap();
    assert_lossless(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_rate_counts_stay_consistent() {
    let addr = start_broker().await;
    let spec = LoadSpec {
        rate: None,
        duration: Duration::from_millis(300),
        ..short_spec(Scenario::P2p, 2)
    };
    let report = run(&tcp_target(addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_clean(&report);
    let expected = report.expected.unwrap();
    assert!(report.sent > 0);
    // QoS 0 may be dropped by a full queue, but never invented or duplicated.
    assert!(report.received <= expected, "{report:?}");
    assert_eq!(report.lost, Some(expected - report.received));
    assert_eq!(report.latency.count, report.received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_alone_counts_sent_and_acknowledged() {
    let addr = start_broker().await;
    let spec = LoadSpec {
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::Pub, 3)
    };
    let report = run(&tcp_target(addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_clean(&report);
    assert_eq!((report.publishers, report.subscribers), (3, 0));
    assert!(report.sent > 0);
    assert_eq!(report.acked, report.sent);
    assert_eq!(
        (report.received, report.expected, report.lost),
        (0, None, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_alone_receives_from_a_pub_run_elsewhere() {
    let addr = start_broker().await;
    let target = tcp_target(addr);
    let sub_spec = LoadSpec {
        topic: "bench/pair/0".to_owned(),
        duration: Duration::from_secs(3),
        ..short_spec(Scenario::Sub, 2)
    };
    let pub_spec = LoadSpec {
        topic: "bench/pair/%i".to_owned(),
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::Pub, 1)
    };
    let subscribers = {
        let target = target.clone();
        tokio::spawn(async move { run(&target, &sub_spec, &Progress::hidden()).await })
    };
    // The subscribers connect first; their run lasts long enough to see the whole pub run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = run(&target, &pub_spec, &Progress::hidden()).await.unwrap();
    let received = subscribers.await.unwrap().unwrap();
    assert_clean(&received);
    assert_eq!(
        received.received,
        published.sent * 2,
        "both subscribers got every message"
    );
    assert_eq!(received.latency.count, received.received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_and_idle_hold_every_connection() {
    let addr = start_broker().await;
    for scenario in [Scenario::Conn, Scenario::Idle] {
        let spec = LoadSpec {
            connect_rate: Some(2000.0),
            duration: Duration::from_millis(200),
            ..LoadSpec::new(scenario, 50)
        };
        let report = run(&tcp_target(addr), &spec, &Progress::hidden())
            .await
            .unwrap();
        assert_clean(&report);
        assert_eq!(report.connected, 50);
        assert_eq!(report.connect_latency.count, 50);
        assert!(report.connect_latency.max_us >= report.connect_latency.p50_us);
        assert_eq!((report.sent, report.received), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_addresses_spread_connections() {
    let addr = start_broker().await;
    let mut target = tcp_target(addr);
    target.source_addrs = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let spec = LoadSpec {
        duration: Duration::from_millis(100),
        ..LoadSpec::new(Scenario::Conn, 10)
    };
    let report = run(&target, &spec, &Progress::hidden()).await.unwrap();
    assert_clean(&report);
    assert_eq!(report.connected, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_counted_not_fatal() {
    // A port nobody listens on: bind, note the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let spec = LoadSpec {
        duration: Duration::from_millis(50),
        ..LoadSpec::new(Scenario::Conn, 3)
    };
    let report = run(&tcp_target(closed), &spec, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!((report.connected, report.connect_failed), (0, 3));
    assert!(report.first_error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_has_a_header_and_one_row_per_run() {
    let addr = start_broker().await;
    let report = run(
        &tcp_target(addr),
        &short_spec(Scenario::P2p, 1),
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    write_csv(&path, &[report.clone(), report.clone()]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], CSV_HEADER);
    let columns = CSV_HEADER.split(',').count();
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(row.len(), columns);
    let field = |name: &str| row[CSV_HEADER.split(',').position(|c| c == name).unwrap()];
    assert_eq!(field("scenario"), "p2p");
    assert_eq!(field("sent"), report.sent.to_string());
    assert_eq!(field("received"), report.received.to_string());
    assert_eq!(field("lost"), "0");
    assert_eq!(field("latency_p99_us"), report.latency.p99_us.to_string());
}

#[tokio::test]
async fn invalid_specs_are_refused_before_connecting() {
    let target = tcp_target("127.0.0.1:1".parse().unwrap());
    let small = LoadSpec {
        payload_size: 10,
        ..LoadSpec::new(Scenario::P2p, 1)
    };
    assert!(run(&target, &small, &Progress::hidden()).await.is_err());
    let wildcard = LoadSpec {
        topic: "bench/#".to_owned(),
        ..LoadSpec::new(Scenario::Pub, 1)
    };
    assert!(run(&target, &wildcard, &Progress::hidden()).await.is_err());
    let none = LoadSpec::new(Scenario::Conn, 0);
    assert!(run(&target, &none, &Progress::hidden()).await.is_err());
}
