//! The operator tools, one module per sub-command.

pub mod apikey;
pub mod config;
pub mod token;
