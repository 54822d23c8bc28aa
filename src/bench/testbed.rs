//! The testbed a result was measured on: CPU, cores, VM or not, kernel,
//! build and revision, so two results can be told apart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where and with what a result was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Git revision of the build, taken when it was built (`-dirty` when
    /// tracked files had changes), if known.
    pub git_revision: Option<String>,
    /// When the measurement started (RFC 3339, UTC).
    pub date: String,
}

impl Testbed {
    /// Reads the testbed of this process.
    pub fn detect(task_threads: usize, pinning: String) -> Self {
        use sysinfo::{CpuRefreshKind, RefreshKind, System};
        let system =
            System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
        let cpu_model = system
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let cores_available = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        Testbed {
            cpu_model,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cores_available,
            task_threads,
            pinning,
            virtualized: hypervisor(),
            kernel: format!(
                "{} {}",
                std::env::consts::OS,
                System::kernel_version().unwrap_or_default()
            )
            .trim()
            .to_string(),
            hostname: System::host_name().unwrap_or_default(),
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

/// Whether the CPU says it runs under a hypervisor (its `hypervisor`
/// flag; sysinfo does not tell).
fn hypervisor() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| l.split_whitespace().any(|f| f == "hypervisor"))
    })
}

/// The revision of the tree this binary was built from, taken by
/// `build.rs` at build time (`None` when it was built without git).
fn git_revision() -> Option<String> {
    Some(env!("TASKBENCH_GIT_REVISION"))
        .filter(|r| *r != "unknown")
        .map(str::to_string)
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
