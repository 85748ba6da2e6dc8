//! The lab's error type: what can go wrong while building, running and tearing down the
//! emulated network. Messages name what is missing or which command failed, so a test that
//! cannot run says why.

use std::io;

use thiserror::Error;

/// Why the lab could not be built, run or torn down.
#[derive(Debug, Error)]
pub enum LabError {
    /// A prerequisite of the host machine is missing: root, `/dev/net/tun`, iproute2.
    #[error("the lab cannot run here: {0}")]
    Unavailable(String),
    /// An external command could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The cause.
        source: io::Error,
    },
    /// An external command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on standard error.
        stderr: String,
    },
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// A namespace's setting did not take the value the lab needs.
    #[error("namespace {namespace}: {key} is {actual:?}, expected {expected:?}")]
    Sysctl {
        /// The namespace.
        namespace: String,
        /// The sysctl's path under `/proc/sys`.
        key: String,
        /// The value wanted.
        expected: String,
        /// The value read back.
        actual: String,
    },
    /// The topology cannot be built.
    #[error("invalid topology: {0}")]
    Topology(String),
    /// The relay thread stopped with an error or panicked.
    #[error("relay failed: {0}")]
    Relay(String),
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}
