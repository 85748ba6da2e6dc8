//! Durable storage for the MQuicTT broker: [`DurableStorage`] implements the broker's
//! `Storage` trait on one redb file in the data directory (redb was chosen over fjall by
//! measurement; see `docs/decisions.md`). The broker's journal hands it group commits on a
//! thread of its own; each commit is atomic and synced before the acknowledgements it holds
//! go out. Opening recovers from a crash by itself (redb discards a torn last commit) and moves
//! a damaged file aside unless told to refuse.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mquictt_broker::{AllowAll, Broker, BrokerConfig};
//! use mquictt_store::{DurableStorage, OnCorrupt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (storage, _moved_aside) =
//!     DurableStorage::open(std::path::Path::new("./mquictt-data"), OnCorrupt::MoveAside)?;
//! let broker = Broker::new(BrokerConfig::default(), Arc::new(storage), Arc::new(AllowAll))?;
//! # Ok(())
//! # }
//! ```

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![forbid(unsafe_code)]

mod codec;
mod durable;
mod open;

pub use durable::DurableStorage;
pub use open::{MovedAside, OnCorrupt, StoreError, STORE_FILE};
