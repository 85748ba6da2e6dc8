//! CPU time and resident memory of a broker process while a scenario runs, read from
//! `/proc/PID/stat` (user plus system time) and `/proc/PID/status` (`VmRSS`) every 100 ms into a
//! [`ProcessTrace`], which reports [`ProcessUsage`] over the whole run or over a window of it
//! (the publishing phase, for the load curve). Linux only; reads nothing but `/proc`.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// How often the sampler reads `/proc`: CPU time moves in 10 ms ticks, so a window of a few
/// seconds is measured to a fraction of a percent.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Clock ticks per second of `/proc/PID/stat` times. The kernel reports these in USER_HZ,
/// which is 100 on every Linux architecture's user ABI.
const USER_HZ: f64 = 100.0;

/// CPU and memory of a process over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// CPU time over wall time, in percent of one core (200 % = two cores busy).
    pub cpu_percent: f64,
    /// Largest resident set seen, KiB.
    pub peak_rss_kib: u64,
    /// Resident set when the interval started, KiB.
    pub start_rss_kib: u64,
    /// Mean of the resident sets sampled in the interval, KiB.
    pub mean_rss_kib: u64,
}

/// One reading of `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// When it was read.
    pub at: Instant,
    /// User plus system CPU time so far, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set, KiB.
    pub rss_kib: u64,
}

/// Every sample of a run, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessTrace {
    /// The readings.
    pub samples: Vec<ProcessSample>,
}

impl ProcessTrace {
    /// Usage from the first sample to the last.
    pub fn usage(&self) -> ProcessUsage {
        usage_of(&self.samples)
    }

    /// Usage from `from` to `to`: the samples inside the window, preceded by the last sample
    /// before it, so that CPU time spent between that sample and the first one inside counts.
    pub fn usage_between(&self, from: Instant, to: Instant) -> ProcessUsage {
        let first = self.samples.iter().rposition(|s| s.at <= from).unwrap_or(0);
        let last = self
            .samples
            .iter()
            .position(|s| s.at >= to)
            .unwrap_or(self.samples.len().saturating_sub(1));
        self.samples
            .get(first..=last.max(first))
            .map_or_else(ProcessUsage::default, usage_of)
    }
}

fn usage_of(samples: &[ProcessSample]) -> ProcessUsage {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return ProcessUsage::default();
    };
    let elapsed = last.at.saturating_duration_since(first.at).as_secs_f64();
    let cpu_seconds = last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / USER_HZ;
    let rss_sum: u64 = samples.iter().map(|s| s.rss_kib).sum();
    ProcessUsage {
        cpu_percent: if elapsed > 0.0 {
            cpu_seconds / elapsed * 100.0
        } else {
            0.0
        },
        peak_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        start_rss_kib: first.rss_kib,
        mean_rss_kib: rss_sum / samples.len() as u64,
    }
}

/// Reads a process's CPU time and resident set every 100 ms until finished.
#[derive(Debug)]
pub struct ProcessSampler {
    pid: u32,
    task: JoinHandle<Vec<ProcessSample>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl ProcessSampler {
    /// Starts sampling `pid`; fails if its `/proc` entries cannot be read.
    pub fn start(pid: u32) -> std::io::Result<Self> {
        let first = sample(pid)?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut samples = vec![first];
            loop {
                tokio::select! {
                    _ = stopped.changed() => return samples,
                    () = tokio::time::sleep(SAMPLE_INTERVAL) => {}
                }
                // A process that exited leaves a gap; the trace ends with what was read.
                if let Ok(s) = sample(pid) {
                    samples.push(s);
                }
            }
        });
        Ok(Self { pid, task, stop })
    }

    /// Stops sampling and reports the usage since [`ProcessSampler::start`].
    pub async fn finish(self) -> std::io::Result<ProcessUsage> {
        Ok(self.finish_trace().await?.usage())
    }

    /// Stops sampling and returns every sample, the last one read now.
    pub async fn finish_trace(self) -> std::io::Result<ProcessTrace> {
        let last = sample(self.pid);
        let _ = self.stop.send(true);
        let mut samples = self.task.await.unwrap_or_default();
        samples.push(last?);
        Ok(ProcessTrace { samples })
    }
}

fn sample(pid: u32) -> std::io::Result<ProcessSample> {
    Ok(ProcessSample {
        at: Instant::now(),
        cpu_ticks: cpu_ticks(pid)?,
        rss_kib: rss_kib(pid)?,
    })
}

/// User plus system CPU time of `pid` in clock ticks (fields 14 and 15 of `/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "unexpected /proc/PID/stat format",
        )
    })
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces; count fields from
    // the last `)`. After it come field 3 (state), so utime (14) and stime (15) are the 12th
    // and 13th.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no VmRSS in /proc/PID/status",
        )
    })
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmRSS:\t    6144 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(6144));
    }

    #[test]
    fn own_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_ticks(pid).is_ok());
    }

    fn trace(points: &[(u64, u64, u64)]) -> (Instant, ProcessTrace) {
        let t0 = Instant::now();
        let samples = points
            .iter()
            .map(|&(ms, cpu_ticks, rss_kib)| ProcessSample {
                at: t0 + Duration::from_millis(ms),
                cpu_ticks,
                rss_kib,
            })
            .collect();
        (t0, ProcessTrace { samples })
    }

    #[test]
    fn usage_over_the_whole_trace() {
        // 1 s of wall time, 50 ticks (0.5 s) of CPU: 50 %.
        let (_, t) = trace(&[(0, 100, 1000), (500, 120, 3000), (1000, 150, 2000)]);
        let u = t.usage();
        assert!((u.cpu_percent - 50.0).abs() < 1e-9, "{u:?}");
        assert_eq!(u.peak_rss_kib, 3000);
        assert_eq!(u.start_rss_kib, 1000);
        assert_eq!(u.mean_rss_kib, 2000);
    }

    #[test]
    fn usage_in_a_window_starts_at_the_sample_before_it() {
        // Idle for 1 s, then 2 s at 100 % of a core, then idle again.
        let (t0, t) = trace(&[
            (0, 0, 500),
            (1000, 0, 500),
            (2000, 100, 900),
            (3000, 200, 1100),
            (4000, 200, 700),
        ]);
        let ms = |n| t0 + Duration::from_millis(n);
        let busy = t.usage_between(ms(1100), ms(2900));
        assert!((busy.cpu_percent - 100.0).abs() < 1e-9, "{busy:?}");
        assert_eq!(busy.start_rss_kib, 500);
        assert_eq!(busy.peak_rss_kib, 1100);
        assert_eq!(busy.mean_rss_kib, (500 + 900 + 1100) / 3);
        let whole = t.usage();
        assert!((whole.cpu_percent - 50.0).abs() < 1e-9, "{whole:?}");
        assert_eq!(t.usage_between(ms(5000), ms(6000)).peak_rss_kib, 700);
    }
}
