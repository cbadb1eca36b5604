//! The `rampart` gateway and operator tools: rampart's policies in front of
//! any HTTP API, configured by one TOML file.
//!
//! The binary is a thin shell over [`cli::run`], so every command can also be
//! tested in-process.

pub mod cli;
pub mod commands;
