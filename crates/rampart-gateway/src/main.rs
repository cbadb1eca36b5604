//! The `rampart` binary.

use std::process::ExitCode;

use rampart_gateway::cli::parse_and_run;

fn main() -> ExitCode {
    parse_and_run(std::env::args_os())
}
