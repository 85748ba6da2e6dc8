//! End-to-end checks of the emulated links, run as root with /dev/net/tun: round-trip time,
//! TCP goodput, random loss and its determinism, the broker link as the shared bottleneck,
//! and client-to-client routing, each measured between the lab's namespaces and compared with
//! the link settings. Tolerances are wide on purpose: the machine is small and shared.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use mquictt_lab::{HostLink, LinkConfig, Topology};
use support::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn udp_round_trip_time_matches_the_link_delays() {
    // Client link 8 Mbit/s, 10 ms; broker link 50 Mbit/s, 5 ms.
    let lab = start(Topology::star(
        HostLink::symmetric(link(50.0, 5, 0.0)),
        vec![HostLink::symmetric(link(8.0, 10, 0.0))],
    ));
    let (echo, echo_thread) = udp_echo(lab.broker());
    let client = udp_socket_in(lab.client(0).unwrap());
    let rtts = udp_round_trips(&client, echo, 30, 100);
    client.send_to(b"stop", echo).unwrap();
    echo_thread.join().unwrap();
    let stats = lab.finish().unwrap();

    // 128-byte IP packets: 2 x (10 + 5) ms of delay, plus 2 x (128 us + 20.5 us) on the wire.
    let expected = Duration::from_micros(30_297);
    assert_eq!(
        rtts.len(),
        30,
        "no loss was configured, yet replies went missing"
    );
    let min = *rtts.iter().min().unwrap();
    let med = median(rtts);
    eprintln!("RTT min {min:?} median {med:?}, expected {expected:?}; {stats:?}");
    // The relay never sends early, so nothing can beat the emulated path.
    assert!(
        min >= expected - Duration::from_micros(100),
        "min RTT {min:?} < {expected:?}"
    );
    assert!(
        med <= expected + 10 * MS,
        "median RTT {med:?}, expected about {expected:?}"
    );
    assert_eq!(stats.random_drops + stats.queue_drops, 0);
    assert_eq!(
        stats.delivered, 61,
        "30 echoes each way and the stop datagram"
    );
}

#[test]
fn tcp_goodput_is_capped_by_the_bottleneck_rate_and_uses_cubic() {
    // The client's 4 Mbit/s uplink is the bottleneck of a client -> broker transfer.
    let lab = start(Topology::star(
        HostLink::symmetric(link(100.0, 1, 0.0)),
        vec![HostLink::symmetric(link(4.0, 10, 0.0))],
    ));
    let bytes = 1_000_000;
    let (sink_addr, sink) = tcp_sink(lab.broker());
    let algorithm = tcp_send(lab.client(0).unwrap(), sink_addr, bytes)
        .join()
        .unwrap();
    let (received, elapsed) = sink.join().unwrap();
    let stats = lab.finish().unwrap();
    let goodput = received as f64 * 8.0 / elapsed.as_secs_f64();
    eprintln!("goodput {goodput:.0} bit/s in {elapsed:?}; {stats:?}");
    assert_eq!(algorithm, "cubic");
    assert_eq!(received, bytes as u64);
    // Payload of full-sized segments: 1448 of 1500 bytes (IPv4 + TCP with timestamps).
    let ceiling = 4e6 * 1448.0 / 1500.0;
    assert!(
        goodput <= 4e6 * 1.02,
        "goodput {goodput:.0} bit/s beats the 4 Mbit/s link"
    );
    assert!(
        goodput >= 0.5 * ceiling,
        "goodput {goodput:.0} bit/s, less than half of {ceiling:.0}"
    );
    let uplink = &stats.links[1].uplink;
    assert!(uplink.delivered_bytes >= bytes as u64, "{uplink:?}");
}

#[test]
fn random_loss_matches_the_setting_and_the_seed_fixes_which_packets() {
    let lossy_client = |seed| {
        Topology::star(
            HostLink::symmetric(link(100.0, 1, 0.0)),
            vec![HostLink {
                uplink: link(20.0, 2, 10.0),
                downlink: link(20.0, 2, 0.0),
            }],
        )
        .with_seed(seed)
    };
    let count = 1500;
    let run = |seed| {
        let lab = start(lossy_client(seed));
        let got = udp_burst_received(lab.client(0).unwrap(), lab.broker(), count, MS / 2);
        let stats = lab.finish().unwrap();
        let lost: BTreeSet<u32> = (0..count).filter(|seq| !got.contains(seq)).collect();
        (lost, stats)
    };

    let (lost, stats) = run(1234);
    let ratio = lost.len() as f64 / f64::from(count);
    eprintln!("lost {} of {count}; {stats:?}", lost.len());
    assert!(
        (0.07..=0.13).contains(&ratio),
        "loss ratio {ratio}, 10% configured"
    );
    let uplink = &stats.links[1].uplink;
    assert_eq!(uplink.offered, u64::from(count));
    assert_eq!(uplink.random_drops, lost.len() as u64);
    assert_eq!(stats.random_drops, lost.len() as u64);

    let (again, _) = run(1234);
    assert_eq!(lost, again, "the same seed lost different packets");
    let (other, _) = run(4321);
    assert_ne!(lost, other, "another seed lost the same packets");
}

#[test]
fn the_broker_link_is_the_shared_bottleneck() {
    // Two fast clients behind a 2 Mbit/s broker link.
    let lab = start(Topology::star(
        HostLink::symmetric(link(2.0, 2, 0.0)),
        vec![HostLink::symmetric(link(50.0, 2, 0.0)); 2],
    ));
    let bytes = 300_000;
    let (addr_a, sink_a) = tcp_sink(lab.broker());
    let (addr_b, sink_b) = tcp_sink(lab.broker());
    let started = std::time::Instant::now();
    let send_a = tcp_send(lab.client(0).unwrap(), addr_a, bytes);
    let send_b = tcp_send(lab.client(1).unwrap(), addr_b, bytes);
    send_a.join().unwrap();
    send_b.join().unwrap();
    let elapsed = started.elapsed();
    let (got_a, _) = sink_a.join().unwrap();
    let (got_b, _) = sink_b.join().unwrap();
    let stats = lab.finish().unwrap();

    assert_eq!((got_a, got_b), (bytes as u64, bytes as u64));
    let aggregate = (got_a + got_b) as f64 * 8.0 / elapsed.as_secs_f64();
    eprintln!("aggregate {aggregate:.0} bit/s in {elapsed:?}; {stats:?}");
    assert!(
        aggregate <= 2e6 * 1.02,
        "{aggregate:.0} bit/s through a 2 Mbit/s link"
    );
    assert!(
        aggregate >= 0.5 * 2e6 * 1448.0 / 1500.0,
        "{aggregate:.0} bit/s"
    );
    let broker_in = stats.links[0].downlink.delivered_bytes;
    assert!(
        broker_in >= 2 * bytes as u64,
        "broker downlink carried {broker_in} bytes"
    );
}

#[test]
fn clients_reach_each_other_without_crossing_the_broker_link() {
    let lab = start(Topology::star(
        HostLink::symmetric(link(10.0, 30, 0.0)),
        vec![
            HostLink::symmetric(link(10.0, 3, 0.0)),
            HostLink::symmetric(link(10.0, 7, 0.0)),
        ],
    ));
    let (echo, echo_thread) = udp_echo(lab.client(1).unwrap());
    let client = udp_socket_in(lab.client(0).unwrap());
    let rtts = udp_round_trips(&client, echo, 10, 100);
    client.send_to(b"stop", echo).unwrap();
    echo_thread.join().unwrap();
    let stats = lab.finish().unwrap();

    assert_eq!(rtts.len(), 10);
    // 2 x (3 + 7) ms, plus 4 x 102.4 us on the wire; the broker's 30 ms are not on the path.
    let expected = Duration::from_micros(20_410);
    let min = *rtts.iter().min().unwrap();
    let med = median(rtts);
    assert!(
        min >= expected - Duration::from_micros(100),
        "min RTT {min:?}"
    );
    assert!(med <= expected + 10 * MS, "median RTT {med:?}");
    assert_eq!(
        stats.links[0].uplink.offered + stats.links[0].downlink.offered,
        0
    );
}

#[test]
fn an_ideal_link_forwards_promptly() {
    let lab = start(Topology::star(
        HostLink::symmetric(LinkConfig::ideal()),
        vec![HostLink::symmetric(LinkConfig::ideal())],
    ));
    let (echo, echo_thread) = udp_echo(lab.broker());
    let client = udp_socket_in(lab.client(0).unwrap());
    let rtts = udp_round_trips(&client, echo, 20, 100);
    client.send_to(b"stop", echo).unwrap();
    echo_thread.join().unwrap();
    let stats = lab.finish().unwrap();
    assert_eq!(rtts.len(), 20);
    assert!(
        median(rtts) < 10 * MS,
        "the relay itself adds too much delay"
    );
    assert_eq!(stats.lateness.samples, stats.delivered);
}
