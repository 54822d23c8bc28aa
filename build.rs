//! Records the git revision of the tree this binary is built from, with a
//! `-dirty` mark when tracked files had changes, as `TASKBENCH_GIT_REVISION`
//! ("unknown" without git or outside a repository). Results carry it, so a
//! result names its build even when the binary runs elsewhere.
//!
//! With the `loom` feature it also sets `cfg(loom)` on this crate's targets
//! (the loom models, scripts/loom.sh), and on no dependency.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    if std::env::var_os("CARGO_FEATURE_LOOM").is_some() {
        println!("cargo:rustc-cfg=loom");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={dir}/{file}");
        }
    }
    if let Some(dir) = git(&["rev-parse", "--git-common-dir"]) {
        println!("cargo:rerun-if-changed={dir}/refs/heads");
    }
    let revision = match git(&["rev-parse", "--short=12", "HEAD"]).filter(|r| !r.is_empty()) {
        Some(r) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{r}-dirty")
            } else {
                r
            }
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=TASKBENCH_GIT_REVISION={revision}");
}
