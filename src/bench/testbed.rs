//! The testbed a result was measured on: CPU, cores, VM or not, kernel,
//! build and revision, so two results can be told apart.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Where and with what a result was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Testbed {
    /// CPU model name.
    pub cpu_model: String,
    /// Logical cores of the machine.
    pub logical_cores: usize,
    /// Cores this process may run on (its affinity mask).
    pub cores_available: Vec<usize>,
    /// Task threads the job ran (compare with `cores_available`).
    pub task_threads: usize,
    /// How task threads were pinned (`spread`, `none`, or a core list).
    pub pinning: String,
    /// Whether the CPU reports running under a hypervisor.
    pub virtualized: bool,
    /// Operating system and kernel release.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// `release` or `debug`.
    pub build_profile: String,
    /// Git revision of the source tree (`-dirty` when it had changes), if known.
    pub git_revision: Option<String>,
    /// When the measurement started (RFC 3339, UTC).
    pub date: String,
}

impl Testbed {
    /// Reads the testbed of this process.
    pub fn detect(task_threads: usize, pinning: String) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let cores_available = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .ok()
        };
        Testbed {
            cpu_model: field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cores_available,
            task_threads,
            pinning,
            virtualized: field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor")),
            kernel: format!(
                "{} {}",
                std::env::consts::OS,
                read("/proc/sys/kernel/osrelease").unwrap_or_default()
            )
            .trim()
            .to_string(),
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
            git_revision: git_revision(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}

/// The revision of the tree this binary was built from, when the tree is
/// still there.
fn git_revision() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).filter(|r| !r.is_empty())?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{revision}-dirty")
    } else {
        revision
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let t = Testbed::detect(3, "spread".into());
        assert!(t.logical_cores >= 1);
        assert!(!t.cores_available.is_empty());
        assert_eq!(t.task_threads, 3);
        assert!(!t.cpu_model.is_empty());
        // RFC 3339: 2026-11-23T10:00:00Z
        assert_eq!(t.date.len(), 20, "{}", t.date);
        assert!(t.date.ends_with('Z'));
    }
}
