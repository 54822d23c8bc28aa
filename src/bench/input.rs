//! Input files (profiles, results to compare): a regular file of bounded
//! size, or a clear refusal. The file is opened without blocking, since
//! opening a FIFO for reading waits for a writer that may never come, and
//! a device such as `/dev/zero` would be read forever.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::units::Size;

/// The text of the regular file at `path`, refused when it is something
/// else or holds more than `max_bytes` (`what` names what it should be:
/// "a profile's .toml file").
pub fn read_regular(path: &Path, max_bytes: u64, what: &str) -> io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!("not a regular file; give {what}")));
    }
    let mut text = String::new();
    file.take(max_bytes + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max_bytes {
        return Err(io::Error::other(format!(
            "larger than {}; give {what}",
            Size(max_bytes)
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_regular(&fifo, 10, "a file").unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let err = read_regular(Path::new("/dev/zero"), 10, "a file").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let file = dir.path().join("f");
        std::fs::write(&file, "0123456789x").unwrap();
        let err = read_regular(&file, 10, "a file").unwrap_err();
        assert!(err.to_string().contains("larger than 10B"), "{err}");
        assert_eq!(read_regular(&file, 11, "a file").unwrap(), "0123456789x");
    }
}
