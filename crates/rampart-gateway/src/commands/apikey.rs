//! `rampart apikey new --name N [--perm P]... [--role R]... [--json]`: makes
//! an API key, prints it once, and prints the configuration entry that
//! holds only its hash.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rampart::auth::{NewApiKey, Permission};

use super::{CANNOT_RUN, EXIT_STATUS, INVALID};

/// `rampart apikey ...`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a new API key: the key is printed once, with the config entry to add.
    #[command(after_help = EXIT_STATUS)]
    New(NewArgs),
}

/// Arguments of `rampart apikey new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Who or what holds the key (the principal's subject).
    #[arg(long)]
    name: String,
    /// A permission to grant (repeatable), e.g. `orders:read` or `orders:*`.
    #[arg(long = "perm", value_name = "PERMISSION")]
    permissions: Vec<String>,
    /// A role to grant (repeatable), as named in `[auth.roles]`.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// Print one JSON object instead of text: `key`, `id`, `name`, `hash`,
    /// `permissions`, `roles`, and `config_entry` (the TOML to add).
    #[arg(long)]
    json: bool,
}

/// Runs the command, writing to `out` (the key and the entry) and `err`.
pub fn run(command: ApiKeyCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let ApiKeyCommand::New(args) = command;
    if args.name.trim().is_empty() || args.name.len() > 128 {
        let _ = writeln!(err, "error: --name must have 1 to 128 characters");
        return ExitCode::from(INVALID);
    }
    if let Some(code) = refuse_bad_permissions(&args.permissions, err) {
        return code;
    }
    let key = match NewApiKey::generate() {
        Ok(key) => key,
        Err(why) => {
            let _ = writeln!(err, "error: could not generate a key: {why}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let entry = key.config_entry(&args.name, &args.permissions, &args.roles);
    let written = if args.json {
        let json = serde_json::json!({
            "key": key.expose(),
            "id": key.id(),
            "name": args.name,
            "hash": key.hash().to_string(),
            "permissions": args.permissions,
            "roles": args.roles,
            "config_entry": entry,
        });
        writeln!(out, "{json}")
    } else {
        writeln!(
            out,
            "API key for {name} (shown once; store it now, rampart keeps only its hash):\n\n  {key}\n\n\
             Add this to the configuration file:\n\n{entry}",
            name = args.name,
            key = key.expose(),
        )
    };
    if written.is_err() {
        return ExitCode::from(CANNOT_RUN);
    }
    ExitCode::SUCCESS
}

/// Says which `--perm` is not a permission (invalid input), if any is not.
pub(crate) fn refuse_bad_permissions(
    permissions: &[String],
    err: &mut dyn Write,
) -> Option<ExitCode> {
    let (bad, why) =
        permissions.iter().find_map(|p| Permission::parse(p).err().map(|why| (p, why)))?;
    let _ = writeln!(err, "error: --perm {bad:?} is not a valid permission: {}", why.message());
    Some(ExitCode::from(INVALID))
}
