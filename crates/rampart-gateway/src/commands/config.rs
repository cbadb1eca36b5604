//! `rampart config check FILE` and `rampart config show FILE`.
//!
//! ```
//! use clap::Parser;
//! use rampart_gateway::cli::Cli;
//!
//! let cli = Cli::try_parse_from(["rampart", "config", "check", "rampart.toml", "--profile", "production"]);
//! assert!(cli.is_ok());
//! ```

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CANNOT_RUN, EXIT_STATUS, LoadOptions};

/// `rampart config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validates a configuration, reading the files it names (key files, the
    /// JWKS file): a summary when it loads, one line per problem (all of
    /// them) when it does not. The application's own tables are named, not
    /// checked.
    #[command(after_help = EXIT_STATUS)]
    Check(LoadArgs),
    /// Prints the effective configuration and where each value came from
    /// (default, file and line, or variable). Secrets print as ******.
    #[command(after_help = EXIT_STATUS)]
    Show(LoadArgs),
}

/// What to load.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The configuration file: TOML, or JSON when it ends in `.json`.
    file: PathBuf,
    #[command(flatten)]
    options: LoadOptions,
}

/// Runs the command.
pub fn run(command: &ConfigCommand) -> ExitCode {
    let (ConfigCommand::Check(args) | ConfigCommand::Show(args)) = command;
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let loaded = match args.options.load(&args.file, &mut err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    for warning in loaded.warnings() {
        let key = warning.config_key().unwrap_or("");
        let _ = writeln!(err, "warning: {key}: {}", warning.message());
    }
    for table in loaded.extra_tables() {
        let _ = writeln!(
            err,
            "note: {table}: not one of rampart's tables (the application's own), not checked"
        );
    }
    let config = loaded.config();
    let written = match command {
        ConfigCommand::Check(_) => writeln!(
            out,
            "{}: valid for the {} profile ({} settings, {} warnings)",
            args.file.display(),
            config.profile,
            loaded.settings().len(),
            loaded.warnings().len()
        ),
        ConfigCommand::Show(_) => {
            let width = loaded.settings().iter().map(|s| s.key.len() + s.value.len()).max();
            let width = width.unwrap_or(0) + 3;
            loaded.settings().iter().try_for_each(|s| {
                let pad = width - s.key.len() - s.value.len();
                writeln!(out, "{} = {}{:pad$}# {}", s.key, s.value, "", s.source)
            })
        }
    };
    if written.is_err() {
        return ExitCode::from(CANNOT_RUN);
    }
    ExitCode::SUCCESS
}
