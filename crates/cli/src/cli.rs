//! The command line: every subcommand and flag of `mquictt`, as clap definitions. Parsing only;
//! the work is done in `commands/`.

#[cfg(feature = "broker")]
use std::path::PathBuf;

#[cfg(feature = "broker")]
use clap::Args;
use clap::{Parser, Subcommand};

#[cfg(feature = "lab")]
use crate::commands::lab::LabArgs;
use crate::commands::publish::PubArgs;
use crate::commands::subscribe::SubArgs;

/// MQTT 3.1.1/5.0 broker and client with QUIC beside TCP, TLS and WebSocket.
#[derive(Debug, Parser)]
#[command(name = "mquictt", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `mquictt_broker=trace`.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker. With no arguments it listens on loopback only (TCP 1883, QUIC 14567,
    /// WebSocket 8083), allows anonymous clients there and keeps its data in ./mquictt-data.
    #[cfg(feature = "broker")]
    Broker(BrokerArgs),
    /// Create a CA, server certificates and client certificates (PEM, ECDSA P-256).
    #[cfg(feature = "broker")]
    Cert(crate::commands::cert::CertArgs),
    /// Add a user to a password file, change its password, or delete it with -D.
    #[cfg(feature = "broker")]
    Passwd(crate::commands::passwd::PasswdArgs),
    /// Publish messages: `mquictt pub --url quic://127.0.0.1 -t sensors/1 -m 21.5 -q 1`.
    Pub(PubArgs),
    /// Subscribe and print messages: `mquictt sub --url quic://127.0.0.1 -t 'sensors/#' -v`.
    Sub(SubArgs),
    /// Load generator and the side-by-side comparison with Mosquitto.
    #[cfg(feature = "bench")]
    Bench(crate::commands::bench::BenchArgs),
    /// Run the study's experiments on emulated links (needs root): `mquictt lab all --out DIR`.
    #[cfg(feature = "lab")]
    Lab(LabArgs),
}

/// `mquictt broker`
#[cfg(feature = "broker")]
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// TOML config file (see docs/configuration.md and examples/mquictt.toml).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Listener URL, repeatable; replaces the config file's [[listener]] tables. Schemes:
    /// tcp:// (or mqtt://), tls:// (or mqtts://), ws://HOST:PORT/PATH, wss://HOST:PORT/PATH,
    /// quic://. Port 0 picks a free port.
    #[arg(short, long = "listen", value_name = "URL")]
    pub listen: Vec<String>,

    /// Directory for durable data and generated certificates (default ./mquictt-data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Worker threads that serve the connections (default: one per CPU core, or
    /// TOKIO_WORKER_THREADS). Fewer threads wake each other less, which costs less CPU per
    /// message on a machine shared with busy clients; more carry more load (see
    /// docs/configuration.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Threads of each QUIC listener's own, each serving the connections placed on it, for
    /// listeners whose config sets no quic_threads (default: as many as worker threads; 0
    /// serves QUIC connections on the worker threads). See docs/quic.md, "Threads".
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16)
        .range(0..=mquictt_transport::quic::MAX_SERVER_THREADS as i64))]
    pub quic_threads: Option<u16>,
}
