//! The operator commands, one module each.

pub mod audit;
