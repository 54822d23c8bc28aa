//! A profile's `[network.debloat]` table: Flink's buffer debloating
//! (`taskmanager.network.memory.buffer-debloat.*`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bench::units::{Size, Span};
use crate::network::DebloatConfig;

/// Buffer debloating: each gate sizes its producers' buffers so what is
/// queued before it takes about `target` to process. Present and
/// `enabled` (the default once the table is written): on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a [network.debloat] table (enabled, target, period, …)"
)]
pub struct Debloat {
    /// On or off (`buffer-debloat.enabled`); a sweep may flip it.
    pub enabled: bool,
    /// Time the queued data should take to process (`buffer-debloat.target`).
    pub target: Span,
    /// How often buffer sizes are recalculated (`buffer-debloat.period`).
    pub period: Span,
    /// Periods a size is smoothed over (`buffer-debloat.samples`).
    pub samples: u32,
    /// Smallest buffer (`taskmanager.memory.min-segment-size`).
    pub min_buffer_size: Size,
    /// Percent a new size must differ by to be announced
    /// (`buffer-debloat.threshold-percentages`).
    pub threshold: u32,
}

impl Default for Debloat {
    fn default() -> Self {
        let d = DebloatConfig::default();
        Self {
            enabled: true,
            target: Span(d.target),
            period: Span(d.period),
            samples: d.samples,
            min_buffer_size: Size(u64::from(d.min_buffer_size)),
            threshold: d.threshold_pct,
        }
    }
}

impl Debloat {
    /// The engine's configuration, if on.
    pub fn config(&self) -> Option<DebloatConfig> {
        self.enabled.then(|| DebloatConfig {
            target: self.target.0,
            period: self.period.0,
            samples: self.samples,
            min_buffer_size: u32::try_from(self.min_buffer_size.0).unwrap_or(u32::MAX),
            threshold_pct: self.threshold,
        })
    }
}
