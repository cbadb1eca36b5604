//! The operator tools, one module per sub-command.

pub mod apikey;
pub mod audit;
pub mod config;
pub mod token;
