//! `mquictt lab`: runs the study's experiments on the lab's emulated links and writes CSV
//! files, charts and `report.md` into one directory, with a progress bar. Argument parsing,
//! the progress bar and Ctrl-C handling live here; the experiments are the
//! `mquictt-lab-experiments` crate's.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mquictt_lab::LinkProfiles;
use mquictt_lab_experiments::report::Report;
use mquictt_lab_experiments::{
    connection, delivery, footprint, sweep, ExperimentError, Progress, Settings,
};

/// `mquictt lab`
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Which experiment.
    #[command(subcommand)]
    pub experiment: LabExperiment,

    /// Output directory for CSV files, charts and report.md.
    #[arg(long, global = true, value_name = "DIR", default_value = "lab-results")]
    pub out: PathBuf,

    /// A few minutes instead of the full study: one scenario and link type, fewer messages,
    /// one seed.
    #[arg(long, global = true)]
    pub quick: bool,

    /// Seeds per configuration (default 3, or 1 with --quick).
    #[arg(long, global = true, value_name = "N")]
    pub seeds: Option<u32>,

    /// Scenario of links.toml to run (repeatable; default all, or smart_home with --quick).
    #[arg(long = "scenario", global = true, value_name = "NAME")]
    pub scenarios: Vec<String>,

    /// Link type to run (repeatable; default all, or wifi with --quick).
    #[arg(long = "link", global = true, value_name = "NAME")]
    pub links: Vec<String>,

    /// Link profiles to use instead of the built-in links.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub links_file: Option<PathBuf>,

    /// Mosquitto executable for the comparison rows (default /usr/sbin/mosquitto if present).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "no_mosquitto"
    )]
    pub mosquitto: Option<PathBuf>,

    /// Leave the Mosquitto rows out.
    #[arg(long, global = true)]
    pub no_mosquitto: bool,

    /// Source tree to build the release-small binaries from (footprint); without it the
    /// binaries at hand are measured.
    #[arg(long, global = true, value_name = "DIR")]
    pub source: Option<PathBuf>,

    /// Connection cost: QUIC without path MTU discovery in the broker and the client (every
    /// datagram at 1,200 bytes, no probes), as for narrowband links.
    #[arg(long, global = true)]
    pub no_quic_mtu_discovery: bool,
}

/// The experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum LabExperiment {
    /// Connection cost per transport: handshake time, CONNACK, first PUBLISH, bytes per state.
    Conn,
    /// Delivery under the study's scenarios: ratio, latency, completion time.
    Delivery,
    /// Loss sweep 0-10%: throughput and latency, TCP vs QUIC; head-of-line blocking.
    Sweep,
    /// Binary sizes, per-crate breakdown and idle client memory.
    Footprint,
    /// Everything, in that order.
    All,
}

/// Why `mquictt lab` failed.
#[derive(Debug, thiserror::Error)]
pub enum LabCommandError {
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    #[error("links file: {0}")]
    Profiles(#[from] mquictt_lab::ProfileError),
    #[error("cannot find the mquictt executable: {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot create {path}: {source}")]
    OutDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the experiments stopped unexpectedly: {0}")]
    Join(String),
}

/// Runs the chosen experiments and writes the report.
pub async fn run(args: LabArgs) -> Result<(), LabCommandError> {
    let started = Instant::now();
    let program = std::env::current_exe().map_err(LabCommandError::CurrentExe)?;
    std::fs::create_dir_all(&args.out).map_err(|source| LabCommandError::OutDir {
        path: args.out.clone(),
        source,
    })?;
    let mut settings = Settings::new(args.out.clone(), program, args.quick);
    if let Some(seeds) = args.seeds {
        settings.seeds = seeds.max(1);
    }
    settings.scenarios = args.scenarios.clone();
    settings.links = args.links.clone();
    if let Some(file) = &args.links_file {
        settings.profiles = LinkProfiles::load(file)?;
    }
    if args.no_mosquitto {
        settings.mosquitto = None;
    } else if let Some(mosquitto) = &args.mosquitto {
        settings.mosquitto = Some(mosquitto.clone());
    }
    settings.source_dir = args.source.clone();
    settings.quic_mtu_discovery = !args.no_quic_mtu_discovery;
    let command = command_line();
    let experiment = args.experiment;

    // Ctrl-C, SIGTERM, SIGHUP: stop the brokers and delete the lab's namespaces before
    // leaving (the lab's own handlers are off).
    let signals = [
        (tokio::signal::unix::SignalKind::interrupt(), 130),
        (tokio::signal::unix::SignalKind::terminate(), 143),
        (tokio::signal::unix::SignalKind::hangup(), 129),
    ];
    for (kind, status) in signals {
        if let Ok(mut signal) = tokio::signal::unix::signal(kind) {
            tokio::spawn(async move {
                if signal.recv().await.is_some() {
                    mquictt_lab_experiments::brokers::kill_all_brokers();
                    mquictt_lab::teardown_all();
                    eprintln!("mquictt lab: interrupted; brokers stopped and namespaces removed");
                    std::process::exit(status);
                }
            });
        }
    }

    let report = tokio::task::spawn_blocking(move || {
        run_experiments(&settings, experiment, command, started)
    })
    .await
    .map_err(|e| LabCommandError::Join(e.to_string()))??;
    println!("report written to {}", args.out.join("report.md").display());
    let _ = report;
    Ok(())
}

fn run_experiments(
    settings: &Settings,
    experiment: LabExperiment,
    command: String,
    started: Instant,
) -> Result<Report, LabCommandError> {
    let progress = BarProgress::new();
    let mut report = Report {
        command,
        quick: settings.quick,
        seeds: settings.seeds,
        ..Report::default()
    };
    let all = experiment == LabExperiment::All;
    // The report is rewritten after each experiment, so an interrupted run keeps what it has.
    let save = |report: &mut Report| -> Result<(), LabCommandError> {
        report.elapsed_s = started.elapsed().as_secs_f64();
        report.write(&settings.out_dir)?;
        Ok(())
    };
    if all || experiment == LabExperiment::Conn {
        report.connection = Some(connection::run(settings, &progress)?);
        save(&mut report)?;
    }
    if all || experiment == LabExperiment::Delivery {
        report.delivery = Some(delivery::run(settings, &progress)?);
        save(&mut report)?;
    }
    if all || experiment == LabExperiment::Sweep {
        report.sweep = Some(sweep::run(settings, &progress)?);
        save(&mut report)?;
    }
    if all || experiment == LabExperiment::Footprint {
        report.footprint = Some(footprint::run(settings, &progress)?);
        save(&mut report)?;
    }
    Ok(report)
}

/// The command line as typed, for the report (program name without its directory).
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(|p| {
            PathBuf::from(p)
                .file_name()
                .map_or("mquictt".to_owned(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "mquictt".to_owned());
    std::iter::once(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An indicatif bar per experiment.
#[derive(Debug)]
struct BarProgress {
    bars: MultiProgress,
    current: std::sync::Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    fn new() -> Self {
        BarProgress {
            bars: MultiProgress::new(),
            current: std::sync::Mutex::new(None),
        }
    }

    fn bar(&self) -> Option<ProgressBar> {
        self.current.lock().ok().and_then(|b| b.clone())
    }
}

impl Progress for BarProgress {
    fn begin(&self, experiment: &str, steps: u64) {
        let bar = self.bars.add(ProgressBar::new(steps));
        // The template is a constant known to be valid; fall back to the default style anyway.
        let style = ProgressStyle::with_template(
            "{prefix:>16} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(experiment.to_owned());
        if let Ok(mut current) = self.current.lock() {
            *current = Some(bar);
        }
    }

    fn step(&self, label: &str) {
        if let Some(bar) = self.bar() {
            bar.set_message(label.to_owned());
            bar.inc(1);
        }
    }

    fn note(&self, message: &str) {
        let _ = self.bars.println(format!("note: {message}"));
    }

    fn end(&self, _experiment: &str) {
        if let Some(bar) = self.bar() {
            bar.finish_with_message("done");
        }
    }
}
