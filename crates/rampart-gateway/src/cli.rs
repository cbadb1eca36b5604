//! The command line: `rampart <command> ...`.
//!
//! ```
//! use clap::Parser;
//! use rampart_gateway::cli::Cli;
//!
//! // `--version` and `--help` are answered by clap itself, as an early exit.
//! let early = Cli::try_parse_from(["rampart", "--version"]).unwrap_err();
//! assert_eq!(early.kind(), clap::error::ErrorKind::DisplayVersion);
//! ```

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{self, EXIT_STATUS, INVALID};

/// rampart: security and error-handling policies in front of any HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about,
    long_about = "rampart's gateway: the same policies in front of any HTTP API, from one TOML file.\n\nThis release carries the operator tools below; `rampart serve`, the gateway itself, is not built yet.",
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// The sub-commands; each operator tool adds one.
#[derive(Debug, Subcommand)]
enum Command {
    /// API keys: `rampart apikey new --name N [--perm P]...`.
    #[command(subcommand)]
    Apikey(commands::apikey::ApiKeyCommand),
    /// Check a configuration file, or show the effective configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Tokens: `rampart token issue --config FILE --sub S [--perm P]... [--ttl 1h]`.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
}

/// Parses `args` (the program name first) and runs them. `--help` and
/// `--version` exit 0; a usage error (an unknown flag, a bad value) is
/// invalid input like any other: exit 1 (clap's own convention would be 2,
/// which rampart keeps for "could not run").
pub fn parse_and_run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    match Cli::try_parse_from(args) {
        Ok(cli) => run(cli),
        Err(usage) => {
            let _ = usage.print();
            if usage.use_stderr() { ExitCode::from(INVALID) } else { ExitCode::SUCCESS }
        }
    }
}

/// Runs a parsed command line and says how the process should exit.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        None => {
            // No command given: show what is available.
            let _ = Cli::command().print_help();
            ExitCode::SUCCESS
        }
        Some(command) => match command {
            Command::Apikey(command) => {
                commands::apikey::run(command, &mut std::io::stdout(), &mut std::io::stderr())
            }
            Command::Config(command) => commands::config::run(&command),
            Command::Token(command) => {
                commands::token::run(&command, &mut std::io::stdout(), &mut std::io::stderr())
            }
            Command::Audit(command) => commands::audit::run(command),
        },
    }
}
