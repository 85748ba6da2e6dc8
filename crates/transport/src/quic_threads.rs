//! Threads of their own for a QUIC listener's connections. Each thread runs a single-threaded
//! Tokio runtime, and each connection lives on one of them from its handshake on: quinn's
//! driver of the connection and every task the application spawns for it. A datagram batch
//! passes three tasks on its way in (quinn's endpoint driver, the connection's driver, the
//! stream's reader) and as many on its way out; on a work-stealing runtime each of those
//! hand-offs may cross to another core, and on one thread none does (docs/benchmarks.md,
//! *QUIC throughput*, "QUIC connections on threads of their own"). A new connection goes to
//! the thread with the fewest live connections. The threads end when the listener and every
//! connection placed on them are gone.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The threads of one listener.
#[derive(Debug)]
pub(crate) struct QuicThreads {
    threads: Vec<QuicThread>,
}

#[derive(Debug)]
struct QuicThread {
    runtime: Handle,
    /// Connections placed on this thread and not yet gone.
    live: AtomicUsize,
    /// Dropped with the pool, which ends the thread's runtime.
    _stop: oneshot::Sender<()>,
}

impl QuicThreads {
    /// Starts `count` threads (at least one), named `{name}-{index}`.
    pub(crate) fn start(count: usize, name: &str) -> io::Result<Arc<Self>> {
        let threads = (0..count.max(1))
            .map(|index| start_thread(format!("{name}-{index}")))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Arc::new(QuicThreads { threads }))
    }

    /// The runtime of the first thread, where the endpoint and its accept loop run.
    pub(crate) fn first(&self) -> &Handle {
        // `start` makes at least one thread.
        &self.threads[0].runtime
    }

    /// Places a new connection on the thread with the fewest live connections (the first of
    /// them on a tie).
    pub(crate) fn place(self: &Arc<Self>) -> Placement {
        let index = self
            .threads
            .iter()
            .enumerate()
            .min_by_key(|(_, thread)| thread.live.load(Ordering::Relaxed))
            .map_or(0, |(index, _)| index);
        self.threads[index].live.fetch_add(1, Ordering::Relaxed);
        Placement {
            threads: self.clone(),
            index,
        }
    }
}

/// Where one connection lives. Keeps its thread running, and counts the connection there
/// until dropped.
#[derive(Debug)]
pub(crate) struct Placement {
    threads: Arc<QuicThreads>,
    index: usize,
}

impl Placement {
    /// The runtime of the connection's thread: spawn the connection's tasks here.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.threads.threads[self.index].runtime
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.threads.threads[self.index]
            .live
            .fetch_sub(1, Ordering::Relaxed);
    }
}

fn start_thread(name: String) -> io::Result<QuicThread> {
    let runtime = Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new().name(name).spawn(move || {
        // Runs the thread's tasks until the pool is dropped; then the runtime goes, with
        // whatever is left on it.
        runtime.block_on(async {
            let _ = stopped.await;
        });
    })?;
    Ok(QuicThread {
        runtime: handle,
        live: AtomicUsize::new(0),
        _stop: stop,
    })
}
