//! The brokers of a comparison as child processes: Mosquitto with a generated config file and
//! the `mquictt broker` binary, both on ephemeral loopback ports with the same queue and
//! inflight limits and TCP_NODELAY, Mosquitto in memory (its default) and MQuicTT with its
//! default durable storage in a fresh data directory (the goals compare our durable mode with
//! Mosquitto's in-memory default), and on request a TLS listener (both) and a
//! QUIC listener (MQuicTT) presenting the comparison's [`BenchCertificates`]. Linux only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use mquictt_transport::TransportKind;

use super::certificates::BenchCertificates;
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
    /// Its TLS listener, if it was started with certificates.
    pub tls_addr: Option<SocketAddr>,
    /// Its QUIC listener (MQuicTT started with certificates only).
    pub quic_addr: Option<SocketAddr>,
    /// Its process id, for `/proc`.
    pub pid: u32,
    child: Child,
    _stdout_drain: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts `program` as a broker of `kind` on `127.0.0.1` and waits until it accepts TCP
    /// connections.
    pub async fn start(kind: BrokerKind, program: &Path) -> Result<Self, BenchError> {
        Self::start_with(kind, program, None, None).await
    }

    /// Like [`BrokerProcess::start`]; with `certificates` the broker also listens for TLS
    /// (both brokers) and QUIC (MQuicTT) on loopback, presenting that certificate, its QUIC
    /// listener with `quic_max_udp_payload` as the ceiling of path MTU discovery if given.
    pub async fn start_with(
        kind: BrokerKind,
        program: &Path,
        certificates: Option<&BenchCertificates>,
        quic_max_udp_payload: Option<u16>,
    ) -> Result<Self, BenchError> {
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
        let (child, listeners, drain) = match kind {
            BrokerKind::Mosquitto => {
                let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
                let tls = match certificates {
                    Some(certs) => Some((
                        free_port().map_err(|e| fail(format!("no free port: {e}")))?,
                        certs,
                    )),
                    None => None,
                };
                let config = dir.path().join("mosquitto.conf");
                std::fs::write(&config, mosquitto_config(port, tls))
                    .map_err(|e| fail(format!("config file: {e}")))?;
                let child = command
                    .arg("-c")
                    .arg(&config)
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| fail(format!("cannot start: {e}")))?;
                let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
                let listeners = Listeners {
                    tcp: Some(loopback(port)),
                    tls: tls.map(|(port, _)| loopback(port)),
                    quic: None,
                };
                (child, listeners, None)
            }
            BrokerKind::Mquictt => {
                let config = dir.path().join("mquictt.toml");
                std::fs::write(&config, mquictt_config(certificates, quic_max_udp_payload))
                    .map_err(|e| fail(format!("config file: {e}")))?;
                let mut child = command
                    .args(["--log", "warn", "broker"])
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
                let wanted = if certificates.is_some() { 3 } else { 1 };
                let listeners = tokio::time::timeout(START_TIMEOUT, async {
                    let mut listeners = Listeners::default();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some((kind, addr)) = listening_addr(&line) {
                            listeners.set(kind, addr);
                            if listeners.count() == wanted {
                                return Some(listeners);
                            }
                        }
                    }
                    None
                })
                .await
                .ok()
                .flatten()
                .ok_or_else(|| {
                    fail(format!(
                        "printed no `listening on URL (ADDR)` line for each listener; see {}",
                        dir.path().join("broker.log").display()
                    ))
                })?;
                // Keep reading so the broker never blocks on a full pipe.
                let drain =
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                (child, listeners, Some(drain))
            }
        };
        let addr = listeners
            .tcp
            .ok_or_else(|| fail("no TCP listener".into()))?;
        let pid = child.id().ok_or_else(|| fail("exited at once".into()))?;
        let mut process = BrokerProcess {
            kind,
            addr,
            tls_addr: listeners.tls,
            quic_addr: listeners.quic,
            pid,
            child,
            _stdout_drain: drain,
            dir,
        };
        process.wait_until_accepting().await.map_err(fail)?;
        Ok(process)
    }

    /// The listener for `transport`, if the broker has one.
    pub fn addr_for(&self, transport: TransportKind) -> Option<SocketAddr> {
        match transport {
            TransportKind::Tcp => Some(self.addr),
            TransportKind::Tls => self.tls_addr,
            TransportKind::Quic => self.quic_addr,
            TransportKind::Ws | TransportKind::Wss => None,
        }
    }

    async fn wait_until_accepting(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
                let last = log.lines().rev().take(3).collect::<Vec<_>>();
                let last: Vec<&str> = last.into_iter().rev().collect();
                return Err(format!("exited with {status}: {}", last.join(" / ")));
            }
            let tcp_up = tokio::net::TcpStream::connect(self.addr).await.is_ok();
            let tls_up = match self.tls_addr {
                Some(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
                None => true,
            };
            if tcp_up && tls_up {
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
/// `persistence`), the same queue and inflight limits, Nagle off as MQuicTT always does; with
/// `tls`, a second listener on that port with the comparison's certificate.
fn mosquitto_config(port: u16, tls: Option<(u16, &BenchCertificates)>) -> String {
    let mut config = format!(
        "allow_anonymous true\n\
         persistence false\n\
         max_queued_messages {MAX_QUEUED_MESSAGES}\n\
         max_inflight_messages {MAX_INFLIGHT}\n\
         set_tcp_nodelay true\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         listener {port} 127.0.0.1\n\
         max_connections -1\n"
    );
    if running_as_root() {
        // Started as root, Mosquitto switches to the `mosquitto` user before it reads its
        // certificate and key, which are readable by us only (the key is private). Staying
        // the user that started it changes nothing about its performance.
        config.push_str("user root\n");
    }
    if let Some((tls_port, certs)) = tls {
        // Options after a `listener` line belong to that listener.
        config.push_str(&format!(
            "listener {tls_port} 127.0.0.1\n\
             max_connections -1\n\
             cafile {}\n\
             certfile {}\n\
             keyfile {}\n",
            certs.ca_cert.display(),
            certs.server_cert.display(),
            certs.server_key.display()
        ));
    }
    config
}

/// Whether this process's effective user id is 0 (`Uid:` of `/proc/self/status`: real,
/// effective, saved, filesystem).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// MQuicTT's settings: the same queue and inflight limits, room for the idle-connection run,
/// a TCP listener, and with `certificates` TLS and QUIC listeners presenting them (the QUIC
/// one with `quic_max_udp_payload` as its datagram ceiling, if given).
fn mquictt_config(
    certificates: Option<&BenchCertificates>,
    quic_max_udp_payload: Option<u16>,
) -> String {
    // Mosquitto limits neither publish nor connection rates, nor connections that have not
    // sent CONNECT yet, by default; neither may we here, or the comparison would measure our
    // throttles instead of our broker (at 5,000 new connections a second on a loaded machine
    // more than the default 1,000 can be waiting for their CONNECT at once, and were closed).
    let mut config = format!(
        "[limits]\n\
         max_connections = 1000000\n\
         max_pending_connections = 1000000\n\
         max_queued_messages = {MAX_QUEUED_MESSAGES}\n\
         v3_inflight = {MAX_INFLIGHT}\n\
         publish_rate = 0\n\
         connection_rate = 0\n\
         \n\
         [[listener]]\n\
         url = \"tcp://127.0.0.1:0\"\n"
    );
    if let Some(certs) = certificates {
        for scheme in ["tls", "quic"] {
            config.push_str(&format!(
                "\n[[listener]]\n\
                 url = \"{scheme}://127.0.0.1:0\"\n\
                 cert = {:?}\n\
                 key = {:?}\n",
                certs.server_cert.display().to_string(),
                certs.server_key.display().to_string()
            ));
            if let (Some(size), "quic") = (quic_max_udp_payload, scheme) {
                config.push_str(&format!("quic_max_udp_payload = {size}\n"));
            }
        }
    }
    config
}

/// The transport and bound address in a `listening on URL (ADDR)` line of `mquictt broker`.
fn listening_addr(line: &str) -> Option<(TransportKind, SocketAddr)> {
    let rest = line.strip_prefix("listening on ")?;
    let (scheme, _) = rest.split_once("://")?;
    let kind = match scheme {
        "mqtt" | "tcp" => TransportKind::Tcp,
        "mqtts" | "tls" => TransportKind::Tls,
        "quic" => TransportKind::Quic,
        _ => return None,
    };
    let open = rest.rfind('(')?;
    let addr = rest.get(open + 1..)?.strip_suffix(')')?.parse().ok()?;
    Some((kind, addr))
}

/// The listeners a broker printed, by transport.
#[derive(Debug, Default, Clone, Copy)]
struct Listeners {
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    quic: Option<SocketAddr>,
}

impl Listeners {
    fn set(&mut self, kind: TransportKind, addr: SocketAddr) {
        match kind {
            TransportKind::Tcp => self.tcp = Some(addr),
            TransportKind::Tls => self.tls = Some(addr),
            TransportKind::Quic => self.quic = Some(addr),
            TransportKind::Ws | TransportKind::Wss => {}
        }
    }

    fn count(&self) -> usize {
        [self.tcp, self.tls, self.quic]
            .iter()
            .filter(|a| a.is_some())
            .count()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quic_ceiling_goes_to_the_quic_listener_only() {
        let certs = BenchCertificates::generate().unwrap();
        let config = mquictt_config(Some(&certs), Some(6500));
        let quic = config.find("url = \"quic://").expect("a QUIC listener");
        let ceiling = config
            .find("quic_max_udp_payload = 6500")
            .expect("the ceiling");
        assert!(ceiling > quic, "{config}");
        assert_eq!(
            config.matches("quic_max_udp_payload").count(),
            1,
            "{config}"
        );
        assert!(!mquictt_config(Some(&certs), None).contains("quic_max_udp_payload"));
    }

    #[test]
    fn listening_line_gives_the_bound_address() {
        assert_eq!(
            listening_addr("listening on mqtt://127.0.0.1:0 (127.0.0.1:41234)"),
            Some((TransportKind::Tcp, "127.0.0.1:41234".parse().unwrap()))
        );
        assert_eq!(
            listening_addr("listening on quic://127.0.0.1:0 (127.0.0.1:5000)"),
            Some((TransportKind::Quic, "127.0.0.1:5000".parse().unwrap()))
        );
        assert_eq!(listening_addr("something else"), None);
    }
}
