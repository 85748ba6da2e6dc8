//! Who runs a case: a [`Contender`] is a broker and the transport the bench's clients use to
//! reach it, and [`run_contender`] runs one load against a fresh broker process of that
//! contender while sampling the process's CPU and memory.

use std::path::Path;
use std::time::Duration;

use mquictt_transport::{ClientTlsSettings, QuicClientOptions, TransportKind, TransportUrl};

use super::certificates::BenchCertificates;
use super::process::{BrokerKind, BrokerProcess};
use super::sampler::{ProcessSampler, ProcessTrace};
use crate::progress::Progress;
use crate::runner::run;
use crate::spec::{LoadSpec, Target};
use crate::stats::ScenarioReport;

/// A broker and the transport its clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Contender {
    /// Which broker.
    pub broker: BrokerKind,
    /// How the bench's clients reach it.
    pub transport: TransportKind,
}

impl Contender {
    /// MQuicTT over TCP: ours in the TCP rows and the baseline of the QUIC rows.
    pub const MQUICTT_TCP: Self = Self::new(BrokerKind::Mquictt, TransportKind::Tcp);
    /// Mosquitto over TCP.
    pub const MOSQUITTO_TCP: Self = Self::new(BrokerKind::Mosquitto, TransportKind::Tcp);

    /// `broker` over `transport`.
    pub const fn new(broker: BrokerKind, transport: TransportKind) -> Self {
        Self { broker, transport }
    }

    /// `mquictt QUIC`, `mosquitto TLS`: for tables and legends.
    pub fn name(self) -> String {
        format!("{} {}", self.broker.name(), transport_name(self.transport))
    }
}

/// `TCP`, `TLS`, `QUIC`, `WS`, `WSS`.
pub fn transport_name(transport: TransportKind) -> &'static str {
    match transport {
        TransportKind::Tcp => "TCP",
        TransportKind::Tls => "TLS",
        TransportKind::Ws => "WS",
        TransportKind::Wss => "WSS",
        TransportKind::Quic => "QUIC",
    }
}

/// What every run of a comparison or load curve shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSetup<'a> {
    pub(crate) mquictt_program: &'a Path,
    pub(crate) mosquitto_program: &'a Path,
    /// Presented on the TLS and QUIC listeners.
    pub(crate) certificates: &'a BenchCertificates,
    /// Wait after the broker accepts connections before its baseline memory is read.
    pub(crate) settle: Duration,
    /// The ceiling of QUIC path MTU discovery on our broker's QUIC listener and every QUIC
    /// client; `None` keeps the defaults.
    pub(crate) quic_max_udp_payload: Option<u16>,
}

/// What one run produced.
#[derive(Debug)]
pub(crate) struct ContenderRun {
    pub(crate) report: ScenarioReport,
    /// The broker's CPU and memory during the run.
    pub(crate) trace: ProcessTrace,
    /// Whether the broker was still running at the end.
    pub(crate) survived: bool,
}

/// Runs `spec` against a fresh broker of `contender`, sampling the broker process.
/// `adjust_target` may change how clients connect (keep alive, source addresses).
pub(crate) async fn run_contender(
    setup: &RunSetup<'_>,
    contender: Contender,
    adjust_target: impl FnOnce(&mut Target),
    spec: &LoadSpec,
    progress: &Progress,
) -> Result<ContenderRun, String> {
    let program = match contender.broker {
        BrokerKind::Mosquitto => setup.mosquitto_program,
        BrokerKind::Mquictt => setup.mquictt_program,
    };
    let with_tls = contender.transport != TransportKind::Tcp;
    let certificates = with_tls.then_some(setup.certificates);
    let mut broker = BrokerProcess::start_with(
        contender.broker,
        program,
        certificates,
        setup.quic_max_udp_payload,
    )
    .await
    .map_err(|e| e.to_string())?;
    let addr = broker.addr_for(contender.transport).ok_or_else(|| {
        format!(
            "{} has no {} listener",
            contender.broker.name(),
            transport_name(contender.transport)
        )
    })?;
    let tls = if with_tls {
        setup.certificates.client_tls().clone()
    } else {
        ClientTlsSettings::default()
    };
    let url = format!("{}://{addr}", contender.transport.scheme());
    let url = TransportUrl::parse(&url).map_err(|e| e.to_string())?;
    let quic = QuicClientOptions {
        max_udp_payload: setup.quic_max_udp_payload,
        ..QuicClientOptions::default()
    };
    let mut target = Target::with_quic(url, &tls, quic).map_err(|e| e.to_string())?;
    adjust_target(&mut target);
    tokio::time::sleep(setup.settle).await;
    let sampler = ProcessSampler::start(broker.pid)
        .map_err(|e| format!("cannot read /proc/{}: {e}", broker.pid))?;
    let result = run(&target, spec, progress).await;
    let trace = sampler.finish_trace().await.unwrap_or_default();
    let survived = broker.is_running();
    broker.stop().await;
    Ok(ContenderRun {
        report: result.map_err(|e| e.to_string())?,
        trace,
        survived,
    })
}
