//! The operator tools, one module per sub-command.

pub mod config;
