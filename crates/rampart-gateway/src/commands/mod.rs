//! The operator tools, one module per command.

pub mod apikey;
