//! The MQuicTT broker as a library: routing (subscription tree, shared subscriptions, retained
//! messages), the session registry (takeover, expiry, wills), storage and authentication
//! hooks, `$SYS` topics and metrics, and the async connection driver that serves any byte
//! stream. The routing core is pure logic without IO; the binary wraps the library with
//! listeners, config parsing and logging setup.
//!
//! A broker serves whatever ordered byte streams it is given, so every transport (TCP, TLS,
//! WebSocket, a QUIC stream) feeds the same [`Broker::serve_connection`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use mquictt_broker::{AllowAll, Broker, BrokerConfig, MemoryStorage};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::new(
//!     BrokerConfig::default(),
//!     Arc::new(MemoryStorage::new()),
//!     Arc::new(AllowAll),
//! )?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:1883").await?;
//! let stop = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! // Accepts until Ctrl-C, then sends DISCONNECT 0x8B to 5.0 clients and publishes wills.
//! broker.serve_tcp(listener, stop).await?;
//! # Ok(())
//! # }
//! ```

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod config;
mod connect;
mod connection;
mod limits;
pub mod message;
pub mod metrics;
mod parking;
mod peer_keyed;
mod queue;
pub mod quic;
pub mod registry;
pub mod retained;
mod router;
pub mod session;
pub mod shared;
pub mod storage;
pub mod subscriptions;
pub mod sys;
mod thread_number;

pub use auth::{AllowAll, Authenticator, FileAuthenticator, FileAuthenticatorConfig};
pub use broker::{Broker, BrokerError, PeerInfo};
pub use config::{BrokerConfig, IdleWithoutDescriptor, PublishOverload, RateLimit};
pub use message::{ClientId, Message};
pub use metrics::Metrics;
pub use quic::{EarlyDataPolicy, QuicServing};
pub use registry::SessionRegistry;
pub use retained::RetainedStore;
pub use storage::{MemoryStorage, NoStorage, Storage, StorageError};
pub use subscriptions::{Subscription, SubscriptionTree};
