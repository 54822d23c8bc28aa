//! Sweep axes: each a `--set` path and its values. Every point is checked
//! as `sweep` will build it before the first one runs; an axis set twice,
//! a value given twice, or a path a `--set` also sets is refused, since
//! each would run a point other than the one its label names.

use std::collections::{HashMap, HashSet};

use super::error::{invalid, ProfileError};
use super::set::{canonical_path, path_of, value_text, MAX_PATH_PARTS};
use super::{Axis, Profile};

/// The most points a sweep may have.
pub const MAX_SWEEP_POINTS: u64 = 10_000;

impl Profile {
    /// The shape of the axes: each names a path once and each value once,
    /// and together they make at most [`MAX_SWEEP_POINTS`] points.
    pub(super) fn check_axes(&self) -> Result<(), ProfileError> {
        let table = self.base_table();
        let mut paths = HashSet::new();
        let mut points: u64 = 1;
        for (i, axis) in self.sweep.iter().enumerate() {
            let path = path_of(&format!("{}=", axis.set)).unwrap_or_default();
            let parts = path.split('.').count();
            if path.is_empty() || path.split('.').any(str::is_empty) || parts > MAX_PATH_PARTS {
                return Err(invalid(
                    format!("sweep[{i}].set"),
                    format!(
                        "'{}' is not a field path (e.g. network.segment_size; at most {MAX_PATH_PARTS} parts)",
                        axis.set.escape_debug()
                    ),
                ));
            }
            if path.starts_with("sweep") {
                return Err(invalid(
                    format!("sweep[{i}].set"),
                    "cannot sweep the sweep itself",
                ));
            }
            if !paths.insert(canonical_path(&table, &path)) {
                return Err(invalid(
                    format!("sweep[{i}].set"),
                    format!("{path} is swept by an earlier axis too; give each field one axis"),
                ));
            }
            if axis.values.is_empty() {
                return Err(invalid(
                    format!("sweep[{i}].values"),
                    "is empty: give the axis at least one value",
                ));
            }
            let mut seen = HashSet::new();
            for value in &axis.values {
                let text = value_text(value);
                if !seen.insert(text.clone()) {
                    return Err(invalid(
                        format!("sweep[{i}].values"),
                        format!("{text} is given twice; give each value once"),
                    ));
                }
            }
            points = points.saturating_mul(axis.values.len() as u64);
            if points > MAX_SWEEP_POINTS {
                return Err(invalid(
                    "sweep",
                    format!("the axes make more than {MAX_SWEEP_POINTS} points"),
                ));
            }
        }
        Ok(())
    }

    /// The axis that sweeps `path` (as `--set` writes it), if any: a
    /// `sweep` must not also be given that field, or every point would run
    /// with the override and be labelled with its axis value.
    pub fn axis_of(&self, path: &str) -> Option<&Axis> {
        let table = self.base_table();
        let canonical = |path: &str| Some(canonical_path(&table, &path_of(&format!("{path}="))?));
        let path = canonical(path)?;
        self.sweep
            .iter()
            .find(|axis| canonical(&axis.set).as_deref() == Some(path.as_str()))
    }

    /// This profile, less its axes, as a TOML table: what paths choose
    /// array elements in.
    fn base_table(&self) -> toml::Table {
        self.without_sweep().parse().unwrap_or_default()
    }

    /// Checks every point as `sweep` will build it, so a bad axis is
    /// refused before the first point runs.
    pub(super) fn check_sweep(&self) -> Result<(), ProfileError> {
        if self.sweep.is_empty() {
            return Ok(());
        }
        let base = self.without_sweep();
        let mut jobs: HashMap<String, String> = HashMap::new();
        for point in self.sweep_points() {
            let label = point.join(" ");
            let at = self
                .point(&base, &point)
                .map_err(|e| ProfileError::SweepPoint {
                    point: label.clone(),
                    source: Box::new(e.without_location()),
                })?;
            // Two spellings of one value (`"8B"` and `8`) pass the text
            // check above but run the same job twice under two labels.
            if let Some(earlier) = jobs.insert(at.without_sweep(), label.clone()) {
                return Err(invalid(
                    "sweep",
                    format!(
                        "points {earlier} and {label} run the same job (one value written two ways); give each value once"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// This profile as TOML, its sweep axes left out: the base each point
    /// is built from.
    pub fn without_sweep(&self) -> String {
        let mut base = self.clone();
        base.sweep.clear();
        base.to_toml()
    }

    /// The profile of one sweep point: `base` (from
    /// [`without_sweep`](Self::without_sweep)) with the point's assignments,
    /// checked on its own, and carrying this profile's axes.
    pub fn point(&self, base: &str, point: &[String]) -> Result<Profile, ProfileError> {
        let mut at = Profile::from_toml(base, &self.name, point)?;
        at.sweep = self.sweep.clone();
        Ok(at)
    }

    /// Every point of the sweep: the `--set` assignments of each, first
    /// axis varying slowest.
    pub fn sweep_points(&self) -> Vec<Vec<String>> {
        let mut points = vec![Vec::new()];
        for axis in &self.sweep {
            points = points
                .into_iter()
                .flat_map(|point| {
                    axis.values.iter().map(move |value| {
                        let mut p = point.clone();
                        p.push(format!("{}={}", axis.set, value_text(value)));
                        p
                    })
                })
                .collect();
        }
        points
    }

    /// Sets `measure.repetitions` and `measure.warmup` from flags (`-r`,
    /// `-w`), range-checked.
    pub fn with_measure(
        mut self,
        repetitions: Option<u32>,
        warmup: Option<u32>,
    ) -> Result<Profile, ProfileError> {
        if let Some(r) = repetitions {
            self.measure.repetitions = r;
        }
        if let Some(w) = warmup {
            self.measure.warmup = w;
        }
        self.check_measure()?;
        Ok(self)
    }
}
