//! Root tests of the lab's hosts and their lifecycle: names and addresses, IPv6 off, cubic
//! pinned, commands run inside a host, and teardown on finish, on drop, while a panic unwinds,
//! on SIGINT, and of leftovers from a dead lab process.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mquictt_lab::{list_namespaces, HostLink, HostRole, LinkConfig, Topology, BROKER_ADDR};
use support::*;

fn small_star(clients: usize) -> Topology {
    Topology::star(
        HostLink::symmetric(LinkConfig::ideal()),
        vec![HostLink::symmetric(link(10.0, 1, 0.0)); clients],
    )
}

#[test]
fn hosts_are_fresh_ipv4_only_namespaces_with_cubic() {
    let lab = start(small_star(2));
    let prefix = format!("mqlab-{}-", std::process::id());
    let names = namespace_names(&lab);
    assert_eq!(names.len(), 3);
    let listed = list_namespaces();
    for name in &names {
        assert!(
            name.starts_with(&prefix),
            "{name} lacks the prefix {prefix}"
        );
        assert!(listed.contains(name), "{name} is not in `ip netns list`");
    }
    assert_eq!(lab.broker().role(), HostRole::Broker);
    assert_eq!(lab.broker().addr(), BROKER_ADDR);
    assert_eq!(lab.client(1).unwrap().role(), HostRole::Client(1));
    assert_eq!(lab.client(1).unwrap().addr().to_string(), "10.200.1.2");
    assert!(lab.client(2).is_none());
    assert_eq!(lab.host(1).unwrap().addr(), lab.client(0).unwrap().addr());

    for host in lab.hosts() {
        assert_eq!(host.sysctl("net/ipv6/conf/all/disable_ipv6").unwrap(), "1");
        let output = host
            .command("ip")
            .args(["-o", "addr", "show"])
            .output()
            .unwrap();
        assert!(output.status.success());
        let addrs = String::from_utf8_lossy(&output.stdout);
        assert!(
            addrs.contains(&format!("inet {}/16", host.addr())),
            "{addrs}"
        );
        assert!(!addrs.contains("inet6"), "IPv6 is still on:\n{addrs}");
        let routes = host.command("ip").args(["route", "show"]).output().unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(
            routes.contains("congctl cubic"),
            "no cubic route:\n{routes}"
        );
        assert!(
            routes.lines().all(|l| l.starts_with("10.200.0.0/16")),
            "a route leaves the lab's network:\n{routes}"
        );
    }
    lab.finish().unwrap();
    assert_namespaces_gone(&names);
}

#[test]
fn namespaces_are_deleted_when_the_guard_drops() {
    let lab = start(small_star(1));
    let names = namespace_names(&lab);
    drop(lab);
    assert_namespaces_gone(&names);
}

#[test]
fn namespaces_are_deleted_when_a_panic_unwinds() {
    let seen = Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let lab = start(small_star(1));
        seen.lock().unwrap().extend(namespace_names(&lab));
        panic!("an experiment failed half-way");
    });
    assert!(outcome.is_err());
    let names = seen.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    assert_namespaces_gone(&names);
}

/// The role this test binary plays when run by `namespaces_are_deleted_on_sigint`.
const CHILD_ROLE: &str = "MQLAB_TEST_SIGINT_CHILD";

#[test]
fn namespaces_are_deleted_on_sigint() {
    if std::env::var_os(CHILD_ROLE).is_some() {
        // Child: start a lab, report its namespaces, wait to be interrupted.
        let lab = start(small_star(1));
        for name in namespace_names(&lab) {
            println!("NAMESPACE {name}");
        }
        println!("READY");
        std::thread::sleep(Duration::from_secs(20));
        panic!("no SIGINT arrived within 20 s");
    }

    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "namespaces_are_deleted_on_sigint",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ROLE, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut names = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print "test <name> ... " in front of the child's first line.
        if let Some((_, name)) = line.split_once("NAMESPACE ") {
            names.push(name.trim().to_owned());
        }
        if line.ends_with("READY") {
            break;
        }
    }
    assert_eq!(names.len(), 2, "the child did not start its lab");
    let listed = list_namespaces();
    assert!(names.iter().all(|n| listed.contains(n)));

    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!("the child ignored SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(nix::libc::SIGINT), "{status:?}");
    assert_namespaces_gone(&names);
}

/// Kills the child process if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn leftovers_of_a_dead_lab_process_are_removed_at_start() {
    // A process that has exited: its pid names the leftover.
    let mut finished = Command::new("true").spawn().unwrap();
    let dead_pid = finished.id();
    finished.wait().unwrap();
    let leftover = format!("mqlab-{dead_pid}-0-broker");
    let added = Command::new("ip")
        .args(["netns", "add", &leftover])
        .status()
        .unwrap();
    assert!(added.success());
    assert!(list_namespaces().contains(&leftover));

    let lab = start(small_star(1));
    let names = namespace_names(&lab);
    assert!(
        !list_namespaces().contains(&leftover),
        "{leftover} survived"
    );
    lab.finish().unwrap();
    assert_namespaces_gone(&names);
}
