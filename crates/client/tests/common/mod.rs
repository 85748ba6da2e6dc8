//! A Mosquitto broker per test: a generated config in a temp dir, a free loopback port, the
//! process killed on drop. Stop and start it again on the same port to test reconnects.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mquictt_client::{ConnectionStatus, ProtocolVersion};
use tempfile::TempDir;
use tokio::sync::watch;

/// Bounded wait for anything a test waits on: generous, only there to turn a hang into a
/// failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running (or stopped) Mosquitto.
pub struct Mosquitto {
    dir: TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// Extra settings of a broker.
#[derive(Default, Clone)]
pub struct BrokerSettings {
    /// Keep sessions on disk across restarts (saved on SIGTERM).
    pub persistence: bool,
    /// Listener protocol line, e.g. `protocol websockets`.
    pub listener_lines: Vec<String>,
    /// Lines appended to the config.
    pub extra: Vec<String>,
    /// Require user names (no anonymous access).
    pub deny_anonymous: bool,
}

fn mosquitto_binary() -> PathBuf {
    for candidate in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        let path = PathBuf::from(candidate);
        if path.exists() {
            return path;
        }
    }
    if let Ok(path) = which("mosquitto") {
        return path;
    }
    panic!("the Mosquitto broker is not installed; these tests run against it: apt-get install mosquitto");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.exists())
        .ok_or(())
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

impl Mosquitto {
    /// A broker with anonymous access and no persistence.
    pub fn start() -> Self {
        Self::start_with(BrokerSettings::default())
    }

    pub fn start_with(settings: BrokerSettings) -> Self {
        Self::start_on(free_port(), settings)
    }

    /// A broker on a given port (for a client that started before its broker).
    pub fn start_on(port: u16, settings: BrokerSettings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("mosquitto.conf");
        let mut lines = vec![
            // Run as root in containers: do not switch to the `mosquitto` user, who could not
            // write the temp dir.
            "user root".to_owned(),
            format!("listener {port} 127.0.0.1"),
        ];
        lines.extend(settings.listener_lines.iter().cloned());
        lines.push(format!("allow_anonymous {}", !settings.deny_anonymous));
        if settings.persistence {
            lines.push("persistence true".to_owned());
            lines.push(format!("persistence_location {}/", dir.path().display()));
        } else {
            lines.push("persistence false".to_owned());
        }
        lines.push("log_dest stderr".to_owned());
        lines.push("log_type error".to_owned());
        lines.push("log_type warning".to_owned());
        lines.extend(settings.extra.iter().cloned());
        std::fs::write(&config, lines.join("\n") + "\n").expect("write mosquitto.conf");
        let mut broker = Mosquitto {
            dir,
            config,
            port,
            child: None,
        };
        broker.spawn();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `mqtt://127.0.0.1:PORT` (or another scheme).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = pipe.read_to_string(&mut stderr);
                    }
                    panic!("mosquitto exited at start ({status}): {stderr}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {} in time",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker with SIGTERM (so that a persistent one saves its sessions) and waits
    /// for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the stopped broker again with the same config and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (bounded) until the status satisfies `check`.
pub async fn wait_for_status(
    status: &mut watch::Receiver<ConnectionStatus>,
    what: &str,
    check: impl FnMut(&ConnectionStatus) -> bool,
) -> ConnectionStatus {
    let outcome = tokio::time::timeout(PATIENCE, async {
        status.wait_for(check).await.map(|status| status.clone())
    })
    .await;
    match outcome {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => panic!("the client stopped while waiting for {what}"),
        Err(_) => panic!(
            "timed out waiting for {what}; status {:?}",
            *status.borrow()
        ),
    }
}

/// Bounded await.
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

pub const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// A TCP relay in front of a broker, to cut the network between client and broker without
/// touching either: while cut, open connections are closed and new ones are dropped at once.
pub struct Relay {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(target_port: u16) -> Relay {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let open = std::sync::Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let task = {
            let open = open.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                while let Ok((mut downstream, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let mut cut_rx = cut.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut upstream) =
                            tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                        else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => {}
                            _ = cut_rx.changed() => {}
                        }
                    });
                }
            })
        };
        Relay {
            port,
            open,
            cut,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
