//! The `mquictt` binary: parses the command line, sets up logging and runs a subcommand.
//! Everything else lives in the library crates. Without the `broker` feature it is a
//! client-only binary (`pub`, `sub`) that contains no broker code.

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
// A binary has no public API: `pub` here only means "visible to the other modules".
#![allow(unreachable_pub)]

mod cli;
mod commands;
#[cfg(feature = "broker")]
mod config;
#[cfg(feature = "broker")]
mod metrics_http;
#[cfg(feature = "broker")]
mod open_files;
mod quic_datagrams;
#[cfg(any(test, not(feature = "broker")))]
mod stderr_log;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    #[cfg(feature = "broker")]
    if let Command::Broker(args) = &cli.command {
        if let Some(threads) = args.threads {
            builder.worker_threads(threads.into());
        }
    }
    #[cfg(feature = "broker")]
    if raises_trim_threshold(&cli.command) {
        // Before the runtime's threads exist: see the crate's documentation for why.
        let trim = mquictt_malloc::raise_trim_threshold();
        tracing::debug!(?trim, "heap trim threshold");
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mquictt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            #[cfg(feature = "broker")]
            Command::Broker(args) => commands::broker::run(args).await.map_err(|e| e.to_string()),
            #[cfg(feature = "broker")]
            Command::Cert(args) => commands::cert::run(args).map_err(|e| e.to_string()),
            #[cfg(feature = "broker")]
            Command::Passwd(args) => commands::passwd::run(&args)
                .map(|outcome| {
                    println!(
                        "{outcome:?} user {:?} in {}",
                        args.user,
                        args.file.display()
                    )
                })
                .map_err(|e| e.to_string()),
            #[cfg(feature = "bench")]
            Command::Bench(args) => commands::bench::run(args).await.map_err(|e| e.to_string()),
            Command::Pub(args) => commands::publish::run(args)
                .await
                .map_err(|e| e.to_string()),
            Command::Sub(args) => commands::subscribe::run(args)
                .await
                .map_err(|e| e.to_string()),
            #[cfg(feature = "lab")]
            Command::Lab(args) => commands::lab::run(args).await.map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mquictt: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `command` runs with glibc's heap trim threshold raised: the broker, and the load
/// generator, whose QUIC clients copy datagrams into fresh allocations as the broker's
/// connections do. With glibc's default the generator took 36,000 to 166,000 page faults in 4 s
/// of one pair at full speed over QUIC, 2,200 to 2,500 with the threshold raised; the faults'
/// system time is taken from the broker on a machine that runs both (docs/benchmarks.md,
/// *QUIC throughput*).
#[cfg(feature = "broker")]
fn raises_trim_threshold(command: &Command) -> bool {
    match command {
        Command::Broker(_) => true,
        #[cfg(feature = "bench")]
        Command::Bench(_) => true,
        _ => false,
    }
}

/// Logs to stderr, filtered by `--log`. Builds with the broker use tracing-subscriber's
/// formatter: `Targets` takes the `--log` syntax (`info`, `mquictt_broker=trace,warn`) without
/// the regex engine `EnvFilter` carries.
#[cfg(feature = "broker")]
fn init_logging(directives: &str) {
    use std::io::IsTerminal;

    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter: Targets = directives.parse().unwrap_or_else(|e| {
        eprintln!("mquictt: bad --log filter {directives:?} ({e}); using \"info\"");
        Targets::new().with_default(tracing::Level::INFO)
    });
    // The formatter is a layer under the `--log` filter alone: `fmt().finish()` would bring
    // its own default filter (INFO) and silently drop what `--log debug` asks for.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}

/// Logs to stderr, filtered by `--log`. Client-only builds use a small subscriber of their
/// own, with the same filter syntax and line layout, in a tenth of the code.
#[cfg(not(feature = "broker"))]
fn init_logging(directives: &str) {
    use crate::stderr_log::{LogFilter, StderrLogger};

    let filter: LogFilter = directives.parse().unwrap_or_else(|e| {
        eprintln!("mquictt: bad --log filter {directives:?} ({e}); using \"info\"");
        LogFilter::at_level(tracing::level_filters::LevelFilter::INFO)
    });
    // The only subscriber this process sets, so it cannot already be set.
    let _ = tracing::subscriber::set_global_default(StderrLogger::new(filter));
}
