//! One module per subcommand; each turns parsed arguments into work.

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "broker")]
pub mod broker;
#[cfg(feature = "broker")]
pub mod cert;
#[cfg(feature = "lab")]
pub mod lab;
#[cfg(feature = "broker")]
pub mod passwd;
pub mod publish;
pub mod subscribe;
