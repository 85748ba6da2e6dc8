//! Making sure no namespace outlives the lab: a process-wide record of the namespaces this
//! process created, a handler for SIGINT/SIGTERM/SIGHUP that deletes them before the process
//! dies the way the signal asks, and the removal of namespaces left by lab processes that no
//! longer exist (killed with SIGKILL, say). Normal exits and panics are covered by the
//! `Drop` of [`crate::LabGuard`] and [`crate::NetNamespace`]; this file covers the rest.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::LabError;
use crate::netns;

/// The prefix of every namespace the lab creates: `mqlab-<pid>-...`.
pub(crate) const NAMESPACE_PREFIX: &str = "mqlab-";

/// Namespaces created by this process and not yet deleted.
static LIVE_NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The outcome of installing the signal handlers, once per process.
static SIGNAL_HANDLERS: OnceLock<Result<(), String>> = OnceLock::new();

fn live() -> std::sync::MutexGuard<'static, Vec<String>> {
    // A panic while holding the lock leaves a list that is still valid: keep using it.
    LIVE_NAMESPACES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn register(name: &str) {
    live().push(name.to_owned());
}

pub(crate) fn unregister(name: &str) {
    live().retain(|n| n != name);
}

/// Deletes every namespace this process created and has not deleted yet. The signal handler
/// calls it; call it yourself if you turned the lab's signal handling off and handle
/// SIGINT/SIGTERM in your own program.
pub fn teardown_all() {
    let names = std::mem::take(&mut *live());
    for name in names {
        // Best effort: the process is about to end, and a namespace already gone is fine.
        let _ = netns::delete_by_name(&name);
    }
}

/// Installs (once per process) a handler that runs [`teardown_all`] on SIGINT, SIGTERM and
/// SIGHUP and then lets the signal end the process as it would have without the handler.
pub(crate) fn install_signal_handlers() -> Result<(), LabError> {
    SIGNAL_HANDLERS
        .get_or_init(|| {
            let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("lab signals".to_owned())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        teardown_all();
                        // Restores the default action and raises the signal again, so the
                        // exit status tells the parent which signal ended us.
                        let _ = signal_hook::low_level::emulate_default_handler(signal);
                        std::process::exit(128 + signal);
                    }
                })
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| LabError::io("cannot install signal handlers", std::io::Error::other(e)))
}

/// Deletes `mqlab-<pid>-...` namespaces whose process is gone. Namespaces of live processes,
/// this one included, are left alone, so labs can run side by side.
pub(crate) fn remove_stale_namespaces() {
    for name in netns::list_namespaces() {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = netns::delete_by_name(&name);
        }
    }
}

/// The pid in a lab namespace name `mqlab-<pid>-<rest>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAMESPACE_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_read_from_lab_names_only() {
        assert_eq!(owner_pid("mqlab-1234-0-broker"), Some(1234));
        assert_eq!(owner_pid("mqlab-x-0-broker"), None);
        assert_eq!(owner_pid("mqlab-1234"), None);
        assert_eq!(owner_pid("other-1234-0"), None);
    }

    #[test]
    fn registry_forgets_unregistered_names() {
        register("mqlab-test-registry-a");
        register("mqlab-test-registry-b");
        unregister("mqlab-test-registry-a");
        let names = live().clone();
        assert!(names.iter().any(|n| n == "mqlab-test-registry-b"));
        assert!(!names.iter().any(|n| n == "mqlab-test-registry-a"));
        unregister("mqlab-test-registry-b");
        assert!(!live().iter().any(|n| n.starts_with("mqlab-test-registry")));
    }
}
