//! Starts the real `mquictt` binary as a child process for the command-line tests, on ephemeral
//! ports in a temporary data directory, and finds third-party clients on the machine.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A broker process, killed when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    pub child: Child,
    /// `(url as given, bound address)` for every listener, in order.
    pub listeners: Vec<(String, SocketAddr)>,
    pub data_dir: tempfile::TempDir,
    /// Later lines of the broker's standard output.
    stdout: mpsc::Receiver<String>,
}

impl BrokerProcess {
    /// Starts `mquictt broker` with the given listener URLs (use port 0) and extra arguments,
    /// and waits until every listener is bound.
    pub fn start(listen: &[&str], extra: &[&str]) -> Self {
        let mut args: Vec<&str> = Vec::new();
        for url in listen {
            args.extend(["--listen", url]);
        }
        args.extend(extra);
        Self::start_with(&args, listen.len())
    }

    /// Starts `mquictt broker` with `args` (listeners from flags or a config file) and waits
    /// until `listeners` listeners are bound.
    pub fn start_with(args: &[&str], listeners: usize) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mquictt"));
        command.arg("broker").arg("--data-dir").arg(data_dir.path());
        command.args(args);
        let listen_count = listeners;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the mquictt binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut listeners = Vec::new();
        while listeners.len() < listen_count {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("broker printed its listeners");
            // "listening on mqtt://127.0.0.1:0 (127.0.0.1:40123)"
            if let Some(rest) = line.strip_prefix("listening on ") {
                let (url, addr) = rest.split_once(" (").expect("url and address");
                let addr = addr.trim_end_matches(')').parse().expect("socket address");
                listeners.push((url.to_string(), addr));
            }
        }
        Self {
            child,
            listeners,
            data_dir,
            stdout: rx,
        }
    }

    /// The rest of the first line of standard output that starts with `prefix`.
    pub fn line_after(&self, prefix: &str) -> String {
        loop {
            let line = self
                .stdout
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("broker printed no line starting with {prefix:?}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    /// The port of the n-th listener.
    pub fn port(&self, n: usize) -> u16 {
        self.listeners[n].1.port()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        wait_with_timeout(&mut self.child, Duration::from_secs(20)).expect("broker exited")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child, giving up after `timeout`.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `mquictt ARGS` in `cwd` to completion, with no standard input.
pub fn mquictt(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mquictt"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run mquictt")
}

/// Fails the test with the command's standard error unless it succeeded.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails the test with an install hint when a third-party tool is missing.
pub fn require_tool(name: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(name).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed; run ./scripts/test.sh, which installs it ({install})"
    );
}

/// Fails the test with an install hint when paho-mqtt is missing.
pub fn require_paho() {
    let ok = Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "paho-mqtt is not installed; run ./scripts/test.sh, which installs it (pip install paho-mqtt)"
    );
}
