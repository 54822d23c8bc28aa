//! Where completed checkpoints live (Flink's `CheckpointStorage`): in memory
//! (the default, as Flink's `JobManagerCheckpointStorage`) or in a
//! directory, one file per task per checkpoint and a `_metadata` file
//! written last (Flink's `FileSystemCheckpointStorage`): a checkpoint
//! directory without `_metadata` is never restored.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::snapshot::{StateError, TaskKey, TaskSnapshot};
use crate::files::RegularFileError;

/// A checkpoint every task acknowledged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Every task's snapshot.
    pub tasks: BTreeMap<TaskKey, TaskSnapshot>,
}

/// What storing one task's snapshot wrote: the checkpoint's `_metadata`
/// records it, so completing a checkpoint never encodes a snapshot again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredTask {
    /// Bytes stored (`checkpointedSize`).
    pub bytes: u64,
    /// CRC-32 of the task file's content, without the CRC-32 it ends with
    /// (0 in memory storage, which has no file).
    pub crc32: u32,
}

impl StoredTask {
    /// Memory storage's record of `snapshot`: its size, no file.
    pub fn in_memory(snapshot: &TaskSnapshot) -> Self {
        Self {
            bytes: snapshot.state_size(),
            crc32: 0,
        }
    }
}

/// Why storing or loading a checkpoint failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A task file is not a valid snapshot.
    #[error("{path}: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: StateError,
    },
    /// A task file's length is not the one `_metadata` records.
    #[error("{path}: {actual} bytes, the checkpoint's _metadata says {recorded}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Its length.
        actual: u64,
        /// The length recorded.
        recorded: u64,
    },
    /// `_metadata` is not valid.
    #[error("{path}: not a valid checkpoint metadata file: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    checkpoint_id: u64,
    tasks: Vec<MetadataTask>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetadataTask {
    vertex: u32,
    subtask: u32,
    file: String,
    bytes: u64,
    crc32: u32,
}

/// Memory or a directory.
#[derive(Debug)]
pub enum CheckpointStorage {
    /// The latest completed checkpoint, kept in memory.
    Memory(Mutex<Option<CompletedCheckpoint>>),
    /// `chk-N/` subdirectories of this directory.
    Directory(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl CheckpointStorage {
    /// In memory.
    pub fn memory() -> Self {
        CheckpointStorage::Memory(Mutex::new(None))
    }

    /// Under `dir` (created if missing).
    pub fn directory(dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(CheckpointStorage::Directory(dir))
    }

    fn checkpoint_dir(root: &Path, id: u64) -> PathBuf {
        root.join(format!("chk-{id}"))
    }

    /// The async part of one task's acknowledgement: writes its file and
    /// fsyncs it (directory storage); returns what it wrote.
    pub fn write_task(&self, snapshot: &TaskSnapshot) -> Result<StoredTask, StorageError> {
        match self {
            CheckpointStorage::Memory(_) => Ok(StoredTask::in_memory(snapshot)),
            CheckpointStorage::Directory(root) => {
                let dir = Self::checkpoint_dir(root, snapshot.checkpoint_id);
                create_real_dir(&dir)?;
                let path = dir.join(format!("{}.bin", snapshot.task));
                let bytes = snapshot.encode();
                write_synced(&path, &bytes)?;
                Ok(StoredTask {
                    bytes: bytes.len() as u64,
                    crc32: content_crc(&bytes),
                })
            }
        }
    }

    /// Completes checkpoint `checkpoint.id`: in a directory, writes
    /// `_metadata` last (through a temporary file, fsync'd and renamed)
    /// from what [`write_task`](Self::write_task) returned for each task
    /// (`stored`), then drops older checkpoints; in memory, keeps it.
    ///
    /// # Errors
    ///
    /// The file system's, naming the file; a task in `checkpoint` that
    /// `stored` lacks is a metadata error naming the task.
    pub fn complete(
        &self,
        checkpoint: CompletedCheckpoint,
        stored: &BTreeMap<TaskKey, StoredTask>,
    ) -> Result<(), StorageError> {
        match self {
            CheckpointStorage::Memory(slot) => {
                *slot.lock().expect("storage lock") = Some(checkpoint);
                Ok(())
            }
            CheckpointStorage::Directory(root) => {
                let dir = Self::checkpoint_dir(root, checkpoint.id);
                let tmp = dir.join("_metadata.inprogress");
                let tasks = checkpoint.tasks.keys().map(|&task| {
                    let file = stored.get(&task).ok_or_else(|| StorageError::Metadata {
                        path: tmp.clone(),
                        reason: format!("{task} acknowledged without a stored file"),
                    })?;
                    Ok(MetadataTask {
                        vertex: task.vertex,
                        subtask: task.subtask,
                        file: format!("{task}.bin"),
                        bytes: file.bytes,
                        crc32: file.crc32,
                    })
                });
                let metadata = Metadata {
                    checkpoint_id: checkpoint.id,
                    tasks: tasks.collect::<Result<_, StorageError>>()?,
                };
                let json = serde_json::to_vec_pretty(&metadata).expect("metadata serializes");
                write_synced(&tmp, &json)?;
                let path = dir.join("_metadata");
                fs::rename(&tmp, &path).map_err(io(&path))?;
                fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(&dir))?;
                self.discard_before(checkpoint.id);
                Ok(())
            }
        }
    }

    /// Removes what an aborted checkpoint left (directory storage).
    pub fn discard(&self, id: u64) {
        if let CheckpointStorage::Directory(root) = self {
            let _ = fs::remove_dir_all(Self::checkpoint_dir(root, id));
        }
    }

    /// Removes checkpoints older than `id` (Flink retains one by default).
    fn discard_before(&self, id: u64) {
        if let CheckpointStorage::Directory(root) = self {
            for (old, path) in checkpoint_dirs(root) {
                if old < id {
                    let _ = fs::remove_dir_all(path);
                }
            }
        }
    }

    /// The latest complete checkpoint: in a directory, the highest `chk-N`
    /// with a `_metadata`, every task file checked against it.
    pub fn latest(&self) -> Result<Option<CompletedCheckpoint>, StorageError> {
        match self {
            CheckpointStorage::Memory(slot) => Ok(slot.lock().expect("storage lock").clone()),
            CheckpointStorage::Directory(root) => {
                let mut dirs = checkpoint_dirs(root);
                dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
                for (id, dir) in dirs {
                    let path = dir.join("_metadata");
                    if !path.is_file() {
                        continue; // partial: never restored
                    }
                    return load(id, &dir, &path).map(Some);
                }
                Ok(None)
            }
        }
    }
}

fn checkpoint_dirs(root: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
            e.file_type().ok()?.is_dir().then(|| (id, e.path()))
        })
        .collect()
}

/// The most `_metadata` a checkpoint may have (a task's entry is ~100 B).
const MAX_METADATA_BYTES: u64 = 64 << 20;

/// Reads `path` if it is a regular file of at most `max` bytes (a FIFO or
/// device in a checkpoint directory is refused, never waited on or read
/// without end).
fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, StorageError> {
    crate::files::read_regular(path, max).map_err(|e| StorageError::Io {
        path: path.to_path_buf(),
        source: match e {
            RegularFileError::Io(source) => source,
            other => std::io::Error::other(other.to_string()),
        },
    })
}

fn load(id: u64, dir: &Path, path: &Path) -> Result<CompletedCheckpoint, StorageError> {
    let json = read_file(path, MAX_METADATA_BYTES)?;
    let bad = |reason: String| StorageError::Metadata {
        path: path.to_path_buf(),
        reason,
    };
    let metadata: Metadata = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    if metadata.checkpoint_id != id {
        return Err(bad(format!(
            "names checkpoint {} in chk-{id}",
            metadata.checkpoint_id
        )));
    }
    let mut tasks = BTreeMap::new();
    for t in &metadata.tasks {
        if t.file.contains(['/', '\\']) || t.file.starts_with('.') {
            return Err(bad(format!("task file name {:?} is not plain", t.file)));
        }
        let file = dir.join(&t.file);
        // One byte past the record tells a longer file from a whole one.
        let bytes = read_file(&file, t.bytes.saturating_add(1))?;
        if bytes.len() as u64 != t.bytes {
            return Err(StorageError::Length {
                path: file,
                actual: bytes.len() as u64,
                recorded: t.bytes,
            });
        }
        let computed = content_crc(&bytes);
        if computed != t.crc32 {
            return Err(StorageError::Corrupt {
                path: file,
                source: StateError::Checksum {
                    stored: t.crc32,
                    computed,
                },
            });
        }
        let snapshot = TaskSnapshot::decode(&bytes).map_err(|source| StorageError::Corrupt {
            path: file.clone(),
            source,
        })?;
        let key = TaskKey {
            vertex: t.vertex,
            subtask: t.subtask,
        };
        if snapshot.task != key || snapshot.checkpoint_id != id {
            return Err(StorageError::Corrupt {
                path: file,
                source: StateError::Mismatch(format!(
                    "holds {} of checkpoint {}, the metadata says {key} of {id}",
                    snapshot.task, snapshot.checkpoint_id
                )),
            });
        }
        tasks.insert(key, snapshot);
    }
    Ok(CompletedCheckpoint { id, tasks })
}

/// CRC-32 of a task file's content: all but the CRC-32 it ends with (a
/// CRC over data followed by its own CRC is the same constant for every
/// file, so it would bind `_metadata` to nothing).
fn content_crc(file: &[u8]) -> u32 {
    crc32fast::hash(&file[..file.len().saturating_sub(4)])
}

/// Creates checkpoint directory `dir` unless it is one already; anything
/// else there (a symbolic link to a directory elsewhere, a file) is
/// refused, so files are only ever written inside the run's own tree.
fn create_real_dir(dir: &Path) -> Result<(), StorageError> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(dir)(e)),
        _ => {}
    }
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io(dir)(std::io::Error::other("not a directory of its own"))),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Writes `bytes` as a new file at `path` and fsyncs it. Whatever the
/// name held is unlinked first, never opened: a FIFO there would block
/// the writer for good and a symbolic link would write over its target.
/// The file is then created exclusively (`O_EXCL`), so a name taken again
/// in between is an error naming the file rather than a file written
/// through.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(path)(e)),
        _ => {}
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(id: u64) -> CompletedCheckpoint {
        let mut tasks = BTreeMap::new();
        for subtask in 0..2 {
            let task = TaskKey { vertex: 0, subtask };
            tasks.insert(
                task,
                TaskSnapshot {
                    checkpoint_id: id,
                    task,
                    operator_state: vec![subtask as u8; 8],
                    channel_state: Vec::new(),
                },
            );
        }
        CompletedCheckpoint { id, tasks }
    }

    fn store(storage: &CheckpointStorage, c: &CompletedCheckpoint) {
        let stored = c
            .tasks
            .values()
            .map(|s| (s.task, storage.write_task(s).unwrap()))
            .collect();
        storage.complete(c.clone(), &stored).unwrap();
    }

    #[test]
    fn a_partial_checkpoint_is_skipped_for_the_last_complete_one() {
        let dir = tempfile::tempdir().unwrap();
        let storage = CheckpointStorage::directory(dir.path()).unwrap();
        assert!(storage.latest().unwrap().is_none());
        store(&storage, &checkpoint(1));
        // Checkpoint 2's task files are written, its `_metadata` never is.
        for s in checkpoint(2).tasks.values() {
            storage.write_task(s).unwrap();
        }
        assert_eq!(storage.latest().unwrap(), Some(checkpoint(1)));
        // Completing 3 drops 1 (and the partial 2).
        store(&storage, &checkpoint(3));
        assert_eq!(storage.latest().unwrap(), Some(checkpoint(3)));
        assert!(!dir.path().join("chk-1").exists());
        assert!(!dir.path().join("chk-2").exists());
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = CheckpointStorage::directory(dir.path()).unwrap();
        store(&storage, &checkpoint(4));
        let task = dir.path().join("chk-4/task-0-1.bin");
        let mut bytes = fs::read(&task).unwrap();
        bytes[10] ^= 1;
        fs::write(&task, &bytes).unwrap();
        let e = storage.latest().unwrap_err().to_string();
        assert!(
            e.contains("chk-4/task-0-1.bin") && e.contains("checksum"),
            "{e}"
        );
        // Truncated, or longer: the lengths, not a checksum.
        let whole = bytes.len();
        for len in [whole - 3, whole + 1, whole + 100] {
            bytes.resize(len, 0);
            fs::write(&task, &bytes).unwrap();
            let e = storage.latest().unwrap_err().to_string();
            assert!(e.contains("chk-4/task-0-1.bin"), "{e}");
            assert!(
                e.contains(&format!("says {whole}")) || e.contains("larger than"),
                "{e}"
            );
        }
        // A FIFO where a task file was: refused, not waited on.
        fs::remove_file(&task).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&task).status();
        if made.is_ok_and(|s| s.success()) {
            let e = storage.latest().unwrap_err().to_string();
            assert!(
                e.contains("chk-4/task-0-1.bin") && e.contains("not a regular file"),
                "{e}"
            );
        }
        let metadata = dir.path().join("chk-4/_metadata");
        fs::write(&metadata, b"{ not json").unwrap();
        let e = storage.latest().unwrap_err().to_string();
        assert!(
            e.contains("chk-4/_metadata") && e.contains("not a valid"),
            "{e}"
        );
    }

    #[test]
    fn files_are_written_new_never_through_what_stood_at_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let storage = CheckpointStorage::directory(dir.path().join("run")).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let chk = dir.path().join("run/chk-5");
        fs::create_dir(&chk).unwrap();
        // A FIFO at one task's name (opening it would wait for a reader
        // for good), a link to another file at the other's and at
        // `_metadata.inprogress`.
        let made = std::process::Command::new("mkfifo")
            .arg(chk.join("task-0-0.bin"))
            .status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::os::unix::fs::symlink(&victim, chk.join("task-0-1.bin")).unwrap();
        std::os::unix::fs::symlink(&victim, chk.join("_metadata.inprogress")).unwrap();
        store(&storage, &checkpoint(5));
        assert_eq!(storage.latest().unwrap(), Some(checkpoint(5)));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        for name in ["task-0-0.bin", "task-0-1.bin", "_metadata"] {
            let m = fs::symlink_metadata(chk.join(name)).unwrap();
            assert!(m.is_file(), "{name}: {m:?}");
        }
        // A checkpoint directory that is a link elsewhere: refused, naming it.
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("run/chk-6")).unwrap();
        let e = storage.write_task(
            &checkpoint(6).tasks[&TaskKey {
                vertex: 0,
                subtask: 0,
            }],
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("chk-6") && e.contains("not a directory of its own"),
            "{e}"
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn metadata_comes_from_what_was_stored_and_names_a_task_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = CheckpointStorage::directory(dir.path()).unwrap();
        let c = checkpoint(6);
        let mut stored: BTreeMap<_, _> = c
            .tasks
            .values()
            .map(|s| (s.task, storage.write_task(s).unwrap()))
            .collect();
        let missing = TaskKey {
            vertex: 0,
            subtask: 1,
        };
        let file = stored.remove(&missing).unwrap();
        let e = storage
            .complete(c.clone(), &stored)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&missing.to_string()), "{e}");
        assert!(storage.latest().unwrap().is_none(), "no _metadata written");
        stored.insert(missing, file);
        storage.complete(c.clone(), &stored).unwrap();
        assert_eq!(storage.latest().unwrap(), Some(c));
        // Each file's own checksum, not the constant a CRC over a file
        // ending in its CRC would give.
        let metadata: Metadata =
            serde_json::from_slice(&fs::read(dir.path().join("chk-6/_metadata")).unwrap()).unwrap();
        let crcs: Vec<u32> = metadata.tasks.iter().map(|t| t.crc32).collect();
        assert_eq!(crcs.len(), 2);
        assert_ne!(crcs[0], crcs[1]);
    }

    #[test]
    fn memory_storage_keeps_the_latest() {
        let storage = CheckpointStorage::memory();
        store(&storage, &checkpoint(1));
        store(&storage, &checkpoint(2));
        assert_eq!(storage.latest().unwrap().unwrap().id, 2);
    }
}
