//! Starting the brokers under test as processes inside the lab's broker host: `mquictt
//! broker` with TCP, TLS and QUIC (0-RTT accepted) listeners, and Mosquitto with TCP and TLS
//! listeners on other ports, both presenting the same development certificate. Owns their
//! config files, readiness checks and shutdown; knows nothing about what runs against them.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mquictt_lab::{Host, BROKER_ADDR};
use mquictt_transport::{CertificateAuthority, ClientTlsSettings, DevCertificates, TransportKind};

use crate::error::ExperimentError;
use crate::transports::BrokerKind;

/// Process ids of the brokers running now, so that a signal handler can stop them.
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<u32>> {
    // The list stays valid if a holder panicked.
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills every broker process this process started and has not stopped yet; for a signal
/// handler that is about to end the process (the brokers are not our process group's
/// business otherwise, and would outlive us).
pub fn kill_all_brokers() {
    for pid in std::mem::take(&mut *running()) {
        // `kill` is the portable way to signal a pid without unsafe code.
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
}

/// How long a broker may take to listen: generous, since the machine may be busy.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A working directory shared by the runs of an experiment: the development certificates
/// (made once) and the brokers' config files.
#[derive(Debug)]
pub struct BrokerFiles {
    dir: PathBuf,
    certs: DevCertificates,
}

impl BrokerFiles {
    /// Prepares `dir`: certificates in `dir/mquictt-data/certs`, where `mquictt broker
    /// --data-dir dir/mquictt-data` finds them, and both brokers' config files.
    pub fn prepare(dir: &Path) -> Result<BrokerFiles, ExperimentError> {
        let data = dir.join("mquictt-data");
        let cert_dir = data.join("certs");
        write_lab_certificates(&cert_dir)?;
        let certs = DevCertificates::load_or_create(&cert_dir)?;
        let files = BrokerFiles {
            dir: dir.to_owned(),
            certs,
        };
        write(&files.mquictt_config(), &mquictt_config_text(true))?;
        write(
            &files.mosquitto_config(),
            &mosquitto_config_text(&files.certs),
        )?;
        Ok(files)
    }

    /// The development CA's certificate file (`--cafile`).
    pub fn ca_file(&self) -> &Path {
        &self.certs.ca_cert
    }

    /// TLS settings trusting the development CA.
    pub fn client_tls(&self) -> Result<ClientTlsSettings, ExperimentError> {
        Ok(ClientTlsSettings::trusting_ca_file(&self.certs.ca_cert)?)
    }

    /// A log file in the working directory, appended to by every run's broker.
    fn log(&self, name: &str) -> Result<Stdio, ExperimentError> {
        let path = self.dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map(Stdio::from)
            .map_err(|e| ExperimentError::io(path, e))
    }

    /// Rewrites our broker's config with QUIC path MTU discovery on or off.
    pub fn set_quic_mtu_discovery(&self, enabled: bool) -> Result<(), ExperimentError> {
        write(&self.mquictt_config(), &mquictt_config_text(enabled))
    }

    fn mquictt_config(&self) -> PathBuf {
        self.dir.join("mquictt.toml")
    }

    fn mosquitto_config(&self) -> PathBuf {
        self.dir.join("mosquitto.conf")
    }
}

/// Writes a development CA and a server certificate valid for the lab's broker address as
/// well as `localhost`, in the files `DevCertificates` reads, unless they exist already.
fn write_lab_certificates(dir: &Path) -> Result<(), ExperimentError> {
    if dir.join("ca.pem").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
    let authority = CertificateAuthority::generate()?;
    let broker_addr = BROKER_ADDR.to_string();
    let server = authority.issue_server(&["localhost", &broker_addr])?;
    authority.write_pem(&dir.join("ca.pem"), &dir.join("ca.key"))?;
    server.write_pem(&dir.join("server.pem"), &dir.join("server.key"))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), ExperimentError> {
    std::fs::write(path, text).map_err(|e| ExperimentError::io(path, e))
}

fn mquictt_config_text(quic_mtu_discovery: bool) -> String {
    let tcp = BrokerKind::Mquictt.port(TransportKind::Tcp);
    let tls = BrokerKind::Mquictt.port(TransportKind::Tls);
    let quic = BrokerKind::Mquictt.port(TransportKind::Quic);
    // The lab address is not loopback, so anonymous access must be switched on explicitly.
    // Sessions stay in memory, as Mosquitto's do here (`persistence false`).
    format!(
        "allow_anonymous = true\nstorage = \"memory\"\n\n\
         [[listener]]\nurl = \"tcp://{BROKER_ADDR}:{tcp}\"\n\n\
         [[listener]]\nurl = \"tls://{BROKER_ADDR}:{tls}\"\n\n\
         [[listener]]\nurl = \"quic://{BROKER_ADDR}:{quic}\"\nquic_zero_rtt = \"idempotent\"\n\
         quic_mtu_discovery = {quic_mtu_discovery}\n"
    )
}

fn mosquitto_config_text(certs: &DevCertificates) -> String {
    let tcp = BrokerKind::Mosquitto.port(TransportKind::Tcp);
    let tls = BrokerKind::Mosquitto.port(TransportKind::Tls);
    // `user root`: started as root, Mosquitto would otherwise switch to the `mosquitto` user,
    // who cannot read the key file. No persistence: our broker keeps its sessions in memory
    // in the lab too.
    format!(
        "user root\nper_listener_settings false\nallow_anonymous true\npersistence false\n\
         log_dest stderr\nlog_type error\n\
         listener {tcp} {BROKER_ADDR}\n\
         listener {tls} {BROKER_ADDR}\ncafile {}\ncertfile {}\nkeyfile {}\n",
        certs.ca_cert.display(),
        certs.server_cert.display(),
        certs.server_key.display()
    )
}

/// A broker process running inside the broker host; killed when dropped.
#[derive(Debug)]
pub struct RunningBroker {
    kind: BrokerKind,
    child: Child,
}

impl RunningBroker {
    /// Starts `kind` inside `host` and waits until it listens.
    pub fn start(
        kind: BrokerKind,
        host: &Host,
        files: &BrokerFiles,
        mquictt: &Path,
        mosquitto: Option<&Path>,
    ) -> Result<RunningBroker, ExperimentError> {
        let failed = |message: String| ExperimentError::Broker {
            broker: kind.label().to_owned(),
            message,
        };
        match kind {
            BrokerKind::Mquictt => {
                let mut command = host.command(mquictt);
                command
                    .args(["--log", "error", "broker", "--config"])
                    .arg(files.mquictt_config())
                    .arg("--data-dir")
                    .arg(files.dir.join("mquictt-data"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(files.log("mquictt.log")?);
                let mut child = command
                    .spawn()
                    .map_err(|e| failed(format!("cannot start {}: {e}", mquictt.display())))?;
                let Some(stdout) = child.stdout.take() else {
                    let _ = child.kill();
                    return Err(failed("no standard output".to_owned()));
                };
                running().push(child.id());
                let running = RunningBroker { kind, child };
                // `mquictt broker` prints one "listening on" line per listener once bound.
                wait_for_lines(stdout, "listening on", 3).map_err(failed)?;
                Ok(running)
            }
            BrokerKind::Mosquitto => {
                let program =
                    mosquitto.ok_or_else(|| failed("Mosquitto is not installed".to_owned()))?;
                let child = host
                    .command(program)
                    .arg("-c")
                    .arg(files.mosquitto_config())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(files.log("mosquitto.log")?)
                    .spawn()
                    .map_err(|e| failed(format!("cannot start {}: {e}", program.display())))?;
                running().push(child.id());
                let running = RunningBroker { kind, child };
                let ports = [
                    BrokerKind::Mosquitto.port(TransportKind::Tcp),
                    BrokerKind::Mosquitto.port(TransportKind::Tls),
                ];
                // Polled from inside the broker host: local connections never cross the
                // emulated links, so they neither cost time nor show in any counter.
                let ready = host.run(move || wait_for_ports(&ports))?;
                ready.map_err(failed)?;
                Ok(running)
            }
        }
    }

    /// Which broker this is.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        let pid = self.child.id();
        running().retain(|p| *p != pid);
        // `ip netns exec` replaced itself with the broker, so this is the broker's pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stdout` on a thread until `count` lines contain `needle`, or times out.
fn wait_for_lines(
    stdout: std::process::ChildStdout,
    needle: &'static str,
    count: usize,
) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(needle) {
                seen += 1;
                if seen == count {
                    let _ = tx.send(());
                }
            }
        }
        // Reading on until the broker exits keeps its standard output from filling up.
    });
    rx.recv_timeout(START_TIMEOUT)
        .map_err(|_| format!("did not print {count} \"{needle}\" lines within {START_TIMEOUT:?}"))
}

fn wait_for_ports(ports: &[u16]) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    for &port in ports {
        let addr = SocketAddr::new(BROKER_ADDR.into(), port);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "port {port} not listening within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_listen_on_the_lab_address_and_ports() {
        let ours = mquictt_config_text(true);
        assert!(ours.contains("allow_anonymous = true"));
        assert!(ours.contains("quic_mtu_discovery = true"));
        assert!(mquictt_config_text(false).contains("quic_mtu_discovery = false"));
        assert!(ours.contains("tcp://10.200.0.1:1883"));
        assert!(ours.contains("tls://10.200.0.1:8883"));
        assert!(ours.contains("quic://10.200.0.1:14567\"\nquic_zero_rtt = \"idempotent\""));
        assert!(ours.contains("storage = \"memory\""));
        let dir = tempfile::tempdir().unwrap();
        let certs = DevCertificates::load_or_create(dir.path()).unwrap();
        let mosquitto = mosquitto_config_text(&certs);
        assert!(mosquitto.contains("listener 1884 10.200.0.1"));
        assert!(mosquitto.contains("listener 8884 10.200.0.1\ncafile"));
        assert!(mosquitto.contains("user root"));
    }
}
