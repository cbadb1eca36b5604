//! The JSON-lines file sink.
//!
//! Records go to `<dir>/audit.jsonl`, one per line. When it would grow past
//! the rotation size it is renamed `audit.<first seq, 20 digits>.jsonl` and
//! a new `audit.jsonl` continues the same chain. Checkpoints go to
//! `audit.checkpoints.jsonl` in the same directory unless another path is
//! given (another disk or mount is better: see docs/SECURITY.md). The
//! directory is created 0700 and the files 0600.
//!
//! On open, a final line without its newline (a write cut short by a crash
//! or a full disk) is moved to `audit.torn-<unix seconds>` beside the log
//! and cut off, and the chain continues from the last complete record; a
//! torn checkpoint line goes to `audit.checkpoints.torn-<unix seconds>`.
//! [`files_in`] lists a directory's record files in chain order.
//!
//! The files are opened only if they are regular files, never through a
//! symbolic link (a link planted in a shared directory would send the trail,
//! or the repair of a torn line, to another file). After every write and
//! sync the sink checks that its open file is still the one at its path;
//! if the file or the directory was removed or replaced, the write fails
//! (nothing written into a file that is no longer the trail is confirmed).
//!
//! ```no_run
//! use std::time::Duration;
//! use rampart::audit::sink::{file::FileSink, SyncPolicy};
//!
//! let sink = FileSink::new("/var/log/myapp/audit")
//!     .fsync(SyncPolicy::Every(Duration::from_millis(10)))
//!     .rotate_bytes(Some(64 << 20));
//! # let _ = sink;
//! ```

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::{Sink, SyncPolicy, sink_error};
use crate::audit::chain::{Checkpoint, SealedRecord};
use crate::error::Error;

mod layout;

pub use layout::{ACTIVE_NAME, CHECKPOINTS_NAME, files_in, rotated_seq};
use layout::{rotated_path, torn_path};

/// Writes records to JSON-lines files; see the [module documentation](self).
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    checkpoints_path: PathBuf,
    sync: SyncPolicy,
    rotate_bytes: Option<u64>,
    active: Option<File>,
    len: u64,
    checkpoints: Option<File>,
    buf: Vec<u8>,
    syncer: Option<Syncer>,
}

/// A thread that fsyncs beside the writer, so a timed fsync does not
/// hold up appends (and the callers waiting on them).
#[derive(Debug)]
struct Syncer {
    tx: flume::Sender<File>,
    failed: Arc<Mutex<Option<io::Error>>>,
}

impl Syncer {
    fn start() -> io::Result<Syncer> {
        let (tx, rx) = flume::bounded::<File>(1);
        let failed = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&failed);
        std::thread::Builder::new().name("rampart-audit-fsync".into()).spawn(move || {
            for file in rx {
                if let Err(err) = file.sync_data() {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
                }
            }
        })?;
        Ok(Syncer { tx, failed })
    }
}

impl FileSink {
    /// A sink writing into `dir`: fsync every 10 ms, rotation at 64 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> FileSink {
        let dir = dir.into();
        FileSink {
            checkpoints_path: dir.join(CHECKPOINTS_NAME),
            dir,
            sync: SyncPolicy::Every(Duration::from_millis(10)),
            rotate_bytes: Some(64 << 20),
            active: None,
            len: 0,
            checkpoints: None,
            buf: Vec::new(),
            syncer: None,
        }
    }

    /// Sets when writes are made durable.
    #[must_use]
    pub fn fsync(mut self, policy: SyncPolicy) -> FileSink {
        self.sync = policy;
        self
    }

    /// Sets the size past which the file is rotated (`None`: never).
    #[must_use]
    pub fn rotate_bytes(mut self, bytes: Option<u64>) -> FileSink {
        self.rotate_bytes = bytes;
        self
    }

    /// Sets where checkpoints are written.
    #[must_use]
    pub fn checkpoints_path(mut self, path: impl Into<PathBuf>) -> FileSink {
        self.checkpoints_path = path.into();
        self
    }

    fn err(&self, what: &str, err: io::Error) -> Error {
        sink_error("file", &format!("{what} in {}", self.dir.display()), err)
    }

    fn active(&mut self) -> Result<&mut File, Error> {
        match self.active {
            Some(ref mut file) => Ok(file),
            None => Err(sink_error("file", "not open", io::Error::other("not open"))),
        }
    }

    /// Moves a final line without its newline (a write cut short by a crash
    /// or a full disk) aside (`<stem>.torn-<unix seconds>` beside `path`), then
    /// cuts it off; returns where the complete lines end.
    fn set_aside_torn_line(&self, file: &File, path: &Path) -> Result<u64, Error> {
        let tail = last_line(file).map_err(|e| self.err("reading", e))?;
        let Some(torn) = &tail.torn else { return Ok(tail.end) };
        let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let aside = torn_path(path, at.as_secs());
        let mut out = open_append(&aside).map_err(|e| self.err("saving a torn line", e))?;
        out.write_all(torn)
            .and_then(|()| out.sync_data())
            .map_err(|e| self.err("saving a torn line", e))?;
        file.set_len(tail.end)
            .and_then(|()| file.sync_data())
            .map_err(|e| self.err("cutting a torn line", e))?;
        tracing::warn!(target: "rampart::audit", file = %path.display(), bytes = torn.len(), aside = %aside.display(),
            "an audit file ended in an incomplete line (a crash or a full disk during a write); it was moved aside and the file continues from its last complete line");
        Ok(tail.end)
    }

    /// Fails unless the open active file is still the one at its path.
    fn check_active(&mut self) -> Result<(), Error> {
        let path = self.dir.join(ACTIVE_NAME);
        let checked = still_at(self.active()?, &path);
        checked.map_err(|e| {
            self.active = None;
            self.err("checking the active file", e)
        })
    }

    fn rotate(&mut self) -> Result<(), Error> {
        let file = self.active()?;
        file.sync_data().map_err(|e| self.err("syncing before rotation", e))?;
        let first = first_line(self.active()?).map_err(|e| self.err("reading", e))?;
        let seq = first
            .and_then(|line| serde_json::from_slice::<SeqOnly>(&line).ok())
            .map(|r| r.seq)
            .ok_or_else(|| self.err("rotating", io::Error::other("the first record has no seq")))?;
        let rotated = rotated_path(&self.dir, seq);
        if rotated.exists() {
            return Err(self.err("rotating", io::Error::other("the rotated file already exists")));
        }
        std::fs::rename(self.dir.join(ACTIVE_NAME), &rotated)
            .map_err(|e| self.err("rotating", e))?;
        self.active =
            Some(open_append(&self.dir.join(ACTIVE_NAME)).map_err(|e| self.err("opening", e))?);
        self.len = 0;
        sync_dir(&self.dir).map_err(|e| self.err("syncing the directory", e))
    }
}

#[derive(serde::Deserialize)]
struct SeqOnly {
    seq: u64,
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        "file"
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    fn open(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.active = None;
        self.checkpoints = None;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.err("creating the directory", e))?;
        let mode = std::fs::metadata(&self.dir)
            .map_err(|e| self.err("inspecting", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(target: "rampart::audit", dir = %self.dir.display(), mode = format!("{:o}", mode & 0o777),
                "the audit directory is open to other users; 0700 is expected");
        }
        let path = self.dir.join(ACTIVE_NAME);
        let file = open_append(&path).map_err(|e| self.err("opening", e))?;
        self.len = self.set_aside_torn_line(&file, &path)?;
        self.active = Some(file);
        let cp = open_append(&self.checkpoints_path)
            .map_err(|e| self.err("opening the checkpoints", e))?;
        self.set_aside_torn_line(&cp, &self.checkpoints_path)?;
        self.checkpoints = Some(cp);
        self.last_record()
    }

    fn append(&mut self, records: &[SealedRecord<'_>]) -> Result<(), Error> {
        self.buf.clear();
        for record in records {
            self.buf.extend_from_slice(&record.line);
            self.buf.push(b'\n');
        }
        let added = self.buf.len() as u64;
        if self.rotate_bytes.is_some_and(|max| self.len > 0 && self.len + added > max) {
            self.rotate()?;
        }
        let len = self.len;
        let buf = std::mem::take(&mut self.buf);
        let file = self.active()?;
        let written = file.write_all(&buf);
        if let Err(err) = written {
            // All or none: cut what part of the batch got in.
            let cut = file.set_len(len);
            self.buf = buf;
            if let Err(cut) = cut {
                self.active = None;
                tracing::error!(target: "rampart::audit", error = %cut, "could not cut a partly written batch; the sink re-opens");
            }
            return Err(self.err("writing", err));
        }
        self.buf = buf;
        self.len += added;
        self.check_active()
    }

    fn sync(&mut self) -> Result<(), Error> {
        let file = self.active()?;
        file.sync_data().map_err(|e| self.err("syncing", e))?;
        self.check_active()
    }

    fn sync_soon(&mut self) -> Result<(), Error> {
        if self.syncer.is_none() {
            self.syncer =
                Some(Syncer::start().map_err(|e| self.err("starting the fsync thread", e))?);
        }
        let Some(syncer) = self.syncer.as_ref() else { return self.sync() };
        let failed = syncer.failed.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(err) = failed {
            return Err(self.err("syncing", err));
        }
        self.check_active()?;
        let file = self.active()?.try_clone().map_err(|e| self.err("syncing", e))?;
        // One fsync already waiting covers this one too.
        let _ = self.syncer.as_ref().map(|s| s.tx.try_send(file));
        Ok(())
    }

    fn last_record(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if let Some(line) = last_line(self.active()?).map_err(|e| self.err("reading", e))?.line {
            return Ok(Some(line));
        }
        // An empty active file: the chain goes on from the newest rotated one.
        let files = files_in(&self.dir)?;
        match files.iter().rev().find(|p| p.file_name().is_some_and(|n| n != ACTIVE_NAME)) {
            Some(path) => {
                let file = crate::files::open_regular(path).map_err(|e| self.err("reading", e))?;
                Ok(last_line(&file).map_err(|e| self.err("reading", e))?.line)
            }
            None => Ok(None),
        }
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let Some(file) = self.checkpoints.as_mut() else {
            return Err(sink_error("file", "checkpoints not open", io::Error::other("not open")));
        };
        let mut line = checkpoint.line.clone();
        line.push(b'\n');
        let result = file
            .write_all(&line)
            .and_then(|()| file.sync_data())
            .and_then(|()| still_at(file, &self.checkpoints_path));
        result.map_err(|e| {
            self.checkpoints = None;
            self.err("writing a checkpoint", e)
        })
    }
}

/// Opens `path` to append (created 0600): only a regular file, never
/// through a symbolic link.
fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link; audit files are opened only directly",
                    path.display()
                ),
            ),
            _ => err,
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// Fails unless `file` is still the file at `path`: not removed (no link
/// left to it) and not replaced (another file, a directory or a link there).
fn still_at(file: &File, path: &Path) -> io::Result<()> {
    let open = file.metadata()?;
    let there = std::fs::symlink_metadata(path);
    let same = there.is_ok_and(|there| there.dev() == open.dev() && there.ino() == open.ino());
    if open.nlink() == 0 || !same {
        return Err(io::Error::other(format!(
            "{} was removed or replaced while open: what was written to it is not in the trail",
            path.display()
        )));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

struct Tail {
    /// Where the complete lines end.
    end: u64,
    /// The last complete line, without its newline.
    line: Option<Vec<u8>>,
    /// Bytes after the last newline.
    torn: Option<Vec<u8>>,
}

/// Finds the last complete line of `file` and any incomplete bytes after it.
fn last_line(file: &File) -> io::Result<Tail> {
    let len = file.metadata()?.len();
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = vec![0; usize::try_from(len - start).map_err(io::Error::other)?];
        file.read_exact_at(&mut buf, start)?;
        let newlines: Vec<usize> = buf
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .take(2)
            .collect();
        let enough = newlines.len() == 2 || start == 0;
        if enough {
            let (end, torn) = match newlines.first() {
                Some(&last_nl) if last_nl + 1 < buf.len() => {
                    (start + last_nl as u64 + 1, Some(buf[last_nl + 1..].to_vec()))
                }
                Some(&last_nl) => (start + last_nl as u64 + 1, None),
                None if buf.is_empty() => (0, None),
                None => (0, Some(buf.clone())),
            };
            let line = newlines.first().map(|&last_nl| {
                let from = newlines.get(1).map_or(0, |&before| before + 1);
                buf[from..last_nl].to_vec()
            });
            return Ok(Tail { end, line, torn });
        }
        chunk *= 4;
    }
}

fn first_line(file: &File) -> io::Result<Option<Vec<u8>>> {
    let len = file.metadata()?.len();
    let mut chunk = 64 * 1024u64;
    loop {
        let take = chunk.min(len);
        let mut buf = vec![0; usize::try_from(take).map_err(io::Error::other)?];
        file.read_exact_at(&mut buf, 0)?;
        if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            buf.truncate(nl);
            return Ok(Some(buf));
        }
        if take == len {
            return Ok(None);
        }
        chunk *= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_found_whole_or_torn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        type Case<'a> = (&'a [u8], u64, Option<&'a [u8]>, Option<&'a [u8]>);
        let cases: [Case<'_>; 5] = [
            (b"", 0, None, None),
            (b"a\n", 2, Some(b"a"), None),
            (b"a\nbc\n", 5, Some(b"bc"), None),
            (b"a\nbc\nde", 5, Some(b"bc"), Some(b"de")),
            (b"de", 0, None, Some(b"de")),
        ];
        for (content, end, line, torn) in cases {
            std::fs::write(&path, content).expect("write");
            let tail = last_line(&File::open(&path).expect("open")).expect("tail");
            assert_eq!(tail.end, end);
            assert_eq!(tail.line.as_deref(), line);
            assert_eq!(tail.torn.as_deref(), torn);
        }
        // A last line longer than the first chunk read.
        let long = vec![b'x'; 200_000];
        let mut content = b"first\n".to_vec();
        content.extend_from_slice(&long);
        content.push(b'\n');
        std::fs::write(&path, &content).expect("write");
        let tail = last_line(&File::open(&path).expect("open")).expect("tail");
        assert_eq!(tail.line.as_deref(), Some(long.as_slice()));
        assert_eq!(
            first_line(&File::open(&path).expect("open")).expect("first").as_deref(),
            Some(b"first".as_slice())
        );
    }
}
