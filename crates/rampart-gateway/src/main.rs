//! The `rampart` binary.

use std::process::ExitCode;

use clap::Parser;
use rampart_gateway::cli::{Cli, run};

fn main() -> ExitCode {
    run(Cli::parse())
}
