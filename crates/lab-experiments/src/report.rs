//! `report.md`: the machine and command a run came from, then one section per experiment
//! that ran, each with its tables, charts and a reading of the numbers against the published
//! ones (the Raspberry Pi study's table 3 and 4, Kumar and Dezfouli 2019). Rendering only:
//! the numbers come from the experiments' results.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::connection::{self, ConnectionResults};
use crate::delivery::{self, DeliveryResults};
use crate::error::ExperimentError;
use crate::footprint::{self, FootprintResults};
use crate::sweep::{self, SweepResults};

/// Everything one invocation measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Whether it was a `--quick` run.
    pub quick: bool,
    /// Seeds per configuration.
    pub seeds: u32,
    /// Experiment 1.
    pub connection: Option<ConnectionResults>,
    /// Experiment 2.
    pub delivery: Option<DeliveryResults>,
    /// Experiment 3.
    pub sweep: Option<SweepResults>,
    /// Experiment 4.
    pub footprint: Option<FootprintResults>,
    /// Wall-clock time of the whole invocation, seconds.
    pub elapsed_s: f64,
}

impl Report {
    /// Writes `report.md` into `out`.
    pub fn write(&self, out: &Path) -> Result<(), ExperimentError> {
        let path = out.join("report.md");
        std::fs::write(&path, self.render()).map_err(|e| ExperimentError::io(&path, e))
    }

    /// The Markdown text.
    pub fn render(&self) -> String {
        let mut md = String::new();
        md.push_str("# MQuicTT lab report\n\n");
        let _ = writeln!(
            md,
            "Produced by `{}` ({} run, {} seed(s) per configuration, {:.0} s).\n",
            self.command,
            if self.quick { "quick" } else { "full" },
            self.seeds,
            self.elapsed_s
        );
        md.push_str("## Machine\n\n");
        md.push_str(&machine_description());
        md.push_str(
            "\nAll traffic crosses the lab's packet-level link emulator: each host is a network \
             namespace with a TUN device, one relay thread applies per-direction random loss, a \
             drop-tail queue (100 ms) at the link rate and a fixed delay. TCP uses cubic, like \
             quinn's default congestion controller; IPv6 is off. Byte counts are IP bytes at the \
             client's interface (add 14 bytes per packet for Ethernet frames as Wireshark shows \
             them).\n\n",
        );
        if let Some(results) = &self.connection {
            md.push_str(&connection_section(results));
        }
        if let Some(results) = &self.delivery {
            md.push_str(&delivery_section(results));
        }
        if let Some(results) = &self.sweep {
            md.push_str(&sweep::report_section(results));
        }
        if let Some(results) = &self.footprint {
            md.push_str(&footprint::report_section(results));
        }
        md
    }
}

/// Kernel, CPU, cores and memory of this machine, as a Markdown list.
pub fn machine_description() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let mosquitto = Command::new("/usr/sbin/mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "not installed".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "- Linux {kernel}\n- CPU: {cpu}, {cores} cores available\n- Memory: {memory_gib:.0} GiB\n\
         - Load average when the report was written: {load} (other work shares the cores; \
         the relay runs at real-time priority, the brokers and clients do not)\n\
         - Mosquitto: {mosquitto}\n- mquictt {}\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn image(stem: &str, alt: &str) -> String {
    format!("![{alt}]({stem}.png)\n\n")
}

fn connection_section(results: &ConnectionResults) -> String {
    let mut md = String::from("## 1. Connection cost\n\n");
    md.push_str(
        "Each link type of the scenario without random loss (the handshake's cost, not its \
         retransmissions); our broker behind an ideal link, a subscriber inside the broker \
         host. Times run from the client's first packet; *round trips* divide them by the \
         path's round-trip propagation delay. Bytes and packets count both directions at the \
         client for each state, starting from the state before (`connection.csv` has every \
         repetition).\n\n",
    );
    md.push_str(&connection::summary_table(results).to_markdown());
    md.push('\n');
    md.push_str(&image("connection_connack", "Time to CONNACK"));
    md.push_str(&image(
        "connection_round_trips",
        "Round trips to the first PUBLISH",
    ));
    md.push_str(&image("connection_bytes", "Bytes per state"));
    if results.flagged_runs > 0 {
        let _ = writeln!(
            md,
            "{} lab run(s) were flagged: the relay sent packets late, so their times carry \
             extra delay.\n",
            results.flagged_runs
        );
    }
    md.push_str(&connection_reading(results));
    md
}

/// Compares our figures with the published ones.
fn connection_reading(results: &ConnectionResults) -> String {
    use crate::transports::Transport;
    let links = connection::link_names(results);
    let Some(link) = links.first() else {
        return String::new();
    };
    let m = |t: Transport, f: fn(&connection::ConnectionSample) -> f64| {
        connection::median_of(results, link, t, f)
    };
    let packets = |t: Transport| m(t, |s| s.wire[0].packets as f64);
    let bytes = |t: Transport| m(t, |s| s.wire[0].bytes as f64);
    let eth = |t: Transport| m(t, |s| s.wire[0].ethernet_bytes() as f64);
    let connack = |t: Transport| m(t, |s| s.connack_ms);
    let mut md = String::from("### Reading\n\n");
    let _ = writeln!(
        md,
        "On {link}, reaching CONNACK took {:.1} ms over TCP, {:.1} over TLS 1.2, {:.1} over TLS \
         1.3, {:.1} over QUIC and {:.1} over QUIC 0-RTT: QUIC is {} than TLS 1.2 and {} than \
         TLS 1.3, and {} with 0-RTT. Reaching CONNECTED took {:.0} packets over TCP, {:.0} over \
         TLS 1.2, {:.0} over TLS 1.3 and {:.0} over QUIC.\n",
        connack(Transport::Tcp),
        connack(Transport::Tls12),
        connack(Transport::Tls13),
        connack(Transport::Quic),
        connack(Transport::QuicZeroRtt),
        relative(
            connack(Transport::Quic),
            connack(Transport::Tls12),
            "faster",
            "slower"
        ),
        relative(
            connack(Transport::Quic),
            connack(Transport::Tls13),
            "faster",
            "slower"
        ),
        relative(
            connack(Transport::QuicZeroRtt),
            connack(Transport::Tls12),
            "faster than TLS 1.2",
            "slower than TLS 1.2"
        ),
        packets(Transport::Tcp),
        packets(Transport::Tls12),
        packets(Transport::Tls13),
        packets(Transport::Quic),
    );
    let _ = writeln!(
        md,
        "QUIC's byte count to CONNECTED ({:.0} IP bytes) is dominated by two things TCP does \
         not do: every Initial datagram is padded to 1200 bytes (RFC 9000 section 14.1, against \
         amplification attacks), and quinn probes the path MTU right after the handshake with \
         padded packets of up to 1452 bytes (its default path MTU discovery), which land in the \
         CONNECTED state because we count until the connection is quiet. The handshake \
         itself, in round trips, is where QUIC wins.\n",
        bytes(Transport::Quic)
    );
    for slow in &links {
        let at = |t: Transport| connection::median_of(results, slow, t, |s| s.connack_ms);
        if at(Transport::Quic) > at(Transport::Tls13) {
            let _ = writeln!(
                md,
                "On {slow}, QUIC reached CONNACK later than TLS 1.3 ({:.0} ms against {:.0} ms). \
                 On a slow link the bytes cost time: each 1200-byte padded Initial datagram and \
                 each path MTU probe takes tens of milliseconds to serialise, and the probes \
                 share the link with the MQTT packets. A client on such a link is better served with MTU \
                 discovery off.\n",
                at(Transport::Quic),
                at(Transport::Tls13)
            );
        }
    }
    let _ = writeln!(
        md,
        "Kumar and Dezfouli (2019) report up to 56% fewer handshake packets and 55% lower \
         latency for MQTT over QUIC than over TCP+TLS. Their baseline was TLS 1.2 over TCP with a \
         full handshake: TCP's three-way handshake plus TLS 1.2's two round trips before the \
         CONNECT can leave, against QUIC's one. Our round-trip counts show the same structure \
         (see `secure_rtts` and `connack_rtts` above); TLS 1.3 already removes one of those round \
         trips, so QUIC's advantage over TLS 1.3 is smaller than over TLS 1.2. Latency savings \
         grow with the share of propagation delay in the total: on a long-delay link the \
         handshake's round trips dominate, on a fast LAN processing does, and a busy machine \
         adds scheduling delay to every step. Packet counts differ more: they counted handshake \
         packets of a draft-era ngtcp2, we count every packet until the connection is quiet, \
         including ACK-only packets and quinn's path MTU probes, so our QUIC count is higher \
         than a handshake-only count and is not the figure they compared.\n"
    );
    let _ = writeln!(
        md,
        "The Raspberry Pi study (table 3) counted Ethernet frames: 194/148/424/268 bytes for \
         CON/SUB/PUB/DISC over TCP and 3382/262/512/380 over TLS. Counted the same way (14 bytes \
         of Ethernet header per IP packet), our CONNECTED costs {:.0} bytes over TCP ({:.0} IP \
         bytes), {:.0} over TLS 1.2 and {:.0} over TLS 1.3. TLS costs far less here than in \
         their capture because our development certificate is a single ECDSA P-256 certificate \
         (a few hundred bytes) while a typical RSA chain is several kilobytes; MQTT 5 CONNECT \
         and CONNACK carry only the properties that are set. Their 194 bytes for TCP are less \
         than a TCP handshake with options and the CONNECT/CONNACK exchange together (each of \
         those seven packets carries 52-74 bytes of headers), so their count apparently starts \
         after the TCP handshake; ours starts at the SYN.\n",
        eth(Transport::Tcp),
        bytes(Transport::Tcp),
        eth(Transport::Tls12),
        eth(Transport::Tls13),
    );
    md
}

/// "23% faster" or "5% slower": `ours` against `theirs`, lower being better.
fn relative(ours: f64, theirs: f64, better: &str, worse: &str) -> String {
    if !(ours.is_finite() && theirs.is_finite() && theirs > 0.0) {
        return "not comparable".to_owned();
    }
    let change = 100.0 * (1.0 - ours / theirs);
    if change >= 0.0 {
        format!("{change:.0}% {better}")
    } else {
        format!("{:.0}% {worse}", -change)
    }
}

fn delivery_section(results: &DeliveryResults) -> String {
    let mut md = String::from("## 2. Delivery under the study's scenarios\n\n");
    let _ = writeln!(
        md,
        "Per scenario, link type, QoS and seed one lab: each (broker, transport) pair has its \
         own publisher and subscriber hosts on the scenario's link type (loss applies on both \
         clients' links, in both directions); the broker host sits behind an ideal link. The \
         publisher sends the scenario's message 100 times (20 when quick), one every {} ms; latency runs from \
         the publish call to the arrival at the subscriber. A run that has not delivered \
         everything 20 s (10 s when quick) after the last publish is cut off; its missing messages count as lost \
         and it has no completion time. Median and spread (min-max) over seeds; every run is \
         in `delivery.csv`.\n",
        delivery::PUBLISH_INTERVAL.as_millis()
    );
    for note in &results.left_out {
        let _ = writeln!(md, "- Left out: {note}");
    }
    md.push('\n');
    md.push_str(&delivery::summary_table(results).to_markdown());
    md.push('\n');
    for scenario in delivery::scenario_names(results) {
        md.push_str(&image(
            &format!("delivery_ratio_{scenario}"),
            &format!("Delivery ratio, {scenario}"),
        ));
        md.push_str(&image(
            &format!("delivery_latency_p99_{scenario}"),
            &format!("99th percentile latency, {scenario}"),
        ));
    }
    if results.flagged_runs > 0 {
        let _ = writeln!(
            md,
            "{} lab run(s) were flagged: the relay sent packets late.\n",
            results.flagged_runs
        );
    }
    md
}
