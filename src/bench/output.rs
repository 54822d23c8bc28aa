//! Output files, kept safe (DESIGN invariant 6): a path is checked before
//! the first job runs, and every write goes to a temporary file beside the
//! target, is synced, then renamed over it. A crash or a full disk leaves
//! the previous complete version; a directory, FIFO or device is never
//! replaced.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why an output path cannot be used, or a write failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path cannot take a result (found before anything runs: bad
    /// input, exit 2).
    #[error("{path}: {problem}")]
    Unusable {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Writing failed (the previous version is untouched: exit 1).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path as given.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

/// A checked output path: a regular file or nothing yet, in a directory
/// this process can create files in.
#[derive(Clone, Debug)]
pub struct OutputFile {
    /// The path as given (for messages).
    given: PathBuf,
    /// Where the file is written: the given path with symbolic links
    /// followed, so a link keeps pointing at the result.
    target: PathBuf,
    /// The target's directory, where temporary files go.
    dir: PathBuf,
}

/// What kind of file `meta` is, for a message refusing it.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Whether `path` can only name a directory: it ends in a separator, `.`
/// or `..` (`Path` would quietly drop a trailing `/` or `.`, and the
/// rename would fail only after the run).
fn names_a_directory(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
    matches!(last, b"" | b"." | b"..")
}

impl OutputFile {
    /// Checks that `path` can take a result, before anything runs: it is
    /// a regular file or does not exist, and its directory (created if
    /// missing) takes a new file, which is tried.
    pub fn check(path: &Path) -> Result<Self, OutputError> {
        let unusable = |problem: String| OutputError::Unusable {
            path: path.display().to_string(),
            problem,
        };
        if path.as_os_str().is_empty() {
            return Err(unusable("is empty; give a file path".into()));
        }
        if names_a_directory(path) {
            return Err(unusable(
                "names a directory (it ends in '/', '.' or '..'); results go to regular files only: give a file path".into(),
            ));
        }
        let target = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)
                .map_err(|e| unusable(format!("is a link that cannot be followed: {e}")))?,
            Ok(_) => path.to_path_buf(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(unusable(format!(
                    "a part of the path is not a directory ({e})"
                )))
            }
            Err(e) => return Err(unusable(e.to_string())),
        };
        match std::fs::metadata(&target) {
            Ok(meta) if !meta.is_file() => {
                return Err(unusable(format!(
                    "is {}; results go to regular files only: give a file path (or - for stdout)",
                    kind_of(&meta)
                )))
            }
            Ok(meta) if meta.permissions().readonly() => {
                return Err(unusable("is read-only".into()))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(unusable(e.to_string())),
        }
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        match std::fs::metadata(&dir) {
            Ok(meta) if !meta.is_dir() => {
                return Err(unusable(format!("{} is not a directory", dir.display())))
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(&dir).map_err(|e| {
                unusable(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?,
        }
        // The write makes a temporary file there and renames it: try it.
        tempfile::Builder::new()
            .prefix(".taskbench-probe-")
            .tempfile_in(&dir)
            .map_err(|e| {
                unusable(format!(
                    "its directory {} does not take new files ({e}); results are written beside the target and renamed over it",
                    dir.display()
                ))
            })?;
        Ok(OutputFile {
            given: path.to_path_buf(),
            target,
            dir,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.given
    }

    /// Replaces the file with `text`, whole.
    pub fn write(&self, text: &[u8]) -> Result<(), OutputError> {
        self.write_with(|out| out.write_all(text))
    }

    /// Replaces the file with what `fill` writes: into a temporary file
    /// beside it, synced, then renamed over it. On any error the temporary
    /// file is removed and the previous version stays.
    pub fn write_with(
        &self,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), OutputError> {
        let failed = |source: io::Error| OutputError::Write {
            path: self.given.display().to_string(),
            source,
        };
        // Made since the check? Still never replaced.
        let previous = match std::fs::metadata(&self.target) {
            Ok(meta) if !meta.is_file() => {
                return Err(failed(io::Error::other(format!(
                    "it is now {}, which is not replaced",
                    kind_of(&meta)
                ))))
            }
            Ok(meta) => Some(meta.permissions()),
            Err(_) => None,
        };
        let name = self
            .target
            .file_name()
            .map_or_else(|| "result".into(), |n| n.to_string_lossy().into_owned());
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .permissions(previous.unwrap_or_else(|| Permissions::from_mode(0o644)))
            .tempfile_in(&self.dir)
            .map_err(failed)?;
        let mut out = BufWriter::new(temp);
        fill(&mut out).map_err(failed)?;
        let temp = out.into_inner().map_err(|e| failed(e.into_error()))?;
        temp.as_file().sync_all().map_err(failed)?;
        temp.persist(&self.target).map_err(|e| failed(e.error))?;
        // The rename itself is durable once the directory is synced.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// When a growing result is rewritten: after a repetition only once the
/// time measured since the last write is [`Throttle::RATIO`] times what
/// that write took, so rewriting costs at most a fifth of the time spent
/// measuring however many repetitions a run has, and a crash loses at
/// most that much measuring; the last write is always made. (3000
/// repetitions of map-sink at 1000 records: 13 s when the whole file was
/// rewritten after each, 1.1 to 1.6 s now, 0.9 s with no file.)
#[derive(Debug)]
pub struct Throttle {
    last_cost: Duration,
    since: Instant,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            last_cost: Duration::ZERO,
            since: Instant::now(),
        }
    }
}

impl Throttle {
    /// Measuring time per unit of writing time.
    pub const RATIO: u32 = 4;

    /// Whether a write is due now.
    pub fn due(&self) -> bool {
        self.since.elapsed() >= self.last_cost * Self::RATIO
    }

    /// Runs `write`, timing it.
    pub fn time<T>(&mut self, write: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = write();
        self.last_cost = started.elapsed();
        self.since = Instant::now();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_file_whole_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/result.json");
        let out = OutputFile::check(&path).unwrap();
        out.write(b"first").unwrap();
        out.write(b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("result.json")]);
        // A failed write keeps the previous version.
        let err = out
            .write_with(|w| {
                w.write_all(b"half")?;
                Err(io::Error::other("disk full"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn only_regular_files_or_nothing_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::check(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = OutputFile::check(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a device"), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = OutputFile::check(&file.join("below"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
        // A path that can only name a directory, existing or not.
        for dir_like in ["new/", "new/.", "new/..", "/", "..", "new//"] {
            let err = OutputFile::check(&dir.path().join(dir_like))
                .unwrap_err()
                .to_string();
            assert!(err.contains("names a directory"), "{dir_like}: {err}");
        }
        // A link is followed, and stays a link.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        OutputFile::check(&link).unwrap().write(b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
    }

    #[test]
    fn the_throttle_waits_as_long_as_the_last_write_took() {
        let mut t = Throttle::default();
        assert!(t.due(), "the first write is due at once");
        assert_eq!(t.time(|| 7), 7);
        t.last_cost = Duration::from_secs(3600);
        assert!(
            !t.due(),
            "not before four hours have passed since an hour-long write"
        );
    }
}
