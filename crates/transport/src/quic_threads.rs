//! Threads of their own for a QUIC listener's connections. Each thread runs a single-threaded
//! Tokio runtime with a quinn endpoint of its own (`quic_routing.rs`), and each connection
//! lives on the thread whose endpoint accepted it: quinn's driver of the connection and every
//! task the application spawns for it. A datagram batch passes three tasks on its way in
//! (quinn's endpoint driver, the connection's driver, the stream's reader) and as many on its
//! way out; on a work-stealing runtime each of those hand-offs may cross to another core, and
//! on one thread none does (docs/benchmarks.md, *QUIC throughput*, "QUIC connections on
//! threads of their own"). The threads end when the listener and every connection placed on
//! them are gone.

use std::io;
use std::sync::Arc;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::quic::MAX_SERVER_THREADS;

/// The threads of one listener.
#[derive(Debug)]
pub(crate) struct QuicThreads {
    threads: Vec<QuicThread>,
}

#[derive(Debug)]
struct QuicThread {
    runtime: Handle,
    /// Dropped with the pool, which ends the thread's runtime.
    _stop: oneshot::Sender<()>,
}

impl QuicThreads {
    /// Starts `count` threads (at least one, at most [`MAX_SERVER_THREADS`]), named
    /// `{name}-{index}`.
    pub(crate) fn start(count: usize, name: &str) -> io::Result<Arc<Self>> {
        let threads = (0..count.clamp(1, MAX_SERVER_THREADS))
            .map(|index| start_thread(format!("{name}-{index}")))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Arc::new(QuicThreads { threads }))
    }

    /// How many threads there are.
    pub(crate) fn len(&self) -> usize {
        self.threads.len()
    }

    /// The runtime of thread `index` (of [`Self::len`]).
    pub(crate) fn runtime(&self, index: usize) -> &Handle {
        &self.threads[index].runtime
    }

    /// Places a new connection on thread `index`.
    pub(crate) fn place_on(self: &Arc<Self>, index: usize) -> Placement {
        Placement {
            threads: self.clone(),
            index: index.min(self.threads.len() - 1),
        }
    }
}

/// Where one connection lives. Keeps its thread (and the listener's other threads, whose
/// endpoints may receive its datagrams) running until it and its clones are dropped.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    threads: Arc<QuicThreads>,
    index: usize,
}

impl Placement {
    /// The runtime of the connection's thread: spawn the connection's tasks here.
    pub(crate) fn runtime(&self) -> &Handle {
        self.threads.runtime(self.index)
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
        _stop: stop,
    })
}
