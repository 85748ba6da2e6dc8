//! The MQuicTT broker as a library: routing (subscription tree, shared subscriptions, retained
//! messages), the session registry (takeover, expiry, wills), storage and authentication
//! hooks, `$SYS` topics and metrics, and the async connection driver that serves any byte
//! stream. The routing core is pure logic without IO; the binary wraps the library with
//! listeners, config parsing and logging setup.

#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod config;
mod connect;
mod connection;
pub mod message;
pub mod metrics;
pub mod registry;
pub mod retained;
mod router;
pub mod session;
pub mod shared;
pub mod storage;
pub mod subscriptions;
pub mod sys;

pub use auth::{AllowAll, Authenticator};
pub use broker::{Broker, BrokerError, PeerInfo};
pub use config::{BrokerConfig, DropPolicy};
pub use message::{ClientId, Message};
pub use metrics::Metrics;
pub use registry::SessionRegistry;
pub use retained::RetainedStore;
pub use storage::{MemoryStorage, NoStorage, Storage, StorageError};
pub use subscriptions::{Subscription, SubscriptionTree};
