//! Running client code inside a lab host: a thread that joins the host's namespace and
//! drives one single-threaded tokio runtime, so every socket the code opens belongs to the
//! host. Owns that plumbing and nothing about what the code does.

use std::future::Future;

use mquictt_lab::{Host, InsideThread};

use crate::error::ExperimentError;

/// A client running inside a host; [`ClientThread::join`] waits for its result.
#[derive(Debug)]
pub(crate) struct ClientThread<T>(InsideThread<Result<T, String>>);

impl<T: Send + 'static> ClientThread<T> {
    /// Starts `make()`'s future on its own runtime in `host`.
    pub(crate) fn spawn<F, Fut>(host: &Host, make: F) -> Result<ClientThread<T>, ExperimentError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let thread = host.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            Ok(runtime.block_on(make()))
        })?;
        Ok(ClientThread(thread))
    }

    /// Waits for the client's result.
    pub(crate) fn join(self) -> Result<T, ExperimentError> {
        match self.0.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(ExperimentError::Client(message)),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".to_owned());
                Err(ExperimentError::Client(message))
            }
        }
    }
}
