//! The commands that run no job: `list`, `validate`, `schema`.

use std::path::PathBuf;

use taskbench::bench::builtin::{self, BUILTIN};
use taskbench::bench::{json_schema, Profile};

use super::term::print;
use super::{CliError, ProfileArgs};

pub fn list() -> Result<(), CliError> {
    let mut out = String::new();
    let mut names: Vec<&str> = Vec::new();
    for (name, text) in BUILTIN {
        match Profile::from_toml(text, name, &[]) {
            Ok(p) => {
                let sweep = if p.sweep.is_empty() { "" } else { " [sweep]" };
                out.push_str(&format!("{name:<34} {}{sweep}\n", p.description));
            }
            Err(e) => out.push_str(&format!("{name:<34} (invalid: {e})\n")),
        }
        names.push(name);
    }
    if let Ok(entries) = std::fs::read_dir("profiles") {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if names.contains(&stem) {
                continue;
            }
            // A file name is shown escaped: it could hold control characters.
            let shown = path.display().to_string().escape_debug().to_string();
            match Profile::from_file(&path, &[]) {
                Ok(p) => out.push_str(&format!("{shown:<34} {}\n", p.description)),
                Err(e) => out.push_str(&format!("{shown:<34} (invalid: {e})\n")),
            }
        }
    }
    print(&out)
}

pub fn validate(args: &ProfileArgs) -> Result<(), CliError> {
    let (profile, origin) = builtin::load(args.profile.as_deref(), &args.set)?;
    let points = profile.sweep_points().len();
    print(&format!(
        "{origin}: ok: '{}', {} vertices, {} edges, {} task thread(s){}\n",
        profile.name,
        profile.vertices.len(),
        profile.edges.len(),
        profile.task_count(),
        if profile.sweep.is_empty() {
            String::new()
        } else {
            format!(", {points} sweep points")
        }
    ))
}

pub fn schema() -> Result<(), CliError> {
    let schema = serde_json::to_string_pretty(&json_schema()).expect("a schema serializes");
    print(&format!("{schema}\n"))
}
