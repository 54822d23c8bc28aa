//! Instructions per record behind `taskbench run --instructions`: the run
//! again as a child process under valgrind's callgrind, counting only the
//! data path.
//!
//! Callgrind runs one thread at a time, so a waiting task that spins would
//! add instructions that depend on scheduling. Collection is therefore off
//! at the start and toggled by two functions: it switches on entering a
//! task's loop (`StreamTask::invoke`, which with the data path inlined into
//! it holds the source, the operators, the serializer, the writers and the
//! readers) and off again inside it while the task waits
//! (`MailboxProcessor::wait`, where the spinning, yielding and parking
//! happen). Set-up, deployment, the memory pools and the harness count
//! nothing. Measured on this machine: quickstart's 5 M records, 104.2 M
//! instructions, two runs 26 instructions apart in 20.8 M (1 M records).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::result::RunResult;

/// The functions that toggle counting (callgrind `--toggle-collect`).
pub const COUNTED: [&str; 2] = ["*StreamTask::invoke*", "*MailboxProcessor::wait*"];

/// Why instructions could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum InstructionsError {
    /// No valgrind to run.
    #[error("--instructions counts with valgrind's callgrind, and valgrind cannot be run ({0}); install it (apt-get install valgrind)")]
    NoValgrind(String),
    /// The child run failed.
    #[error("the run under callgrind failed: {0}")]
    Run(String),
    /// Callgrind ran but counted nothing: the toggling functions are not
    /// in this build.
    #[error("callgrind counted no instruction in {}: this build has no such functions (inlined away?)", COUNTED.join(", "))]
    NothingCounted,
}

impl InstructionsError {
    /// 2 when valgrind is missing (a usage matter), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            InstructionsError::NoValgrind(_) => 2,
            _ => 1,
        }
    }
}

/// One counted run: the instructions and the child's result.
pub struct Counted {
    /// Instructions counted on the data path.
    pub instructions: u64,
    /// The child's result (its times were measured under valgrind).
    pub result: RunResult,
}

/// Checks that valgrind runs.
pub fn check_valgrind() -> Result<(), InstructionsError> {
    match Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(InstructionsError::NoValgrind(format!(
            "valgrind --version: {s}"
        ))),
        Err(e) => Err(InstructionsError::NoValgrind(e.to_string())),
    }
}

/// Runs `exe run_args… --output FILE` under callgrind in a temporary
/// directory and reads the count and the result.
pub fn count(exe: &Path, run_args: &[OsString]) -> Result<Counted, InstructionsError> {
    let dir = tempfile::tempdir().map_err(|e| InstructionsError::Run(e.to_string()))?;
    let out_file: PathBuf = dir.path().join("callgrind.out");
    let result_file = dir.path().join("result.json");
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no");
    for f in COUNTED {
        cmd.arg(format!("--toggle-collect={f}"));
    }
    cmd.arg(exe)
        .args(run_args)
        .arg("--output")
        .arg(&result_file);
    // In a process group of its own: SIGINT or SIGTERM stops valgrind's
    // tool process too, and removes the directory.
    let out = crate::child::run(&mut cmd, None, Some(dir.path().to_path_buf()))
        .map_err(|e| InstructionsError::NoValgrind(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(InstructionsError::Run(format!(
            "{}: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )));
    }
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| InstructionsError::Run(format!("no callgrind output: {e}")))?;
    let instructions = totals(&text)
        .ok_or_else(|| InstructionsError::Run("callgrind's output has no totals".into()))?;
    if instructions == 0 {
        return Err(InstructionsError::NothingCounted);
    }
    let json = std::fs::read_to_string(&result_file)
        .map_err(|e| InstructionsError::Run(format!("no result: {e}")))?;
    let result = serde_json::from_str(&json)
        .map_err(|e| InstructionsError::Run(format!("the result does not parse: {e}")))?;
    Ok(Counted {
        instructions,
        result,
    })
}

/// The instructions collected, from callgrind's `totals:` (or `summary:`)
/// line.
fn totals(callgrind_out: &str) -> Option<u64> {
    let line = |key: &str| {
        callgrind_out
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    line("totals:").or_else(|| line("summary:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_off_callgrind_output() {
        let out = "version: 1\ncreator: callgrind-3.22.0\nevents: Ir\nsummary: 20845402\n\nfn=(1)\n12 3\ntotals: 20845428\n";
        assert_eq!(totals(out), Some(20_845_428));
        assert_eq!(totals("events: Ir\nsummary: 7\n"), Some(7));
        assert_eq!(totals("events: Ir\n"), None);
    }
}
