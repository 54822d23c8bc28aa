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
/// component that exists and is not a directory. The path is walked as
/// creating it would walk it, so `new/../file/x` is refused for `file`
/// before `new` is made. What only trying tells (permissions, special file
/// systems) fails the run's first job with exit 2 (`checkpoint.dir`) or its
/// open (`history --db`).
pub fn directory_problem(dir: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, PathBuf};
    let shown = dir.display();
    if dir.as_os_str().as_bytes().contains(&0) {
        return Some(format!("{shown:?} contains a NUL byte"));
    }
    let parts: Vec<Component> = dir.components().collect();
    // `at` is the path as the OS will resolve it, less the `..`s that undo
    // directories still to be made; `typed` is the path as given, for
    // messages; the last `to_make` components of `at` do not exist yet.
    let (mut at, mut typed, mut to_make) = (PathBuf::new(), PathBuf::new(), 0usize);
    for (i, part) in parts.iter().enumerate() {
        typed.push(part);
        match part {
            Component::CurDir => continue,
            Component::ParentDir if to_make > 0 => {
                at.pop();
                to_make -= 1;
                continue;
            }
            _ => at.push(part),
        }
        if to_make > 0 {
            to_make += 1;
            continue;
        }
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) if i + 1 == parts.len() => {
                return Some(format!("{shown} exists and is not a directory"))
            }
            Ok(_) => {
                return Some(format!(
                    "{} is not a directory, so {shown} cannot be created",
                    typed.display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if at.symlink_metadata().is_ok() {
                    let link = typed.display();
                    return Some(format!("{link} is a symbolic link to nothing"));
                }
                to_make = 1;
            }
            Err(_) => return None, // only creating it tells
        }
    }
    None
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

    #[test]
    fn a_directory_path_is_walked_as_creating_it_would_walk_it() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &str| dir.path().join(p);
        std::fs::write(at("file"), "").unwrap();
        std::os::unix::fs::symlink(at("nowhere"), at("dangling")).unwrap();
        std::fs::create_dir(at("sub")).unwrap();
        let problem = |p: &str| directory_problem(&at(p));
        for fine in [
            "sub",
            "sub/new/x",
            "new/../sub/x",
            "new/a/../../new2",
            "./new/.",
        ] {
            assert_eq!(problem(fine), None, "{fine}");
        }
        let says = |p: &str, what: &str| {
            let got = problem(p).unwrap_or_else(|| panic!("{p}: no problem found"));
            assert!(got.contains(what), "{p}: {got}");
        };
        says("file", "file exists and is not a directory");
        says("file/x", "file is not a directory, so");
        says("new/../file/x", "new/../file is not a directory, so");
        says("sub/../file/x", "sub/../file is not a directory, so");
        says("dangling/sub", "dangling is a symbolic link to nothing");
        says(
            "new/../dangling",
            "new/../dangling is a symbolic link to nothing",
        );
        assert!(problem("a\0b").unwrap().contains("NUL"));
        // Looking made nothing.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["dangling", "file", "sub"]);
    }
}
