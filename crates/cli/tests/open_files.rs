//! The open-file limit of `mquictt broker`, started as a service manager or a shell would start
//! it: with a soft limit far below the hard one. Each connection is a file, so the broker
//! raises its soft limit to the hard limit, and says so when even that is too low for its
//! `max_connections`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait_with_timeout;

/// Starts the broker through `sh` with `limits` applied first (`ulimit` arguments), waits
/// until it listens, and returns it with its data directory.
fn broker_under(limits: &str) -> (Child, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let script =
        format!("{limits} && exec \"$0\" broker --listen tcp://127.0.0.1:0 --data-dir \"$1\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_mquictt"))
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sh");
    let stdout = child.stdout.take().expect("piped stdout");
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("listening on "));
    assert!(listening, "the broker never listened");
    (child, data_dir)
}

/// `(soft, hard)` "Max open files" of a running process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn stop(mut child: Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exited");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    stderr
}

#[test]
fn the_broker_raises_its_soft_open_file_limit_to_the_hard_limit() {
    let (child, _data) = broker_under("ulimit -S -n 256");
    let (soft, hard) = open_file_limits(child.id());
    assert_eq!(
        soft, hard,
        "soft limit {soft} left below the hard limit {hard}"
    );
    assert!(soft > 256);
    stop(child);
}

#[test]
fn a_hard_limit_below_max_connections_is_reported() {
    // The default `max_connections` is 10,000; 512 files hold about 448 connections.
    let (child, _data) = broker_under("ulimit -S -n 256 && ulimit -H -n 512");
    let (soft, hard) = open_file_limits(child.id());
    assert_eq!((soft, hard), (512, 512));
    let stderr = stop(child);
    assert!(
        stderr.contains("max_connections = 10000") && stderr.contains("ulimit -Hn"),
        "no warning about the open-file limit: {stderr}"
    );
}
