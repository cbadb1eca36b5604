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

use clap::{Args, Subcommand, ValueEnum};
use rampart::config::{DEFAULT_ENV_PREFIX, Profile};

use super::{CANNOT_RUN, EXIT_STATUS, load_config};

/// `rampart config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validates a configuration, reading the files it names (key files, the
    /// JWKS file): a summary when it loads, one line per problem (all of
    /// them) when it does not.
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
    /// The TOML file.
    file: PathBuf,
    /// Load under this profile, whatever the file and the environment say
    /// (production refuses insecure settings; development warns).
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
    /// The prefix of configuration variables.
    #[arg(long, default_value = DEFAULT_ENV_PREFIX)]
    env_prefix: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    Development,
    Production,
}

/// Runs the command.
pub fn run(command: &ConfigCommand) -> ExitCode {
    let (ConfigCommand::Check(args) | ConfigCommand::Show(args)) = command;
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let profile = args.profile.map(|profile| match profile {
        ProfileArg::Development => Profile::Development,
        ProfileArg::Production => Profile::Production,
    });
    let loaded = match load_config(&args.file, &args.env_prefix, profile, &mut err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    for warning in loaded.warnings() {
        let key = warning.config_key().unwrap_or("");
        let _ = writeln!(err, "warning: {key}: {}", warning.message());
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
