//! Where the file sink keeps what: the one description of its directory,
//! read by the sink as it writes and rotates and by
//! [`verify`](crate::audit::verify) as it reads.
//!
//! - `audit.jsonl`: the file being written;
//! - `audit.<first seq, 20 digits>.jsonl`: a rotated file, named by its
//!   first record, so the names sort in chain order;
//! - `audit.checkpoints.jsonl`: the checkpoints, unless put elsewhere;
//! - `<file stem>.torn-<unix seconds>` beside a file: a final line without
//!   its newline, set aside when the file was opened.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The file being written.
pub const ACTIVE_NAME: &str = "audit.jsonl";

/// The default checkpoint file name.
pub const CHECKPOINTS_NAME: &str = "audit.checkpoints.jsonl";

const PREFIX: &str = "audit.";
const SUFFIX: &str = ".jsonl";
const SEQ_DIGITS: usize = 20;

/// Where the file whose first record is `seq` goes when it is rotated.
pub(crate) fn rotated_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{seq:0SEQ_DIGITS$}{SUFFIX}"))
}

/// The first seq of a rotated file, from its name `audit.<20 digits>.jsonl`.
pub fn rotated_seq(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (digits.len() == SEQ_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Where a torn final line of `path` is set aside, found at `unix_seconds`.
pub(crate) fn torn_path(path: &Path, unix_seconds: u64) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.torn-{unix_seconds}"))
}

/// The file sink's record files under `dir`, in chain order: the rotated
/// files by their first seq, then the active file.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let listing = |err: io::Error| {
        Error::internal(io::Error::new(err.kind(), format!("listing {}: {err}", dir.display())))
    };
    let mut rotated = Vec::new();
    let mut active = None;
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == ACTIVE_NAME {
            active = Some(entry.path());
        } else if let Some(seq) = rotated_seq(name) {
            rotated.push((seq, entry.path()));
        }
    }
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, path)| path).collect();
    files.extend(active);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_carry_their_first_seq() {
        let path = rotated_path(Path::new("d"), 42);
        assert_eq!(path, Path::new("d/audit.00000000000000000042.jsonl"));
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(rotated_seq(name), Some(42));
        assert_eq!(rotated_seq(ACTIVE_NAME), None);
        assert_eq!(rotated_seq(CHECKPOINTS_NAME), None);
        assert_eq!(rotated_seq("audit.42.jsonl"), None);
        assert_eq!(torn_path(Path::new("d/audit.jsonl"), 7), Path::new("d/audit.torn-7"));
        let checkpoints = Path::new("d/audit.checkpoints.jsonl");
        assert_eq!(torn_path(checkpoints, 7), Path::new("d/audit.checkpoints.torn-7"));
    }

    #[test]
    fn files_are_listed_in_chain_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [ACTIVE_NAME, CHECKPOINTS_NAME, "audit.torn-1", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        for seq in [900, 7, 64] {
            std::fs::write(rotated_path(dir.path(), seq), "").expect("write");
        }
        let files = files_in(dir.path()).expect("lists");
        let expected = [
            rotated_path(dir.path(), 7),
            rotated_path(dir.path(), 64),
            rotated_path(dir.path(), 900),
            dir.path().join(ACTIVE_NAME),
        ];
        assert_eq!(files, expected);
    }
}
