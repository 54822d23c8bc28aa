//! Input files (profiles, results to compare): a regular file of bounded
//! size, or a clear refusal. The file is opened without blocking, since
//! opening a FIFO for reading waits for a writer that may never come, and
//! a device such as `/dev/zero` would be read forever.

use std::io;
use std::path::Path;

use super::units::Size;
use crate::files::RegularFileError;

/// The text of the regular file at `path`, refused when it is something
/// else or holds more than `max_bytes` (`what` names what it should be:
/// "a profile's .toml file").
pub fn read_regular(path: &Path, max_bytes: u64, what: &str) -> io::Result<String> {
    let bytes = crate::files::read_regular(path, max_bytes).map_err(|e| match e {
        RegularFileError::Io(e) => e,
        RegularFileError::NotRegular => {
            io::Error::other(format!("not a regular file; give {what}"))
        }
        RegularFileError::TooLarge(max) => {
            io::Error::other(format!("larger than {}; give {what}", Size(max)))
        }
    })?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_give_and_text_must_be_utf8() {
        let err = read_regular(Path::new("/dev/zero"), 10, "a profile").unwrap_err();
        assert!(
            err.to_string()
                .contains("not a regular file; give a profile"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "0123456789x").unwrap();
        let err = read_regular(&file, 10, "a profile").unwrap_err();
        assert!(
            err.to_string().contains("larger than 10B; give a profile"),
            "{err}"
        );
        assert_eq!(read_regular(&file, 11, "a profile").unwrap(), "0123456789x");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        let err = read_regular(&file, 11, "a profile").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
