//! Opening files an operator names (keys, audit trails): only regular files,
//! opened without blocking (a FIFO would hang the reader), reads capped (a
//! device such as `/dev/zero` never ends).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (following symlinks).
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer; on a regular file it changes nothing.
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "is not a regular file"));
    }
    Ok(file)
}

/// The content of the regular file at `path`, refused past `max` bytes.
pub(crate) fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells "at the cap" from "past it".
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        std::fs::write(&path, b"0123456789").expect("write");
        assert_eq!(read_capped(&path, 10).expect("at the cap"), b"0123456789");
        assert!(read_capped(&path, 9).expect_err("past the cap").to_string().contains("larger"));
        assert!(read_capped(dir.path(), 10).is_err(), "a directory");
        let err = read_capped(Path::new("/dev/zero"), 10).expect_err("a device");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
