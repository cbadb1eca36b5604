//! `rampart token issue --config FILE --sub S [--perm P]... [--role R]...
//! [--ttl 1h] [--kid K]`: prints one JWT signed with an HS key of
//! `[auth.jwt.keys]`, valid for `--ttl` or the configured `auth.jwt.lifetime`.
//!
//! ```
//! use clap::Parser;
//! use rampart_gateway::cli::Cli;
//!
//! let cli = Cli::try_parse_from([
//!     "rampart", "token", "issue", "--config", "rampart.toml", "--sub", "ci", "--perm", "orders:read", "--ttl", "1h",
//! ]);
//! assert!(cli.is_ok());
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use rampart::auth::TokenIssuer;

use super::{CANNOT_RUN, EXIT_STATUS, INVALID, LoadOptions};

/// `rampart token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed token for a subject (HS keys only).
    #[command(after_help = EXIT_STATUS)]
    Issue(IssueArgs),
}

/// Arguments of `rampart token issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The configuration file holding the HS key.
    #[arg(long)]
    config: PathBuf,
    /// The token's subject (`sub`).
    #[arg(long)]
    sub: String,
    /// A permission to grant (repeatable).
    #[arg(long = "perm", value_name = "PERMISSION")]
    permissions: Vec<String>,
    /// A role to grant (repeatable): one the configuration defines in `[auth.roles]`.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// How long the token is valid, e.g. "15m" or "1h" (default: `auth.jwt.lifetime`).
    #[arg(long, value_parser = parse_ttl)]
    ttl: Option<Duration>,
    /// The HS key to sign with, when several are configured.
    #[arg(long)]
    kid: Option<String>,
    #[command(flatten)]
    options: LoadOptions,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|_| "not a duration such as \"15m\" or \"1h\"".to_owned())
}

/// Runs the command, writing the token to `out` and problems to `err`.
pub fn run(command: &TokenCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let TokenCommand::Issue(args) = command;
    if let Some(code) = super::apikey::refuse_bad_permissions(&args.permissions, err) {
        return code;
    }
    let loaded = match args.options.load(&args.config, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let config = loaded.config();
    // A role the configuration does not define would grant nothing, silently.
    if let Some(role) = args.roles.iter().find(|role| config.auth.roles().get(role).is_none()) {
        let _ = writeln!(err, "error: --role {role:?} names no role defined in auth.roles");
        return ExitCode::from(INVALID);
    }
    let token = TokenIssuer::new(config.auth.jwt(), args.kid.as_deref())
        .and_then(|issuer| issuer.issue(&args.sub, &args.permissions, &args.roles, args.ttl));
    match token {
        Ok(token) => {
            if writeln!(out, "{token}").is_err() {
                return ExitCode::from(CANNOT_RUN);
            }
            ExitCode::SUCCESS
        }
        Err(why) => {
            let key = why.config_key().map(|k| format!("{k}: ")).unwrap_or_default();
            let _ = writeln!(err, "error: {key}{}", why.message());
            ExitCode::from(INVALID)
        }
    }
}
