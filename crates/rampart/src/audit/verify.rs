//! Verifying a stored chain: find the first record that was altered,
//! removed, inserted or reordered, and a cut-off tail.
//!
//! Input is one or more files read in the order given; a directory stands
//! for the file sink's files in chain order
//! ([`files_in`]: rotated `audit.<seq>.jsonl`
//! files by their first seq, then the active `audit.jsonl`). Checkpoints
//! (see [`chain`](super::chain)) let the verifier notice that records after
//! the last one present existed: without them, removing the newest records
//! cannot be told from a log that simply ended there. An `audit.gap` record
//! (a sink found records it had confirmed missing, and said so) is reported
//! as [`FindingKind::Lost`].
//!
//! Files are opened one at a time, and only regular files (a FIFO in a
//! file's place is refused rather than waited on).
//!
//! ```
//! use rampart::audit::verify::{verify_lines, FindingKind};
//! use rampart::audit::AuditKey;
//!
//! let key = AuditKey::new("k1", vec![9; 32]).unwrap();
//! let verdict = verify_lines(&key, "x.jsonl", b"{\"seq\":1}\n".as_slice(), &[]).unwrap();
//! assert_eq!(verdict.finding.unwrap().kind, FindingKind::Altered);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::chain::{
    Checkpoint, GAP_EVENT_TYPE, GENESIS, ParsedRecord, parse_checkpoint, parse_record,
};
use super::key::AuditKey;
use super::sink::file::files_in;
use crate::error::Error;

/// How the chain was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A record's bytes were changed (its MAC fails), or it does not link to its predecessor.
    Altered,
    /// Records are missing from the middle or the start.
    Removed,
    /// A line that is not part of the chain, or a second copy of a record.
    Inserted,
    /// An authentic record appears out of order.
    Reordered,
    /// The end is missing: a checkpoint vouches for later records, or the last line is torn.
    Truncated,
    /// Records a sink had confirmed vanished from its storage while it ran;
    /// the sink noticed and said so in an `audit.gap` record (fail-open).
    Lost,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Altered => "altered",
            FindingKind::Removed => "removed",
            FindingKind::Inserted => "inserted",
            FindingKind::Reordered => "reordered",
            FindingKind::Truncated => "truncated",
            FindingKind::Lost => "lost",
        })
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of tampering.
    pub kind: FindingKind,
    /// The file it was found in.
    pub file: String,
    /// The line (from 1) in that file; for a truncation, the last line present.
    pub line: u64,
    /// The seq the chain expected at that point.
    pub expected_seq: u64,
    /// A sentence for a human.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} line {} (expected seq {}): {}",
            self.kind, self.file, self.line, self.expected_seq, self.detail
        )
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Records that verified before the first problem (all of them if none).
    pub records: u64,
    /// Checkpoints that were matched against a record.
    pub checkpoints_matched: usize,
    /// The first problem, or `None` when the chain is intact.
    pub finding: Option<Finding>,
}

impl Verdict {
    /// Whether nothing was found.
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
    }
}

/// Verifies `paths` (files, or directories as described above) with `key`,
/// checking checkpoints from `checkpoints` if given.
pub fn verify_paths(
    key: &AuditKey,
    paths: &[PathBuf],
    checkpoints: Option<&Path>,
) -> Result<Verdict, Error> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(files_in(path)?);
        } else {
            files.push(path.clone());
        }
    }
    let checkpoints = match checkpoints {
        Some(path) => match read_checkpoints(key, path)? {
            Ok(list) => list,
            Err(finding) => {
                return Ok(Verdict { records: 0, checkpoints_matched: 0, finding: Some(finding) });
            }
        },
        None => Vec::new(),
    };
    let mut lines = Lines::default();
    for path in files {
        lines.push_file(path);
    }
    verify(key, lines, &checkpoints)
}

/// Verifies one stream of record lines (named `name` in findings) against
/// `checkpoints` (e.g. read with [`read_checkpoints`]).
pub fn verify_lines(
    key: &AuditKey,
    name: &str,
    records: impl Read + 'static,
    checkpoints: &[Checkpoint],
) -> Result<Verdict, Error> {
    let mut lines = Lines::default();
    lines.push_reader(name.to_owned(), Box::new(BufReader::new(records)));
    verify(key, lines, checkpoints)
}

/// Reads and authenticates a checkpoint file. A torn final line (a crash
/// while it was written) is ignored; any other bad line is a finding.
pub fn read_checkpoints(
    key: &AuditKey,
    path: &Path,
) -> Result<Result<Vec<Checkpoint>, Finding>, Error> {
    let mut lines = Lines::default();
    lines.push_file(path.to_path_buf());
    let mut list = Vec::new();
    while let Some(line) = lines.next_line()? {
        if !line.complete {
            break;
        }
        match parse_checkpoint(key, &line.bytes) {
            Some(cp) => list.push(cp),
            None => {
                return Ok(Err(Finding {
                    kind: FindingKind::Altered,
                    file: line.file,
                    line: line.number,
                    expected_seq: list.last().map_or(0, |cp: &Checkpoint| cp.seq),
                    detail: "this checkpoint is not authentic (altered or made with another key)"
                        .into(),
                }));
            }
        }
    }
    Ok(Ok(list))
}

fn io_error(what: &str, path: &Path, err: &io::Error) -> Error {
    Error::internal(io::Error::new(err.kind(), format!("{what} {}: {err}", path.display())))
}

/// The longest line read; a longer one is reported, not loaded whole.
const MAX_LINE: u64 = 64 << 20;

struct Line {
    file: String,
    number: u64,
    bytes: Vec<u8>,
    complete: bool,
}

/// Lines from several inputs in turn, remembering where each came from.
/// Files are opened one at a time, when their turn comes, so a trail of
/// many rotated files never holds more than one open.
#[derive(Default)]
struct Lines {
    inputs: VecDeque<Input>,
    current: Option<(String, Box<dyn BufRead>)>,
    number: u64,
    peeked: Option<Line>,
}

enum Input {
    File(PathBuf),
    Reader(String, Box<dyn BufRead>),
}

impl Lines {
    fn push_file(&mut self, path: PathBuf) {
        self.inputs.push_back(Input::File(path));
    }

    fn push_reader(&mut self, name: String, reader: Box<dyn BufRead>) {
        self.inputs.push_back(Input::Reader(name, reader));
    }

    fn next_line(&mut self) -> Result<Option<Line>, Error> {
        if let Some(line) = self.peeked.take() {
            return Ok(Some(line));
        }
        loop {
            if self.current.is_none() {
                self.current = match self.inputs.pop_front() {
                    None => return Ok(None),
                    Some(Input::Reader(name, reader)) => Some((name, reader)),
                    Some(Input::File(path)) => {
                        // Only regular files: a FIFO in the trail's place would hang the check.
                        let file = crate::files::open_regular(&path)
                            .map_err(|err| io_error("opening", &path, &err))?;
                        Some((path.display().to_string(), Box::new(BufReader::new(file))))
                    }
                };
                self.number = 0;
            }
            let Some((name, reader)) = self.current.as_mut() else { continue };
            let mut bytes = Vec::new();
            let read = reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut bytes);
            if read.map_err(|err| io_error("reading", Path::new(name.as_str()), &err))? == 0 {
                self.current = None;
                continue;
            }
            self.number += 1;
            let complete = bytes.last() == Some(&b'\n');
            if complete {
                bytes.pop();
            } else if bytes.len() as u64 == MAX_LINE {
                // Over-long: not a record rampart wrote; keep what was read, as an altered line.
                return Ok(Some(Line {
                    file: name.clone(),
                    number: self.number,
                    bytes,
                    complete: true,
                }));
            }
            return Ok(Some(Line { file: name.clone(), number: self.number, bytes, complete }));
        }
    }

    fn peek(&mut self) -> Result<Option<&Line>, Error> {
        if self.peeked.is_none() {
            self.peeked = self.next_line()?;
        }
        Ok(self.peeked.as_ref())
    }
}

fn verify(key: &AuditKey, mut lines: Lines, checkpoints: &[Checkpoint]) -> Result<Verdict, Error> {
    let mut vouched: HashMap<u64, &Checkpoint> = HashMap::new();
    for cp in checkpoints {
        vouched.entry(cp.seq).or_insert(cp);
    }
    let mut records = 0u64;
    let mut matched = 0usize;
    let mut expected = 1u64;
    let mut prev = GENESIS.to_owned();
    let mut last_place = (String::from("(no records)"), 0u64);
    // Members come in a fixed order and only `event_type` can hold this one
    // (checked on authentic records only).
    let gap_member = format!(",\"event_type\":\"{GAP_EVENT_TYPE}\",");
    let finding = loop {
        let Some(line) = lines.next_line()? else { break None };
        last_place = (line.file.clone(), line.number);
        let found = |kind, detail: String| Finding {
            kind,
            file: line.file.clone(),
            line: line.number,
            expected_seq: expected,
            detail,
        };
        if !line.complete {
            break Some(found(
                FindingKind::Truncated,
                "the last line is incomplete (a torn write, or a cut inside a record)".into(),
            ));
        }
        let record = parse_record(key, &line.bytes).filter(|r| r.authentic);
        let Some(record) = record else {
            // A bad line followed by the record the chain expects was slipped in.
            let next = lines.peek()?.map(|next| parse_record(key, &next.bytes));
            let inserted = matches!(next, Some(Some(ParsedRecord { authentic: true, seq, prev: ref p, .. }))
                if seq == expected && *p == prev);
            break Some(if inserted {
                found(FindingKind::Inserted, "this line is not part of the chain".into())
            } else {
                found(
                    FindingKind::Altered,
                    "this record does not match its hash (changed, or not a record)".into(),
                )
            });
        };
        if memchr::memmem::find(&line.bytes, gap_member.as_bytes()).is_some() {
            break Some(found(FindingKind::Lost, describe_gap(&line.bytes)));
        }
        if record.seq == expected && record.prev == prev {
            if let Some(cp) = vouched.get(&record.seq) {
                if cp.hash != record.hash {
                    break Some(found(
                        FindingKind::Altered,
                        format!("the checkpoint of {} vouches for a different record", cp.time),
                    ));
                }
                matched += 1;
            }
            records += 1;
            expected += 1;
            prev = record.hash;
            continue;
        }
        if record.seq == expected {
            break Some(found(
                FindingKind::Altered,
                "this record does not follow from the one before (its prev differs)".into(),
            ));
        }
        if record.seq < expected {
            let what = if record.seq + 1 == expected && record.hash == prev {
                "a copy of the record just before".to_owned()
            } else {
                format!("a second copy of seq {}", record.seq)
            };
            break Some(found(FindingKind::Inserted, what));
        }
        // A gap: reordered if the missing record turns up later, else removed.
        let gap = record.seq;
        let mut later = None;
        while let Some(rest) = lines.next_line()? {
            if parse_record(key, &rest.bytes).is_some_and(|r| r.authentic && r.seq == expected) {
                later = Some((rest.file, rest.number));
                break;
            }
        }
        break Some(match later {
            Some((file, number)) => found(
                FindingKind::Reordered,
                format!(
                    "seq {gap} appears here; seq {expected} appears later, at {file} line {number}"
                ),
            ),
            None if expected + 1 == gap => {
                found(FindingKind::Removed, format!("seq {expected} is missing before this record"))
            }
            None => found(
                FindingKind::Removed,
                format!("seq {expected} to {} are missing before this record", gap - 1),
            ),
        });
    };
    let finding = finding.or_else(|| {
        let last_vouched = checkpoints.iter().max_by_key(|cp| cp.seq)?;
        (last_vouched.seq >= expected).then(|| Finding {
            kind: FindingKind::Truncated,
            file: last_place.0.clone(),
            line: last_place.1,
            expected_seq: expected,
            detail: format!(
                "the records end at seq {}, but the checkpoint of {} vouches for seq {}",
                expected - 1,
                last_vouched.time,
                last_vouched.seq
            ),
        })
    });
    Ok(Verdict { records, checkpoints_matched: matched, finding })
}

/// What an `audit.gap` record says was lost.
fn describe_gap(line: &[u8]) -> String {
    let details = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .map(|record| record["details"].clone())
        .unwrap_or_default();
    match (details["found_seq"].as_u64(), details["confirmed_seq"].as_u64()) {
        (Some(found), Some(confirmed)) => format!(
            "the sink found its storage ending at seq {found} after it had confirmed seq \
             {confirmed}, and recorded the loss here (audit.gap)"
        ),
        _ => "the sink recorded a loss of confirmed records here (audit.gap)".to_owned(),
    }
}
