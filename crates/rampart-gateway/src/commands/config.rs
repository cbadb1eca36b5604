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
use rampart::config::{ConfigError, DEFAULT_ENV_PREFIX, Loaded, Loader, Profile};

/// `rampart config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validates a configuration, reading the files it names (key files, the
    /// JWKS file): exit 0 with a summary when it loads, exit 1 with one line
    /// per problem when it does not.
    Check(LoadArgs),
    /// Prints the effective configuration and where each value came from
    /// (default, file and line, or variable). Secrets print as ******.
    Show(LoadArgs),
}

/// What to load.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The TOML file.
    file: PathBuf,
    /// Check against this profile whatever the file says.
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

impl LoadArgs {
    fn load(&self) -> Result<Loaded, ConfigError> {
        let mut loader = Loader::new().file(&self.file).env_prefix(&self.env_prefix);
        if let Some(profile) = self.profile {
            loader = loader.profile(match profile {
                ProfileArg::Development => Profile::Development,
                ProfileArg::Production => Profile::Production,
            });
        }
        loader.load()
    }
}

/// Runs the command.
pub fn run(command: &ConfigCommand) -> ExitCode {
    let (ConfigCommand::Check(args) | ConfigCommand::Show(args)) = command;
    let loaded = match args.load() {
        Ok(loaded) => loaded,
        Err(err) => {
            // One line per problem, each naming its key and source.
            let _ = writeln!(io::stderr().lock(), "{err}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    for warning in loaded.warnings() {
        let key = warning.config_key().unwrap_or("");
        let _ = writeln!(err, "warning: {key}: {}", warning.message());
    }
    let config = loaded.config();
    let _ = match command {
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
    ExitCode::SUCCESS
}
