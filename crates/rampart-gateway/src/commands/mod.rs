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

use rampart::config::{Loaded, Loader, Profile};

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

/// Loads the configuration file `file`: a file that cannot be read is
/// `CANNOT_RUN`, a configuration with problems `INVALID` (each problem
/// printed on `err`, one per line).
pub(crate) fn load_config(
    file: &Path,
    env_prefix: &str,
    profile: Option<Profile>,
    err: &mut dyn Write,
) -> Result<Loaded, ExitCode> {
    if let Err(why) = std::fs::File::open(file) {
        let _ =
            writeln!(err, "error: cannot read the configuration file {}: {why}", file.display());
        return Err(ExitCode::from(CANNOT_RUN));
    }
    let mut loader = Loader::new().file(file).env_prefix(env_prefix);
    if let Some(profile) = profile {
        loader = loader.profile(profile);
    }
    loader.load().map_err(|problems| {
        // One line per problem, each naming its key and source.
        let _ = writeln!(err, "{problems}");
        ExitCode::from(INVALID)
    })
}
