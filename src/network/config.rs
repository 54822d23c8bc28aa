//! Network configuration: how channels are sized.

use std::time::Duration;

use super::DebloatConfig;
use crate::memory::{MemoryConfig, MemoryError};

/// Sizes of the network stack, with Flink's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Memory region and segment size.
    pub memory: MemoryConfig,
    /// Exclusive buffers per input channel (Flink's
    /// `taskmanager.network.memory.buffers-per-channel`, default 2).
    pub buffers_per_channel: u32,
    /// Floating buffers per input gate (Flink's
    /// `taskmanager.network.memory.floating-buffers-per-gate`, default 8).
    pub floating_buffers: u32,
    /// Overdraft segments a partition may take past its pool's maximum
    /// to finish a record it started (Flink's
    /// `taskmanager.network.memory.max-overdraft-buffers-per-gate`,
    /// default 5); each channel's ring has as many slots past its credit.
    /// Source tasks use none.
    pub max_overdraft_buffers: u32,
    /// Largest record a channel carries; larger ones are an error.
    pub max_record_size: usize,
    /// How long a task setting up a partition waits for its pool's minimum
    /// segments before it fails (Flink's
    /// `taskmanager.network.memory.buffers-request-timeout`, default 30 s).
    pub buffers_request_timeout: Duration,
    /// Buffer debloating, if on (Flink's
    /// `taskmanager.network.memory.buffer-debloat.enabled`, default off).
    pub debloat: Option<DebloatConfig>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            memory: MemoryConfig::default(),
            buffers_per_channel: 2,
            floating_buffers: 8,
            max_overdraft_buffers: 5,
            max_record_size: 1 << 20,
            buffers_request_timeout: Duration::from_secs(30),
            debloat: None,
        }
    }
}

/// Why a network configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum NetworkConfigError {
    /// Memory is misconfigured.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// No exclusive buffer per channel.
    #[error("buffers_per_channel is 0: every input channel needs at least 1 exclusive buffer")]
    NoChannelBuffers,
    /// A channel credit of 1: the buffer a producer is filling takes it, so
    /// between records the output would wait for a buffer it holds itself.
    #[error(
        "buffers_per_channel + floating_buffers is {0}: a channel needs a credit of at least 2 \
         (one buffer being filled, one on its way)"
    )]
    CreditTooSmall(usize),
    /// More overdraft buffers than a ring is sized for.
    #[error("max_overdraft_buffers is {0}: use at most {MAX_OVERDRAFT_BUFFERS}")]
    Overdraft(u32),
    /// The maximum record size is 0.
    #[error("max_record_size is 0: records need at least 1 byte")]
    NoRecordSize,
    /// A debloating setting is out of range.
    #[error("debloat.{field}: {problem}")]
    Debloat {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// The most overdraft buffers a partition may be allowed (each channel's
/// ring has a slot per overdraft buffer).
pub const MAX_OVERDRAFT_BUFFERS: u32 = 1024;

impl NetworkConfig {
    /// Checks every field, naming the offending one.
    pub fn validate(&self) -> Result<(), NetworkConfigError> {
        self.memory.validate()?;
        if self.buffers_per_channel == 0 {
            return Err(NetworkConfigError::NoChannelBuffers);
        }
        if self.channel_credit() < 2 {
            return Err(NetworkConfigError::CreditTooSmall(self.channel_credit()));
        }
        if self.max_overdraft_buffers > MAX_OVERDRAFT_BUFFERS {
            return Err(NetworkConfigError::Overdraft(self.max_overdraft_buffers));
        }
        if self.max_record_size == 0 {
            return Err(NetworkConfigError::NoRecordSize);
        }
        if let Some(d) = &self.debloat {
            let bad = |field, problem: String| Err(NetworkConfigError::Debloat { field, problem });
            let hour = Duration::from_secs(3600);
            if d.target.is_zero() || d.target > hour {
                return bad("target", format!("{:?}: use from 1ns to 1h", d.target));
            }
            if d.period < Duration::from_millis(1) || d.period > hour {
                return bad("period", format!("{:?}: use from 1ms to 1h", d.period));
            }
            if !(1..=10_000).contains(&d.samples) {
                return bad("samples", format!("{} is not within 1..=10000", d.samples));
            }
            if d.min_buffer_size < 64 || d.min_buffer_size as usize > self.memory.segment_size {
                return bad(
                    "min_buffer_size",
                    format!(
                        "{} B is not within 64 B..=segment_size ({} B)",
                        d.min_buffer_size, self.memory.segment_size
                    ),
                );
            }
            if d.threshold_pct > 100 {
                return bad("threshold", format!("{} % is above 100 %", d.threshold_pct));
            }
        }
        Ok(())
    }

    /// A local channel's credit: the buffers that may be in flight on it.
    ///
    /// A remote Flink channel's credit is its exclusive buffers plus the
    /// floating buffers it wins from its gate; a local channel here may hold
    /// all of them, which with the defaults (2 + 8) equals Flink's
    /// `max-buffers-per-channel` of 10.
    pub fn channel_credit(&self) -> usize {
        // Summed as usize: two u32 fields cannot overflow it.
        self.buffers_per_channel as usize + self.floating_buffers as usize
    }

    /// A channel ring's slots: its credit, the overdraft a record may use
    /// past it, and one slot for an event past that (an event needs no
    /// segment; Flink queues it regardless of credit).
    pub fn ring_capacity(&self) -> usize {
        self.channel_credit() + self.max_overdraft_buffers as usize + 1
    }
}
