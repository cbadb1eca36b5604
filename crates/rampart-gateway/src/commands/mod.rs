//! The operator tools, one module per sub-command.

pub mod audit;
pub mod config;
