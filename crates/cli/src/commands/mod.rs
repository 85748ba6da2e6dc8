//! One module per subcommand; each turns parsed arguments into work.

#[cfg(feature = "broker")]
pub mod broker;
pub mod publish;
pub mod subscribe;
