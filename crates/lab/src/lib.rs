//! placeholder
pub mod link;
pub mod loss;
