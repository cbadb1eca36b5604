//! `rampart audit verify`: checks an audit chain.
//!
//! Exit status: 0 when intact (with the record count on stdout), 1 naming
//! the first record that was altered, removed, inserted, reordered,
//! truncated or lost, 2 when the check could not run (unreadable key or
//! files, or no checkpoint under `--require-checkpoints`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rampart::audit::AuditKey;
use rampart::audit::sink::file::CHECKPOINTS_NAME;
use rampart::audit::verify::verify_paths;

/// `rampart audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit chain: every record's HMAC, the links between
    /// records, and the checkpoints.
    #[command(after_help = "Exit status: 0 intact (with the record count), 1 tampered \
        (naming the first bad record and how), 2 the check could not run (or no checkpoint \
        under --require-checkpoints).")]
    Verify(VerifyArgs),
}

/// `rampart audit verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Record files in chain order, or a file sink's directory (its rotated
    /// files by first seq, then audit.jsonl).
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// The file holding the audit key.
    #[arg(long, value_name = "K")]
    key_file: PathBuf,
    /// A checkpoint file; default: audit.checkpoints.jsonl in a directory given as the only path.
    #[arg(long, value_name = "F")]
    checkpoints: Option<PathBuf>,
    /// Fail (exit 2) when there is no checkpoint file, or none of its
    /// checkpoints vouches for a record, instead of checking without them.
    /// Without checkpoints, records cut off the end of the trail cannot be
    /// told from a trail that ended there: use this in scheduled checks (a
    /// running sink writes checkpoints, so a trail without any is suspect).
    #[arg(long)]
    require_checkpoints: bool,
}

/// Runs an audit command.
pub fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify(args) => verify(&args),
    }
}

fn verify(args: &VerifyArgs) -> ExitCode {
    let key = match AuditKey::from_file("verify", &args.key_file, "--key-file") {
        Ok(key) => key,
        Err(err) => return fail(&format!("--key-file: {}", err.message())),
    };
    let checkpoints = args.checkpoints.clone().or_else(|| match args.paths.as_slice() {
        [dir] if dir.is_dir() => Some(dir.join(CHECKPOINTS_NAME)).filter(|p| p.is_file()),
        _ => None,
    });
    if args.require_checkpoints && checkpoints.is_none() {
        return fail(
            "--require-checkpoints: no checkpoint file (give --checkpoints, or a directory holding audit.checkpoints.jsonl)",
        );
    }
    let verdict = match verify_paths(&key, &args.paths, checkpoints.as_deref()) {
        Ok(verdict) => verdict,
        Err(err) => {
            let cause = err.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
            return fail(&cause);
        }
    };
    if args.require_checkpoints
        && verdict.is_intact()
        && verdict.checkpoints_matched == 0
        && verdict.records > 0
    {
        return fail(
            "--require-checkpoints: no checkpoint vouches for any record, so a cut-off tail cannot be detected",
        );
    }
    let mut out = std::io::stdout().lock();
    match verdict.finding {
        None => {
            let cps = match &checkpoints {
                Some(path) => format!(
                    ", {} checkpoints matched ({})",
                    verdict.checkpoints_matched,
                    path.display()
                ),
                None => ", no checkpoint file (a cut-off tail cannot be detected)".to_owned(),
            };
            let _ = writeln!(out, "OK: {} records intact{cps}", verdict.records);
            ExitCode::SUCCESS
        }
        Some(finding) => {
            let _ = writeln!(
                out,
                "TAMPERED: {} at {} line {} (expected seq {}): {}\n{} records verified before it",
                finding.kind,
                finding.file,
                finding.line,
                finding.expected_seq,
                finding.detail,
                verdict.records
            );
            ExitCode::from(1)
        }
    }
}

fn fail(why: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {why}");
    ExitCode::from(2)
}
