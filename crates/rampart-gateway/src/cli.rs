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

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;

/// rampart: security and error-handling policies in front of any HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about,
    long_about = "rampart's gateway: the same policies in front of any HTTP API, from one TOML file.\n\nThis release carries the operator tools below; `rampart serve`, the gateway itself, is not built yet."
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
