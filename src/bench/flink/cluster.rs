//! Flink clusters started here, each a set of JVMs that end with the value:
//! the MiniCluster of a local run (one JVM: JobManager and one TaskManager,
//! REST on a free loopback port), and a standalone session cluster on
//! loopback (a JobManager and a TaskManager JVM from `flink-dist`'s entry
//! points, as `bin/start-cluster.sh` starts them), which `tests/flink.rs`
//! drives through `--cluster`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::install::Installation;
use super::rest::RestClient;
use super::FlinkError;

/// How long a cluster may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a JVM asked to stop may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `metrics.fetcher.update-interval` lets the REST API refresh
/// running tasks' metrics (Flink's default, 10 s, misses short jobs).
pub const METRICS_INTERVAL_MS: u64 = 1000;

/// JVMs of a cluster and the directory their logs and uploads go to.
#[derive(Debug)]
pub struct Cluster {
    /// The REST address, `http://127.0.0.1:PORT`.
    pub url: String,
    children: Vec<(String, Child, Option<ChildStdin>)>,
    dir: PathBuf,
    keep_dir: bool,
}

/// A directory for one cluster's logs, configuration and uploads.
fn cluster_dir(cache: &Path, kind: &str) -> Result<PathBuf, FlinkError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = cache
        .join("clusters")
        .join(format!("{kind}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(dir.join("upload"))
        .map_err(|e| FlinkError::Environment(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(15)
        .collect();
    let lines: Vec<&str> = lines.into_iter().rev().collect();
    format!(
        "{} (from {}):\n{}",
        "its last log lines",
        path.display(),
        lines.join("\n")
    )
}

fn log_file(dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File), FlinkError> {
    let path = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&path)
        .map_err(|e| FlinkError::Environment(format!("cannot create {}: {e}", path.display())))?;
    Ok((path, file))
}

fn spawn(command: &mut std::process::Command, what: &str) -> Result<Child, FlinkError> {
    command
        .spawn()
        .map_err(|e| FlinkError::Environment(format!("cannot start the {what} JVM: {e}")))
}

impl Cluster {
    /// Starts a MiniCluster: one TaskManager with `slots` slots, Flink
    /// configured with `options` (`key`, `value`).
    pub fn mini(
        install: &Installation,
        cache: &Path,
        slots: u32,
        options: &[(String, String)],
        jvm_options: &[String],
    ) -> Result<Self, FlinkError> {
        let dir = cluster_dir(cache, "minicluster")?;
        let (log, stderr) = log_file(&dir, "minicluster")?;
        let mut command = install.java_command(jvm_options, "TaskbenchJob")?;
        command
            .arg("minicluster")
            .arg(slots.max(1).to_string())
            .arg(format!("web.upload.dir={}", dir.join("upload").display()))
            .arg(format!(
                "metrics.fetcher.update-interval={METRICS_INTERVAL_MS}"
            ))
            .args(options.iter().map(|(k, v)| format!("{k}={v}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = spawn(&mut command, "MiniCluster")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut cluster = Cluster {
            url: String::new(),
            children: vec![("MiniCluster".into(), child, stdin)],
            dir,
            keep_dir: false,
        };
        // The JVM prints its REST address once the cluster runs.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("taskbench-minicluster ") {
                        let _ = tx.send(url.trim().trim_end_matches('/').to_string());
                    }
                }
            }
        });
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(url) => {
                    cluster.url = url;
                    return Ok(cluster);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < START_TIMEOUT => {
                    if let Some(status) = cluster.exited() {
                        cluster.keep_dir = true;
                        return Err(FlinkError::Cluster(format!(
                            "the MiniCluster JVM ended ({status}) before it ran; {}",
                            tail(&log)
                        )));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Its stdout closed with no address printed: the JVM
                    // ended (a bad --jvm-opts option ends it at once).
                    cluster.keep_dir = true;
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let status = loop {
                        match cluster.exited() {
                            Some(status) => break status,
                            None if Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(20))
                            }
                            None => break "its output closed".to_string(),
                        }
                    };
                    return Err(FlinkError::Cluster(format!(
                        "the MiniCluster JVM ended ({status}) before it ran; {}",
                        tail(&log)
                    )));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    cluster.keep_dir = true;
                    return Err(FlinkError::Cluster(format!(
                        "the MiniCluster did not come up within {}s; {}",
                        START_TIMEOUT.as_secs(),
                        tail(&log)
                    )));
                }
            }
        }
    }

    /// Starts a standalone session cluster on loopback: a JobManager and one
    /// TaskManager with `slots` slots, Flink configured with `options`.
    pub fn standalone(
        install: &Installation,
        cache: &Path,
        slots: u32,
        options: &[(String, String)],
    ) -> Result<Self, FlinkError> {
        let dir = cluster_dir(cache, "standalone")?;
        let (rpc_port, rest_port) = (free_port()?, free_port()?);
        // The TaskManager's resources spelled out, as `bin/taskmanager.sh`
        // derives them (its JVM gets -Xmx and direct memory to match).
        let mut config = vec![
            ("jobmanager.rpc.address", "127.0.0.1".to_string()),
            ("jobmanager.rpc.port", rpc_port.to_string()),
            ("jobmanager.bind-host", "127.0.0.1".into()),
            ("jobmanager.memory.process.size", "1024m".into()),
            ("taskmanager.bind-host", "127.0.0.1".into()),
            ("taskmanager.host", "127.0.0.1".into()),
            ("taskmanager.numberOfTaskSlots", slots.max(1).to_string()),
            ("taskmanager.cpu.cores", slots.max(1).to_string()),
            ("taskmanager.memory.framework.heap.size", "128m".into()),
            ("taskmanager.memory.task.heap.size", "384m".into()),
            ("taskmanager.memory.framework.off-heap.size", "128m".into()),
            ("taskmanager.memory.task.off-heap.size", "0m".into()),
            ("taskmanager.memory.network.min", "64m".into()),
            ("taskmanager.memory.network.max", "64m".into()),
            ("taskmanager.memory.managed.size", "64m".into()),
            ("taskmanager.memory.jvm-metaspace.size", "256m".into()),
            ("taskmanager.memory.jvm-overhead.min", "192m".into()),
            ("taskmanager.memory.jvm-overhead.max", "192m".into()),
            ("rest.address", "127.0.0.1".into()),
            ("rest.bind-address", "127.0.0.1".into()),
            ("rest.port", rest_port.to_string()),
            ("restart-strategy.type", "none".into()),
            ("web.upload.dir", dir.join("upload").display().to_string()),
            (
                "metrics.fetcher.update-interval",
                METRICS_INTERVAL_MS.to_string(),
            ),
        ];
        for (key, value) in options {
            // A key given twice would be a YAML error: the caller's wins.
            config.retain(|(k, _)| k != key);
            config.push((key.as_str(), value.clone()));
        }
        let conf = dir.join("conf");
        let yaml: String = config.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        std::fs::create_dir_all(&conf)
            .and_then(|()| std::fs::write(conf.join("config.yaml"), yaml))
            .map_err(|e| {
                FlinkError::Environment(format!("cannot write {}: {e}", conf.display()))
            })?;
        let mut cluster = Cluster {
            url: format!("http://127.0.0.1:{rest_port}"),
            children: Vec::new(),
            dir: dir.clone(),
            keep_dir: false,
        };
        for (name, main, heap) in [
            (
                "jobmanager",
                "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                "-Xmx512m",
            ),
            (
                "taskmanager",
                "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                "-Xmx512m -XX:MaxDirectMemorySize=192m",
            ),
        ] {
            let (_, stderr) = log_file(&dir, name)?;
            let jvm: Vec<String> = heap.split(' ').map(str::to_string).collect();
            let mut command = install.java_command(&jvm, main)?;
            command
                .arg("--configDir")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(stderr);
            let child = spawn(&mut command, name)?;
            cluster.children.push((name.to_string(), child, None));
        }
        // Up once the TaskManager has registered its slots.
        let rest = RestClient::new(&cluster.url);
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = cluster.exited() {
                cluster.keep_dir = true;
                return Err(FlinkError::Cluster(format!(
                    "a standalone cluster JVM ended ({status}) while starting; logs in {}",
                    dir.display()
                )));
            }
            let total = rest
                .get("/overview")
                .ok()
                .and_then(|o| o.get("slots-total").and_then(serde_json::Value::as_u64));
            if total.is_some_and(|t| t >= u64::from(slots.max(1))) {
                return Ok(cluster);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        cluster.keep_dir = true;
        Err(FlinkError::Cluster(format!(
            "the standalone cluster did not offer {slots} slots within {}s; logs in {}",
            START_TIMEOUT.as_secs(),
            dir.display()
        )))
    }

    /// How a JVM of the cluster ended, if one did.
    fn exited(&mut self) -> Option<String> {
        self.children.iter_mut().find_map(|(name, child, _)| {
            child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| format!("{name}: {status}"))
        })
    }

    /// Where its logs are (kept when the cluster failed).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    /// Asks each JVM to stop (a MiniCluster ends when its standard input
    /// closes), then kills what is left after [`STOP_TIMEOUT`].
    fn drop(&mut self) {
        for (_, child, stdin) in &mut self.children {
            if let Some(mut input) = stdin.take() {
                let _ = input.flush();
            } else {
                let _ = child.kill();
            }
        }
        let started = Instant::now();
        for (_, child, _) in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && started.elapsed() < STOP_TIMEOUT {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A TCP port free on loopback right now.
fn free_port() -> Result<u16, FlinkError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| FlinkError::Environment(format!("no free loopback port: {e}")))
}
