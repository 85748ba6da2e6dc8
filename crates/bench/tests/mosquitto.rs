//! The bench against Mosquitto (the Debian package's broker, started by the comparison's
//! process control on an ephemeral loopback port): it must work against any MQTT broker, not
//! only ours. Fails with an install hint when Mosquitto is missing.

mod common;

use mquictt_bench::compare::process::{default_mosquitto_program, BrokerKind, BrokerProcess};
use mquictt_bench::compare::sampler::ProcessSampler;
use mquictt_bench::compare::BenchCertificates;
use mquictt_bench::{run, LoadSpec, Progress, Scenario, Target};
use mquictt_protocol::QoS;
use mquictt_transport::TransportKind;

use common::{short_spec, tcp_target};

async fn mosquitto() -> BrokerProcess {
    match BrokerProcess::start(BrokerKind::Mosquitto, &default_mosquitto_program()).await {
        Ok(broker) => broker,
        Err(e) => panic!(
            "this test needs the Mosquitto broker: {e}\n\
             install it with `sudo apt-get install mosquitto`"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_qos1_against_mosquitto_is_lossless_and_sampled() {
    let broker = mosquitto().await;
    let sampler = ProcessSampler::start(broker.pid).unwrap();
    let spec = LoadSpec {
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::P2p, 4)
    };
    let report = run(&tcp_target(broker.addr), &spec, &Progress::hidden())
        .await
        .unwrap();
    let usage = sampler.finish().await.unwrap();
    broker.stop().await;
    assert_eq!(report.connect_failed, 0, "{report:?}");
    assert!(report.first_error.is_none(), "{report:?}");
    assert!(report.sent > 0);
    assert_eq!(report.acked, report.sent);
    assert_eq!(report.received, report.sent, "received == sent");
    assert_eq!(report.lost, Some(0));
    assert_eq!(report.latency.count, report.received);
    assert!(
        usage.peak_rss_kib > 0,
        "the broker's memory was read from /proc"
    );
    assert!(usage.peak_rss_kib >= usage.start_rss_kib);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_serves_tls_with_the_comparison_certificate() {
    let certs = BenchCertificates::generate().unwrap();
    let broker = match BrokerProcess::start_with(
        BrokerKind::Mosquitto,
        &default_mosquitto_program(),
        Some(&certs),
        None,
    )
    .await
    {
        Ok(broker) => broker,
        Err(e) => panic!("this test needs `sudo apt-get install mosquitto`: {e}"),
    };
    let tls_addr = broker.addr_for(TransportKind::Tls).expect("a TLS listener");
    assert_ne!(tls_addr, broker.addr);
    assert_eq!(broker.addr_for(TransportKind::Quic), None);
    let target = Target::parse(&format!("mqtts://{tls_addr}"), certs.client_tls()).unwrap();
    let spec = LoadSpec {
        qos: QoS::AtLeastOnce,
        ..short_spec(Scenario::FanOut, 3)
    };
    let report = run(&target, &spec, &Progress::hidden()).await.unwrap();
    broker.stop().await;
    assert_eq!(report.transport, TransportKind::Tls);
    assert_eq!(report.connect_failed, 0, "{report:?}");
    assert!(report.first_error.is_none(), "{report:?}");
    assert!(report.sent > 0);
    assert_eq!(
        report.received,
        report.sent * 3,
        "every subscriber got every message"
    );
    assert_eq!(report.lost, Some(0));
}
