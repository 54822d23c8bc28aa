//! Files the tool reads that must be regular files (profiles, results,
//! checkpoint files): opened without blocking, since opening a FIFO for
//! reading waits for a writer that may never come, refused when not a
//! regular file (a device such as `/dev/zero` would be read forever), and
//! read only up to a bound.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why [`read_regular`] refused a file that opened.
#[derive(Debug, thiserror::Error)]
pub enum RegularFileError {
    /// The OS error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A FIFO, device, directory or socket.
    #[error("not a regular file")]
    NotRegular,
    /// Longer than the bound, in bytes.
    #[error("larger than {0} B")]
    TooLarge(u64),
}

/// The bytes of the regular file at `path`, at most `max_bytes` of them.
///
/// # Errors
///
/// The OS error opening or reading it, [`RegularFileError::NotRegular`],
/// or [`RegularFileError::TooLarge`] when it holds more than `max_bytes`.
pub fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, RegularFileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(RegularFileError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(RegularFileError::TooLarge(max_bytes));
    }
    Ok(bytes)
}

/// What stands in the way of creating directory `dir`, as far as can be
/// told without creating it: a NUL byte, a symbolic link to nothing, or a
/// path (or its nearest existing ancestor) that is not a directory. What
/// only trying tells (permissions, special file systems) fails the run's
/// first job with exit 2 (`checkpoint.dir`) or its open (`history --db`).
pub fn directory_problem(dir: &std::path::Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let shown = dir.display();
    if dir.as_os_str().as_bytes().contains(&0) {
        return Some(format!("{shown:?} contains a NUL byte"));
    }
    let mut existing = dir;
    loop {
        if existing.as_os_str().is_empty() {
            return None; // relative, under the working directory
        }
        if existing.exists() {
            break;
        }
        if existing.symlink_metadata().is_ok() {
            let link = existing.display();
            return Some(format!("{link} is a symbolic link to nothing"));
        }
        existing = existing.parent()?;
    }
    if existing.is_dir() {
        return None;
    }
    Some(if existing == dir {
        format!("{shown} exists and is not a directory")
    } else {
        format!(
            "{} is not a directory, so {shown} cannot be created",
            existing.display()
        )
    })
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
            assert!(matches!(
                read_regular(&fifo, 10),
                Err(RegularFileError::NotRegular)
            ));
        }
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 10),
            Err(RegularFileError::NotRegular)
        ));
        assert!(matches!(
            read_regular(dir.path(), 10),
            Err(RegularFileError::NotRegular) | Err(RegularFileError::Io(_))
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, "0123456789x").unwrap();
        assert!(matches!(
            read_regular(&file, 10),
            Err(RegularFileError::TooLarge(10))
        ));
        assert_eq!(read_regular(&file, 11).unwrap(), b"0123456789x");
    }
}
