//! The profiles built into the binary: every file of `profiles/`, so
//! `taskbench run map-sink` works from any directory.

use std::path::Path;

use super::profile::{Profile, ProfileError};

/// Name and TOML text of every built-in profile; `quickstart` first.
pub const BUILTIN: &[(&str, &str)] = &[
    ("quickstart", include_str!("../../profiles/quickstart.toml")),
    (
        "checkpoint-multi-input",
        include_str!("../../profiles/checkpoint-multi-input.toml"),
    ),
    (
        "checkpoint-single-input-aligned",
        include_str!("../../profiles/checkpoint-single-input-aligned.toml"),
    ),
    (
        "checkpoint-single-input-unaligned",
        include_str!("../../profiles/checkpoint-single-input-unaligned.toml"),
    ),
    (
        "checkpoint-single-input-unaligned-1ms",
        include_str!("../../profiles/checkpoint-single-input-unaligned-1ms.toml"),
    ),
    (
        "keyed-count-zipf",
        include_str!("../../profiles/keyed-count-zipf.toml"),
    ),
    (
        "latency-buffer-timeout",
        include_str!("../../profiles/latency-buffer-timeout.toml"),
    ),
    (
        "latency-vs-load",
        include_str!("../../profiles/latency-vs-load.toml"),
    ),
    (
        "map-rebalance-map-sink",
        include_str!("../../profiles/map-rebalance-map-sink.toml"),
    ),
    (
        "map-rebalance-map-sink-checkpoint-100ms",
        include_str!("../../profiles/map-rebalance-map-sink-checkpoint-100ms.toml"),
    ),
    ("map-sink", include_str!("../../profiles/map-sink.toml")),
    (
        "multi-input-map-sink",
        include_str!("../../profiles/multi-input-map-sink.toml"),
    ),
    (
        "network-broadcast",
        include_str!("../../profiles/network-broadcast.toml"),
    ),
    (
        "network-latency-1to1",
        include_str!("../../profiles/network-latency-1to1.toml"),
    ),
    (
        "network-skewed",
        include_str!("../../profiles/network-skewed.toml"),
    ),
    (
        "network-throughput-1000ch-100ms",
        include_str!("../../profiles/network-throughput-1000ch-100ms.toml"),
    ),
    (
        "network-throughput-1000ch-1ms",
        include_str!("../../profiles/network-throughput-1000ch-1ms.toml"),
    ),
    (
        "network-throughput-100ch-100ms",
        include_str!("../../profiles/network-throughput-100ch-100ms.toml"),
    ),
    (
        "source-keyby-map-sink",
        include_str!("../../profiles/source-keyby-map-sink.toml"),
    ),
    (
        "source-map-sink",
        include_str!("../../profiles/source-map-sink.toml"),
    ),
    (
        "sweep-checkpoint-modes",
        include_str!("../../profiles/sweep-checkpoint-modes.toml"),
    ),
    (
        "sweep-buffer-timeout",
        include_str!("../../profiles/sweep-buffer-timeout.toml"),
    ),
    (
        "sweep-tasks-segments",
        include_str!("../../profiles/sweep-tasks-segments.toml"),
    ),
    (
        "sweep-wait-strategies",
        include_str!("../../profiles/sweep-wait-strategies.toml"),
    ),
    (
        "two-input-map-sink",
        include_str!("../../profiles/two-input-map-sink.toml"),
    ),
    (
        "two-input-one-idle-map-sink",
        include_str!("../../profiles/two-input-one-idle-map-sink.toml"),
    ),
];

/// The built-in profile named `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Loads `arg`: an existing file, else a built-in name; no argument means
/// the quickstart. Returns the profile and where it came from.
pub fn load(arg: Option<&str>, overrides: &[String]) -> Result<(Profile, String), ProfileError> {
    let name = arg.unwrap_or("quickstart");
    let path = Path::new(name);
    if path.is_file() || name.ends_with(".toml") || name.contains('/') {
        return Ok((
            Profile::from_file(path, overrides)?,
            path.display().to_string(),
        ));
    }
    match builtin(name) {
        Some(text) => Ok((
            Profile::from_toml(text, &format!("built-in profile {name}"), overrides)?,
            format!("built-in {name}"),
        )),
        None => Err(ProfileError::Read {
            path: name.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no such file, and no built-in profile has that name (built-ins: {})",
                    BUILTIN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_profiles_is_built_in_and_valid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".toml").map(str::to_string)
            })
            .collect();
        files.sort();
        let mut built_in: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        built_in.sort();
        assert_eq!(files, built_in, "profiles/ and BUILTIN differ");
        for (name, text) in BUILTIN {
            let profile = Profile::from_toml(text, name, &[]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(profile.name, *name, "a profile's name is its file name");
            for point in profile.sweep_points() {
                Profile::from_toml(text, name, &point).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn unknown_names_list_the_built_ins() {
        let err = load(Some("no-such-profile"), &[]).unwrap_err().to_string();
        assert!(
            err.contains("no-such-profile") && err.contains("quickstart"),
            "{err}"
        );
        assert_eq!(load(None, &[]).unwrap().0.name, "quickstart");
    }
}
