//! The progress bar of a run on a terminal (indicatif): connections made while connecting,
//! then elapsed time, with live counts of sent and received messages. Hidden when stderr is
//! not a terminal, so logs and CI output stay clean.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::spec::LoadSpec;
use crate::stats::LiveCounters;

/// What a run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Connecting = 0,
    Running = 1,
    Draining = 2,
}

/// Shows a run's progress, or nothing.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    phase: Arc<AtomicU8>,
    redraw: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    /// No output at all.
    pub fn hidden() -> Self {
        Self {
            bar: None,
            phase: Arc::new(AtomicU8::new(Phase::Connecting as u8)),
            redraw: Mutex::new(None),
        }
    }

    /// A bar on stderr when it is a terminal, nothing otherwise.
    pub fn on_terminal() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar: Some(bar),
            ..Self::hidden()
        }
    }

    pub(crate) fn start(&self, spec: &LoadSpec, connections: usize, counters: Arc<LiveCounters>) {
        let Some(bar) = self.bar.clone() else {
            return;
        };
        self.phase.store(Phase::Connecting as u8, Ordering::Relaxed);
        bar.reset();
        bar.set_length(connections as u64);
        bar.set_prefix("connecting");
        let phase = self.phase.clone();
        let duration_s = spec.duration.as_secs().max(1);
        let handle = tokio::spawn(async move {
            let mut running_since = None;
            let mut last = (Instant::now(), 0u64);
            loop {
                let connected = LiveCounters::get(&counters.connected);
                let failed = LiveCounters::get(&counters.connect_failed);
                let sent = LiveCounters::get(&counters.sent);
                let received = LiveCounters::get(&counters.received);
                let now = Instant::now();
                let elapsed = now.duration_since(last.0).as_secs_f64().max(1e-3);
                let recv_rate = received.saturating_sub(last.1) as f64 / elapsed;
                last = (now, received);
                match phase.load(Ordering::Relaxed) {
                    0 => bar.set_position(connected + failed),
                    1 => {
                        let since = *running_since.get_or_insert(now);
                        bar.set_prefix("running");
                        bar.set_length(duration_s);
                        bar.set_position(now.duration_since(since).as_secs().min(duration_s));
                    }
                    _ => bar.set_prefix("draining"),
                }
                bar.set_message(format!(
                    "conn {connected} fail {failed} sent {sent} recv {received} ({recv_rate:.0}/s)"
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        if let Ok(mut redraw) = self.redraw.lock() {
            if let Some(old) = redraw.replace(handle) {
                old.abort();
            }
        }
    }

    pub(crate) fn phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self) {
        if let Ok(mut redraw) = self.redraw.lock() {
            if let Some(handle) = redraw.take() {
                handle.abort();
            }
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
