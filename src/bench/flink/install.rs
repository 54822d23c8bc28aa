//! Flink and a JDK on this machine: PyPI's `apache-flink-libraries` wheel
//! (it ships `flink-dist`, which holds Flink's runtime, its DataStream API
//! and the entry points of a standalone cluster) installed into a cache
//! directory on first use, and taskbench's Java job compiled against it.
//!
//! Installs are atomic: pip and javac write into a directory of their own,
//! which is renamed into place when complete, so an interrupted install is
//! redone and two runs installing at once both end with one good copy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::FlinkError;

/// The Flink version `taskbench flink` uses unless `--flink-version` says otherwise.
pub const DEFAULT_FLINK_VERSION: &str = "2.3.0";

/// The Java job, built into the binary so `taskbench flink` works from any directory.
const JOB_SOURCES: [(&str, &str); 3] = [
    (
        "TaskbenchJob.java",
        include_str!("../../../flink/src/TaskbenchJob.java"),
    ),
    (
        "TaskbenchSource.java",
        include_str!("../../../flink/src/TaskbenchSource.java"),
    ),
    (
        "TaskbenchRecords.java",
        include_str!("../../../flink/src/TaskbenchRecords.java"),
    ),
];

/// The Debian package that brings `java`, `javac` and `jar`.
pub const JDK_PACKAGE: &str = "openjdk-17-jdk-headless";

/// Flink's own JVM options for Java 17 (`env.java.opts.all` in flink-dist's
/// `config.yaml`): Flink reflects into these JDK packages.
pub const FLINK_JAVA_OPTS: &[&str] = &[
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
];

/// Warnings and errors only, on standard error (which taskbench keeps in a log file).
const LOG_CONFIG: &str = "rootLogger.level = WARN
rootLogger.appenderRef.console.ref = Console
appender.console.name = Console
appender.console.type = CONSOLE
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c - %m%n
";

/// How long pip may take to bring the wheel (about 330 MB unpacked).
const PIP_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long `javac` and `jar` may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Where taskbench keeps what it installs: `$TASKBENCH_CACHE`, else
/// `$XDG_CACHE_HOME/taskbench`, else `~/.cache/taskbench`.
pub fn cache_dir() -> PathBuf {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env("TASKBENCH_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("taskbench");
    }
    match env("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("taskbench"),
        None => std::env::temp_dir().join("taskbench-cache"),
    }
}

/// A Flink installation with taskbench's job built against it.
#[derive(Clone, Debug)]
pub struct Installation {
    /// Flink's version.
    pub version: String,
    /// Flink's jars (`flink-dist`, log4j).
    pub lib: PathBuf,
    /// The `java` launcher.
    pub java: PathBuf,
    /// `java -version`'s first line.
    pub java_version: String,
    /// taskbench's job, compiled (`TaskbenchJob` is its entry class).
    pub job_jar: PathBuf,
    /// The log4j configuration JVMs started here use.
    pub log_config: PathBuf,
}

impl Installation {
    /// Finds a JDK, installs Flink `version` into `cache` unless it is
    /// there, and builds the job unless it is built. `status` hears what
    /// takes time.
    pub fn prepare(
        version: &str,
        cache: &Path,
        status: &mut dyn FnMut(&str),
    ) -> Result<Self, FlinkError> {
        if version.is_empty()
            || !version
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(FlinkError::Usage(format!(
                "--flink-version {version:?} is not a version: write it as apache-flink-libraries numbers it, e.g. {DEFAULT_FLINK_VERSION}"
            )));
        }
        let java = jdk_tool("java")?;
        let javac = jdk_tool("javac")?;
        let jar = jdk_tool("jar")?;
        let java_version = java_version(&java)?;
        let home = cache.join(format!("flink-{version}"));
        let lib = home.join("pyflink").join("lib");
        let dist = lib.join(format!("flink-dist-{version}.jar"));
        if !dist.is_file() {
            status(&format!(
                "installing apache-flink-libraries=={version} from PyPI into {}",
                home.display()
            ));
            pip_install(version, &home)?;
            if !dist.is_file() {
                return Err(FlinkError::Environment(format!(
                    "apache-flink-libraries=={version} installed, but {} is missing: this version does not ship flink-dist",
                    dist.display()
                )));
            }
        }
        let log_config = home.join("log4j2-taskbench.properties");
        if std::fs::read_to_string(&log_config).ok().as_deref() != Some(LOG_CONFIG) {
            write_into_place(&log_config, LOG_CONFIG)?;
        }
        let built = home.join(format!("job-{:016x}", job_hash(version)));
        let job_jar = built.join("taskbench-job.jar");
        if !job_jar.is_file() {
            status("compiling taskbench's Flink job (flink/src) with javac");
            build_job(&javac, &jar, &dist, &built)?;
        }
        Ok(Installation {
            version: version.to_string(),
            lib,
            java,
            java_version,
            job_jar,
            log_config,
        })
    }

    /// `flink-dist`, the log4j jars and the job: what a Flink JVM started
    /// here runs with.
    pub fn classpath(&self) -> Result<String, FlinkError> {
        let mut jars = vec![self.lib.join(format!("flink-dist-{}.jar", self.version))];
        let entries = std::fs::read_dir(&self.lib).map_err(|e| {
            FlinkError::Environment(format!("cannot list {}: {e}", self.lib.display()))
        })?;
        let mut log4j: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("log4j-") && n.ends_with(".jar"))
            })
            .collect();
        log4j.sort();
        jars.extend(log4j);
        jars.push(self.job_jar.clone());
        let parts: Vec<String> = jars.iter().map(|p| p.display().to_string()).collect();
        Ok(parts.join(":"))
    }

    /// `java` with `jvm_options`, Flink's options and the log configuration,
    /// running `main` from [`classpath`](Self::classpath).
    pub fn java_command(&self, jvm_options: &[String], main: &str) -> Result<Command, FlinkError> {
        let mut command = Command::new(&self.java);
        command
            .args(jvm_options)
            .args(FLINK_JAVA_OPTS)
            .arg(format!(
                "-Dlog4j.configurationFile={}",
                self.log_config.display()
            ))
            .arg("-cp")
            .arg(self.classpath()?)
            .arg(main)
            .stdin(Stdio::null());
        Ok(command)
    }
}

/// `name` from `$JAVA_HOME/bin`, else from `PATH`.
fn jdk_tool(name: &str) -> Result<PathBuf, FlinkError> {
    let java_home = std::env::var_os("JAVA_HOME").map(|h| PathBuf::from(h).join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    java_home
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            FlinkError::Environment(format!(
                "{name} not found (neither in $JAVA_HOME/bin nor on PATH): install Java 17 with Debian's {JDK_PACKAGE} (apt-get install {JDK_PACKAGE}), or set JAVA_HOME"
            ))
        })
}

/// The first line of `java -version`; refuses a Java older than 11, which
/// Flink 2 does not run on.
fn java_version(java: &Path) -> Result<String, FlinkError> {
    let out = run(
        Command::new(java).arg("-version"),
        Duration::from_secs(60),
        "java -version",
    )?;
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    let first = text.lines().next().unwrap_or("").trim().to_string();
    let major = first
        .split('"')
        .nth(1)
        .and_then(|v| v.split(['.', '-', '+']).next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 11 => Ok(first),
        _ => Err(FlinkError::Environment(format!(
            "{} is {first:?}; Flink 2 needs Java 11 or newer: install Debian's {JDK_PACKAGE}, or set JAVA_HOME",
            java.display()
        ))),
    }
}

/// A directory beside `target` that nobody else writes into.
fn partial(target: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}-{nanos}", std::process::id()));
    target.with_file_name(name)
}

/// Renames `from` to `to`; if another run put `to` in place first, keeps
/// that one.
fn rename_into_place(from: &Path, to: &Path) -> Result<(), FlinkError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) if to.exists() => {
            let _ = std::fs::remove_dir_all(from);
            Ok(())
        }
        Err(e) => Err(FlinkError::Environment(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))),
    }
}

fn write_into_place(path: &Path, text: &str) -> Result<(), FlinkError> {
    let tmp = partial(path);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| FlinkError::Environment(format!("cannot write {}: {e}", path.display())))
}

fn pip_install(version: &str, home: &Path) -> Result<(), FlinkError> {
    let parent = home.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| FlinkError::Environment(format!("cannot create {}: {e}", parent.display())))?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-m", "pip", "--version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| {
            FlinkError::Environment(
                "python3 with pip not found: the Flink jars come from PyPI's apache-flink-libraries; install Debian's python3-pip (apt-get install python3-pip)".into(),
            )
        })?;
    let target = partial(home);
    let mut pip = Command::new(python);
    pip.args(["-m", "pip", "install", "--no-deps", "--no-input"])
        .args(["--disable-pip-version-check", "--target"])
        .arg(&target)
        .arg(format!("apache-flink-libraries=={version}"));
    let outcome = run(&mut pip, PIP_TIMEOUT, "pip install apache-flink-libraries");
    if let Err(e) = outcome {
        let _ = std::fs::remove_dir_all(&target);
        return Err(FlinkError::Environment(format!(
            "cannot install apache-flink-libraries=={version} from PyPI: {e}"
        )));
    }
    rename_into_place(&target, home)
}

/// FNV-1a over the Flink version and the job's sources: a build directory
/// per version of either.
fn job_hash(version: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let sources = JOB_SOURCES.iter().flat_map(|(n, s)| [*n, *s]);
    for part in std::iter::once(version).chain(sources) {
        for b in part.bytes().chain([0]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn build_job(javac: &Path, jar: &Path, dist: &Path, built: &Path) -> Result<(), FlinkError> {
    let work = partial(built);
    let (src, classes) = (work.join("src"), work.join("classes"));
    let fail = |e: String| {
        let _ = std::fs::remove_dir_all(&work);
        FlinkError::Environment(e)
    };
    std::fs::create_dir_all(&src)
        .and_then(|()| std::fs::create_dir_all(&classes))
        .map_err(|e| fail(format!("cannot create {}: {e}", work.display())))?;
    let mut files = Vec::new();
    for (name, text) in JOB_SOURCES {
        let file = src.join(name);
        std::fs::write(&file, text)
            .map_err(|e| fail(format!("cannot write {}: {e}", file.display())))?;
        files.push(file);
    }
    let mut compile = Command::new(javac);
    compile
        .args(["-nowarn", "-Xlint:none", "-encoding", "UTF-8", "-d"])
        .arg(&classes)
        .arg("-cp")
        .arg(dist)
        .args(&files);
    run(&mut compile, BUILD_TIMEOUT, "javac").map_err(|e| fail(e.to_string()))?;
    let mut package = Command::new(jar);
    package
        .arg("cf")
        .arg(work.join("taskbench-job.jar"))
        .arg("-C")
        .arg(&classes)
        .arg(".");
    run(&mut package, BUILD_TIMEOUT, "jar").map_err(|e| fail(e.to_string()))?;
    rename_into_place(&work, built)
}

/// Runs `command` to its end within `timeout`, its output captured; an
/// error carries the end of what it printed.
pub(crate) fn run(
    command: &mut Command,
    timeout: Duration,
    what: &str,
) -> Result<std::process::Output, FlinkError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FlinkError::Environment(format!("cannot start {what}: {e}")))?;
    // Drain both pipes on their own threads, so a chatty child cannot block.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FlinkError::Environment(format!(
                    "{what} did not finish within {}s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(FlinkError::Environment(format!("{what}: {e}"))),
        }
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if output.status.success() {
        return Ok(output);
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(FlinkError::Environment(format!(
        "{what} failed ({}):\n{}",
        output.status,
        tail.join("\n")
    )))
}
