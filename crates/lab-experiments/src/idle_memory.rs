//! Resident memory of an idle client process per transport, for the footprint experiment:
//! each client program runs in a lab host against our broker, a publisher inside the broker
//! host sends to `idle/ping` until the client has printed a message (so it is connected and
//! subscribed), then the client idles for a second and its VmRSS is read from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mquictt_lab::{HostLink, Lab, Topology};
use tokio::net::TcpStream;

use crate::brokers::{BrokerFiles, RunningBroker};
use crate::connection::lab_options;
use crate::error::ExperimentError;
use crate::footprint::{Binaries, RssSample};
use crate::probe::MqttLine;
use crate::run::ClientThread;
use crate::settings::Settings;
use crate::transports::{BrokerKind, Transport};

/// Starts each client program per transport in a lab host, waits until it has received a
/// message (so it is connected and subscribed), lets it idle, and reads its VmRSS.
pub(crate) fn idle_rss(
    settings: &Settings,
    binaries: &Binaries,
    work: &Path,
) -> Result<Vec<RssSample>, ExperimentError> {
    let files = BrokerFiles::prepare(work)?;
    let lab = Lab::start_with(
        Topology::star(HostLink::default(), vec![HostLink::default()]),
        lab_options(),
    )?;
    let broker = RunningBroker::start(
        BrokerKind::Mquictt,
        lab.broker(),
        &files,
        &settings.broker_program,
        None,
    )?;
    let client = lab
        .client(0)
        .ok_or_else(|| ExperimentError::Client("no client host".to_owned()))?;
    // A publisher inside the broker host keeps sending to `idle/ping` until told to stop.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pinger = ClientThread::spawn(lab.broker(), move || ping_loop(stop_rx))?;
    let mut samples = Vec::new();
    for (name, path, _) in binaries {
        for transport in [Transport::Tcp, Transport::Tls13, Transport::Quic] {
            let url = BrokerKind::Mquictt.url(transport);
            let mut command = client.command(path);
            let program = if name == "client-only" {
                command
                    .arg(&url)
                    .arg("--cafile")
                    .arg(files.ca_file())
                    .args(["--subscribe", "idle/#"]);
                "client-only".to_owned()
            } else {
                command
                    .args(["--log", "error", "sub", "--url", &url, "--cafile"])
                    .arg(files.ca_file())
                    .args(["-t", "idle/#"]);
                "mquictt sub".to_owned()
            };
            if let Some(rss_kib) = rss_of_idle(&mut command)? {
                samples.push(RssSample {
                    program,
                    transport,
                    rss_kib,
                });
            }
        }
    }
    let _ = stop_tx.send(());
    let _ = pinger.join();
    drop(broker);
    lab.finish()?;
    Ok(samples)
}

async fn ping_loop(mut stop: tokio::sync::oneshot::Receiver<()>) -> Result<(), String> {
    let addr = BrokerKind::Mquictt.url(Transport::Tcp);
    let stream = TcpStream::connect(addr.trim_start_matches("mqtt://"))
        .await
        .map_err(|e| e.to_string())?;
    let mut line = MqttLine::new(stream);
    line.connect("idle-pinger", Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = ticker.tick() => {
                line.publish_qos0("idle/ping", bytes::Bytes::from_static(b"ping"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Runs `command` until it prints a line, idles it for a second, reads VmRSS, kills it.
fn rss_of_idle(command: &mut Command) -> Result<Option<u64>, ExperimentError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ExperimentError::Tool {
            command: format!("{command:?}"),
            message: e.to_string(),
        })?;
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if line.is_err() || tx.send(()).is_err() {
                    break;
                }
            }
        });
    }
    let rss = match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(()) => {
            std::thread::sleep(Duration::from_secs(1));
            std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok())
                })
        }
        Err(_) => None,
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(rss)
}
