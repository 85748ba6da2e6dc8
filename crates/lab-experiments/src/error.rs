//! The one error type of the experiments: what stopped an experiment from producing its
//! results (a lab that could not start, a broker that did not come up, an output file that
//! could not be written). Failures of the system under test are results, not errors: a run
//! that loses messages or times out is recorded as such.

use std::path::PathBuf;

use thiserror::Error;

/// Why an experiment could not be carried out.
#[derive(Debug, Error)]
pub enum ExperimentError {
    /// The emulated network could not be built or torn down.
    #[error("lab: {0}")]
    Lab(#[from] mquictt_lab::LabError),
    /// A broker process did not start or did not listen in time.
    #[error("broker {broker}: {message}")]
    Broker {
        /// Which broker.
        broker: String,
        /// What went wrong.
        message: String,
    },
    /// A file of the output could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Development certificates could not be made or loaded.
    #[error("certificates: {0}")]
    Certificates(#[from] mquictt_transport::CertError),
    /// A chart could not be drawn.
    #[error(transparent)]
    Plot(#[from] mquictt_charts::ChartError),
    /// A scenario or link type named on the command line does not exist.
    #[error("{0}")]
    Selection(String),
    /// A tool the footprint needs (cargo, strip) failed.
    #[error("{command}: {message}")]
    Tool {
        /// The command line.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// A client thread inside a host panicked or could not start its runtime.
    #[error("client host: {0}")]
    Client(String),
}

impl ExperimentError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExperimentError::Io {
            path: path.into(),
            source,
        }
    }
}
