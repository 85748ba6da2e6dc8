//! Network namespaces that stand for the lab's hosts: creating them with iproute2, running a
//! command or a closure inside one, setting their per-namespace sysctls, and deleting them.
//! Every namespace this process creates is recorded in [`crate::teardown`] until it is
//! deleted, so a signal handler can remove what a dying process leaves behind. This file
//! touches only namespaces it created itself.

use std::ffi::OsStr;
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::sched::{setns, CloneFlags};

use crate::error::LabError;
use crate::teardown;

/// Where iproute2 keeps the bind mounts that name network namespaces.
const NETNS_DIR: &str = "/run/netns";

/// A named network namespace, deleted when dropped.
#[derive(Debug)]
pub struct NetNamespace {
    name: String,
}

impl NetNamespace {
    /// Creates the namespace `name` (`ip netns add`) with its loopback up.
    pub(crate) fn create(name: String) -> Result<NetNamespace, LabError> {
        // Recorded before it exists so that a signal arriving mid-creation still removes it.
        teardown::register(&name);
        let namespace = NetNamespace { name };
        run_ip(&["netns", "add", &namespace.name])?;
        namespace.ip(&["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// The namespace's name, as `ip netns` lists it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`).
    /// Add arguments, then spawn it as usual.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .arg("netns")
            .arg("exec")
            .arg(&self.name)
            .arg(program);
        command
    }

    /// Runs `ip -n NAME args...`.
    pub(crate) fn ip(&self, args: &[&str]) -> Result<(), LabError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// Starts a thread that joins this namespace and then runs `f`. Sockets and devices `f`
    /// creates belong to the namespace, and stay there when handed to other threads.
    ///
    /// Returns once the thread is inside the namespace, or with the error that kept it out
    /// (then `f` never runs).
    pub fn spawn<F, R>(&self, f: F) -> Result<InsideThread<R>, LabError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = PathBuf::from(NETNS_DIR).join(&self.name);
        let handle = File::open(&path)
            .map_err(|e| LabError::io(format!("cannot open namespace {}", path.display()), e))?;
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("netns {}", self.name))
            .spawn(move || {
                // setns(CLONE_NEWNET) moves only the calling thread: the rest of the process
                // stays where it is.
                let entered = setns(&handle, CloneFlags::CLONE_NEWNET);
                drop(handle);
                let inside = entered.is_ok();
                // If the receiver is gone nobody waits for `f`; it still runs harmlessly.
                let _ = entered_tx.send(entered);
                inside.then(f)
            })
            .map_err(|e| LabError::io("cannot start a thread", e))?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(InsideThread(thread)),
            Ok(Err(errno)) => Err(LabError::io(
                format!("cannot enter namespace {}", self.name),
                errno.into(),
            )),
            Err(_) => Err(LabError::io(
                format!("cannot enter namespace {}", self.name),
                std::io::Error::other("the thread died before entering"),
            )),
        }
    }

    /// Runs `f` on a thread inside this namespace and waits for its result. A panic in `f`
    /// is passed on to the caller.
    pub fn run<F, R>(&self, f: F) -> Result<R, LabError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match self.spawn(f)?.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Writes `value` to `/proc/sys/<key>` inside this namespace and reads it back. Returns
    /// `Ok(false)` if the sysctl does not exist in this kernel.
    pub(crate) fn set_sysctl(&self, key: &str, value: &str) -> Result<bool, LabError> {
        let path = PathBuf::from("/proc/sys").join(key);
        let written = value.to_owned();
        // /proc/sys/net resolves to the network namespace of the thread that opens it.
        let outcome = self.run(move || -> std::io::Result<Option<String>> {
            if !path.exists() {
                return Ok(None);
            }
            std::fs::write(&path, &written)?;
            std::fs::read_to_string(&path).map(|s| Some(s.trim().to_owned()))
        })?;
        match outcome {
            Ok(None) => Ok(false),
            Ok(Some(actual)) if actual == value => Ok(true),
            Ok(Some(actual)) => Err(LabError::Sysctl {
                namespace: self.name.clone(),
                key: key.to_owned(),
                expected: value.to_owned(),
                actual,
            }),
            Err(e) => Err(LabError::io(
                format!("namespace {}: cannot set {key}", self.name),
                e,
            )),
        }
    }

    /// Reads `/proc/sys/<key>` inside this namespace.
    pub fn sysctl(&self, key: &str) -> Result<String, LabError> {
        let path = PathBuf::from("/proc/sys").join(key);
        self.run(move || std::fs::read_to_string(path))?
            .map(|s| s.trim().to_owned())
            .map_err(|e| LabError::io(format!("namespace {}: cannot read {key}", self.name), e))
    }

    /// Deletes the namespace now, reporting failure (dropping also deletes, silently).
    pub fn delete(mut self) -> Result<(), LabError> {
        let name = std::mem::take(&mut self.name);
        let result = run_ip(&["netns", "delete", &name]);
        teardown::unregister(&name);
        result
    }
}

impl Drop for NetNamespace {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        // Nothing to do about a failure here; `delete` reports it, and the namespace's name
        // stays registered so the process-exit handlers try again.
        if run_ip(&["netns", "delete", &self.name]).is_ok() {
            teardown::unregister(&self.name);
        }
    }
}

/// A thread running inside a namespace, from [`NetNamespace::spawn`].
#[derive(Debug)]
pub struct InsideThread<R>(JoinHandle<Option<R>>);

impl<R> InsideThread<R> {
    /// Waits for the thread; `Err` carries the panic of the closure.
    pub fn join(self) -> std::thread::Result<R> {
        match self.0.join()? {
            Some(value) => Ok(value),
            // `spawn` hands out an `InsideThread` only after the thread reported that it
            // entered the namespace, and then the closure always runs.
            None => Err(Box::new("the thread never entered its namespace")),
        }
    }

    /// Whether the closure has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// Runs `ip args...` and turns a failure into an error with its standard error.
pub(crate) fn run_ip(args: &[&str]) -> Result<(), LabError> {
    let command_line = format!("ip {}", args.join(" "));
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| LabError::Spawn {
            command: command_line.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: command_line,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// The names of all network namespaces on the machine.
pub fn list_namespaces() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect()
}

/// Deletes namespace `name` without owning it; used for leftovers of dead processes.
pub(crate) fn delete_by_name(name: &str) -> Result<(), LabError> {
    run_ip(&["netns", "delete", name])
}
