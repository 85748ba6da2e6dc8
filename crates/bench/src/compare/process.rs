//! The brokers of a comparison as child processes: Mosquitto with a generated config file and
//! the `mquictt broker` binary, both on an ephemeral loopback port with persistence off, the
//! same queue and inflight limits and TCP_NODELAY; and [`ProcessSampler`], which reads the
//! broker's CPU time and resident memory from `/proc` while a scenario runs. Linux only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::error::BenchError;

/// Messages queued per session in both brokers: large enough that QoS 1 runs of a few
/// seconds do not hit the limit, small enough that a QoS 0 flood cannot exhaust memory.
pub const MAX_QUEUED_MESSAGES: usize = 10_000;

/// Unacknowledged QoS 1/2 messages per 3.1.1 subscriber in both brokers: MQuicTT's default.
pub const MAX_INFLIGHT: u16 = 32;

/// How long a broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which broker a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// Eclipse Mosquitto, in-memory (its default).
    Mosquitto,
    /// The MQuicTT broker.
    Mquictt,
}

impl BrokerKind {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Mosquitto => "mosquitto",
            BrokerKind::Mquictt => "mquictt",
        }
    }
}

/// A broker running as a child process; killed when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    /// Which broker.
    pub kind: BrokerKind,
    /// Its TCP listener on loopback.
    pub addr: SocketAddr,
    /// Its process id, for `/proc`.
    pub pid: u32,
    child: Child,
    _stdout_drain: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts `program` as a broker of `kind` on `127.0.0.1` and waits until it accepts TCP
    /// connections.
    pub async fn start(kind: BrokerKind, program: &Path) -> Result<Self, BenchError> {
        let fail = |message: String| BenchError::BrokerProcess {
            program: program.to_owned(),
            message,
        };
        if !program.exists() {
            return Err(fail(match kind {
                BrokerKind::Mosquitto => {
                    "not found; install it with `apt-get install mosquitto` (Debian/Ubuntu)".into()
                }
                BrokerKind::Mquictt => {
                    "not found; build it with `cargo build --release -p mquictt`".into()
                }
            }));
        }
        let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
        let log = std::fs::File::create(dir.path().join("broker.log"))
            .map_err(|e| fail(format!("log file: {e}")))?;
        let mut command = Command::new(program);
        command
            .stdin(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let (child, addr, drain) = match kind {
            BrokerKind::Mosquitto => {
                let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
                let config = dir.path().join("mosquitto.conf");
                std::fs::write(&config, mosquitto_config(port))
                    .map_err(|e| fail(format!("config file: {e}")))?;
                let child = command
                    .arg("-c")
                    .arg(&config)
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| fail(format!("cannot start: {e}")))?;
                (child, SocketAddr::from(([127, 0, 0, 1], port)), None)
            }
            BrokerKind::Mquictt => {
                let config = dir.path().join("mquictt.toml");
                std::fs::write(&config, mquictt_config())
                    .map_err(|e| fail(format!("config file: {e}")))?;
                let mut child = command
                    .args(["--log", "warn", "broker", "--listen", "tcp://127.0.0.1:0"])
                    .arg("--data-dir")
                    .arg(dir.path().join("data"))
                    .arg("--config")
                    .arg(&config)
                    .stdout(Stdio::piped())
                    .spawn()
                    .map_err(|e| fail(format!("cannot start: {e}")))?;
                let stdout = child
                    .stdout
                    .take()
                    .ok_or_else(|| fail("no stdout".into()))?;
                let mut lines = BufReader::new(stdout).lines();
                let addr = tokio::time::timeout(START_TIMEOUT, async {
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(addr) = listening_addr(&line) {
                            return Some(addr);
                        }
                    }
                    None
                })
                .await
                .ok()
                .flatten()
                .ok_or_else(|| {
                    fail(format!(
                        "printed no `listening on URL (ADDR)` line; see {}",
                        dir.path().join("broker.log").display()
                    ))
                })?;
                // Keep reading so the broker never blocks on a full pipe.
                let drain =
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                (child, addr, Some(drain))
            }
        };
        let pid = child.id().ok_or_else(|| fail("exited at once".into()))?;
        let mut process = BrokerProcess {
            kind,
            addr,
            pid,
            child,
            _stdout_drain: drain,
            _dir: dir,
        };
        process.wait_until_accepting().await.map_err(fail)?;
        Ok(process)
    }

    async fn wait_until_accepting(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("does not accept connections on {}", self.addr));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the broker and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Mosquitto's settings, equivalent to MQuicTT's: loopback only, anonymous, in memory (no
/// `persistence`), the same queue and inflight limits, Nagle off as MQuicTT always does.
fn mosquitto_config(port: u16) -> String {
    format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence false\n\
         max_queued_messages {MAX_QUEUED_MESSAGES}\n\
         max_inflight_messages {MAX_INFLIGHT}\n\
         set_tcp_nodelay true\n\
         max_connections -1\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n"
    )
}

/// MQuicTT's settings: the same queue and inflight limits, room for the idle-connection run.
fn mquictt_config() -> String {
    // Mosquitto limits neither publish nor connection rates by default; neither may we here,
    // or the comparison would measure our throttles instead of our broker.
    format!(
        "[limits]\n\
         max_connections = 1000000\n\
         max_queued_messages = {MAX_QUEUED_MESSAGES}\n\
         v3_inflight = {MAX_INFLIGHT}\n\
         publish_rate = 0\n\
         connection_rate = 0\n"
    )
}

/// The bound address in a `listening on URL (ADDR)` line of `mquictt broker`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("listening on ")?;
    let open = rest.rfind('(')?;
    rest.get(open + 1..)?.strip_suffix(')')?.parse().ok()
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The path a Debian/Ubuntu `mosquitto` package installs the broker at.
pub fn default_mosquitto_program() -> PathBuf {
    PathBuf::from("/usr/sbin/mosquitto")
}

/// CPU and memory of a process over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// CPU time over wall time, in percent of one core (200 % = two cores busy).
    pub cpu_percent: f64,
    /// Largest resident set seen, KiB.
    pub peak_rss_kib: u64,
    /// Resident set when sampling started, KiB.
    pub start_rss_kib: u64,
}

/// Samples a process's resident set every 50 ms and its CPU time at start and end.
#[derive(Debug)]
pub struct ProcessSampler {
    pid: u32,
    started: Instant,
    start_ticks: u64,
    start_rss_kib: u64,
    peak: JoinHandle<u64>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl ProcessSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> std::io::Result<Self> {
        let start_ticks = cpu_ticks(pid)?;
        let start_rss_kib = rss_kib(pid)?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let peak = tokio::spawn(async move {
            let mut peak = start_rss_kib;
            loop {
                if let Ok(rss) = rss_kib(pid) {
                    peak = peak.max(rss);
                }
                tokio::select! {
                    _ = stopped.changed() => return peak,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        });
        Ok(Self {
            pid,
            started: Instant::now(),
            start_ticks,
            start_rss_kib,
            peak,
            stop,
        })
    }

    /// Stops sampling and reports the usage since [`ProcessSampler::start`].
    pub async fn finish(self) -> std::io::Result<ProcessUsage> {
        let end_ticks = cpu_ticks(self.pid)?;
        let end_rss = rss_kib(self.pid).unwrap_or(0);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-6);
        let _ = self.stop.send(true);
        let peak = self.peak.await.unwrap_or(self.start_rss_kib).max(end_rss);
        let cpu_seconds = end_ticks.saturating_sub(self.start_ticks) as f64 / USER_HZ;
        Ok(ProcessUsage {
            cpu_percent: cpu_seconds / elapsed * 100.0,
            peak_rss_kib: peak,
            start_rss_kib: self.start_rss_kib,
        })
    }
}

/// Clock ticks per second of `/proc/PID/stat` times. The kernel reports these in USER_HZ,
/// which is 100 on every Linux architecture's user ABI.
const USER_HZ: f64 = 100.0;

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

    #[test]
    fn listening_line_gives_the_bound_address() {
        assert_eq!(
            listening_addr("listening on mqtt://127.0.0.1:0 (127.0.0.1:41234)"),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(listening_addr("something else"), None);
    }
}
