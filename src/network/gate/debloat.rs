//! Buffer debloating (Flink's `BufferDebloater`, FLIP-183): a gate sizes
//! the buffers its producers send so that what is queued in front of the
//! task takes about `target` to process, which bounds how long an aligned
//! barrier waits behind in-flight data.

use std::time::{Duration, Instant};

use super::InputGate;

/// How a gate debloats (Flink's `taskmanager.network.memory.buffer-debloat.*`
/// and `taskmanager.memory.min-segment-size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebloatConfig {
    /// Time the queued data should take to process (`target`, Flink's
    /// default 1 s).
    pub target: Duration,
    /// How often the size is recalculated (`period`, default 200 ms).
    pub period: Duration,
    /// Periods the size is smoothed over: an exponential moving average
    /// with weight 2 / (samples + 1) (`samples`, default 20).
    pub samples: u32,
    /// Smallest buffer size, bytes (`min-segment-size`, default 256 B).
    pub min_buffer_size: u32,
    /// A new size is announced upstream only if it differs from the last
    /// one by at least this many percent (`threshold-percentages`, default
    /// 25), or reaches a bound.
    pub threshold_pct: u32,
}

impl Default for DebloatConfig {
    fn default() -> Self {
        Self {
            target: Duration::from_secs(1),
            period: Duration::from_millis(200),
            samples: 20,
            min_buffer_size: 256,
            threshold_pct: 25,
        }
    }
}

/// One gate's debloater: every `period` it measures the bytes the task read
/// (throughput) and the buffers queued in the gate's channels, and sets the
/// buffer size to throughput × target ÷ buffers queued, smoothed and
/// clamped to [`min_buffer_size`, segment size].
#[derive(Debug)]
pub struct BufferDebloater {
    config: DebloatConfig,
    max: u32,
    /// The smoothed size, bytes.
    size: f64,
    /// The size last announced upstream.
    announced: u32,
    last_bytes: u64,
    last_at: Instant,
    /// Announcements made.
    updates: u64,
}

impl BufferDebloater {
    /// A debloater for buffers of at most `segment_size` bytes, starting at
    /// whole segments at `now`.
    pub fn new(config: DebloatConfig, segment_size: u32, now: Instant) -> Self {
        Self {
            config,
            max: segment_size,
            size: f64::from(segment_size),
            announced: segment_size,
            last_bytes: 0,
            last_at: now,
            updates: 0,
        }
    }

    /// The buffer size last announced upstream, bytes.
    pub fn buffer_size(&self) -> u32 {
        self.announced
    }

    /// Announcements made so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// When the next recalculation is due.
    #[inline]
    pub fn due(&self) -> Instant {
        self.last_at + self.config.period
    }

    /// Recalculates from `gate`'s counters if a period has passed; announces
    /// a size that moved enough to every channel's producer. Returns the
    /// new size if it announced one.
    pub fn update(&mut self, gate: &mut InputGate, now: Instant) -> Option<u32> {
        let elapsed = now.saturating_duration_since(self.last_at);
        if elapsed < self.config.period {
            return None;
        }
        let bytes = gate.bytes_in();
        let throughput = (bytes - self.last_bytes) as f64 / elapsed.as_secs_f64();
        self.last_bytes = bytes;
        self.last_at = now;
        let size = self.recalculate(throughput, gate.queued_buffers())?;
        gate.set_buffer_size(size);
        Some(size)
    }

    /// One period's step: `throughput` bytes/s read, `queued` buffers
    /// waiting. Returns the size to announce, if it moved enough.
    fn recalculate(&mut self, throughput: f64, queued: usize) -> Option<u32> {
        let queued = queued.max(1) as f64;
        let desired = throughput * self.config.target.as_secs_f64() / queued;
        let alpha = 2.0 / (f64::from(self.config.samples) + 1.0);
        let (min, max) = (
            f64::from(self.config.min_buffer_size.min(self.max)),
            f64::from(self.max),
        );
        self.size = (self.size + alpha * (desired - self.size)).clamp(min, max);
        let size = self.size.round() as u32;
        if !self.moved_enough(size) {
            return None;
        }
        self.announced = size;
        self.updates += 1;
        Some(size)
    }

    /// Flink's skip rule: a change below the threshold is not announced,
    /// unless it reaches a bound.
    fn moved_enough(&self, size: u32) -> bool {
        if size == self.announced {
            return false;
        }
        if size == self.max || size == self.config.min_buffer_size.min(self.max) {
            return true;
        }
        let change = (1.0 - f64::from(self.announced) / f64::from(size)).abs() * 100.0;
        change >= f64::from(self.config.threshold_pct)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn debloater(samples: u32) -> BufferDebloater {
        let config = DebloatConfig {
            target: Duration::from_secs(1),
            samples,
            ..DebloatConfig::default()
        };
        BufferDebloater::new(config, 32 << 10, Instant::now())
    }

    #[test]
    fn the_size_converges_on_throughput_times_target_over_queued_buffers() {
        // 10 KB/s read, 10 buffers queued, 1 s target: 1,000 B each.
        let mut d = debloater(5);
        let mut announced = Vec::new();
        for _ in 0..40 {
            announced.extend(d.recalculate(10_000.0, 10));
        }
        // The last size sent is within the threshold of the target's.
        assert!((1000..=1333).contains(&d.buffer_size()), "{announced:?}");
        // Smoothed: it went down in several announced steps, each at least
        // 25 % from the last.
        assert!(announced.len() >= 3, "{announced:?}");
        let mut last = 32 << 10;
        for &a in &announced {
            let change = (1.0 - f64::from(last) / f64::from(a)).abs();
            assert!(
                a < last && (change >= 0.25 || a == d.buffer_size()),
                "{announced:?}"
            );
            last = a;
        }
        // A change below the threshold is not announced.
        assert_eq!(d.recalculate(11_000.0, 10), None);
    }

    #[test]
    fn sizes_stay_within_the_minimum_and_a_segment() {
        let mut d = debloater(1);
        assert_eq!(d.recalculate(1.0, 100), Some(256), "the minimum");
        assert_eq!(d.recalculate(1e12, 1), Some(32 << 10), "a whole segment");
        assert_eq!(d.recalculate(1e12, 0), None, "no change, nothing sent");
        assert_eq!(d.updates(), 2);
    }
}
