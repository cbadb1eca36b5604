//! The operator tools, one module per sub-command.
//!
//! Every command exits the same way: 0 when it did what was asked (or the
//! answer is "yes"), 1 when the answer is "no" or the input is invalid (a
//! bad argument, a configuration with problems), 2 when it could not run
//! at all (a file it must read is missing or unreadable, output cannot be
//! written, no randomness). Usage errors caught by the argument parser are
//! invalid input too: 1.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rampart::config::{DEFAULT_ENV_PREFIX, Loaded, Loader, Profile};

pub mod apikey;
pub mod audit;
pub mod config;
pub mod token;

/// The answer is "no", or the input is invalid.
pub(crate) const INVALID: u8 = 1;
/// The command could not run.
pub(crate) const CANNOT_RUN: u8 = 2;

/// The exit statuses, for `--help`.
pub(crate) const EXIT_STATUS: &str = "Exit status: 0 done, 1 invalid input or the answer is \
    \"no\" (one line per problem on stderr), 2 could not run (a file that cannot be read, \
    output that cannot be written).";

/// How every command that reads a configuration file loads it: the flags
/// they share, and the one function that loads.
#[derive(Debug, Args)]
pub struct LoadOptions {
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

impl LoadOptions {
    /// Loads the configuration file `file` (TOML, or JSON by its `.json`
    /// extension) with the environment: a file that cannot be read is
    /// `CANNOT_RUN`, a configuration with problems `INVALID` (each problem
    /// printed on `err`, one per line).
    pub(crate) fn load(&self, file: &Path, err: &mut dyn Write) -> Result<Loaded, ExitCode> {
        if let Err(why) = std::fs::File::open(file) {
            let _ = writeln!(
                err,
                "error: cannot read the configuration file {}: {why}",
                file.display()
            );
            return Err(ExitCode::from(CANNOT_RUN));
        }
        let mut loader = Loader::new().file(file).env_prefix(&self.env_prefix);
        if let Some(profile) = self.profile {
            loader = loader.profile(match profile {
                ProfileArg::Development => Profile::Development,
                ProfileArg::Production => Profile::Production,
            });
        }
        loader.load().map_err(|problems| {
            // One line per problem, each naming its key and source.
            let _ = writeln!(err, "{problems}");
            ExitCode::from(INVALID)
        })
    }
}
