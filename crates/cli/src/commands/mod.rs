//! One module per subcommand; each turns parsed arguments into work.

pub mod bench;
pub mod broker;
pub mod passwd;
pub mod publish;
pub mod subscribe;
