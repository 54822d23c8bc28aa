//! The layout of the records taskbench's jobs move.
//!
//! A record is `record_size` bytes (at least 8): the first 8 are its value,
//! a little-endian `u64` (Flink's benchmarks move `Long`s); when latency is
//! measured and the record has 16 bytes or more, bytes 8..16 carry the
//! nanosecond timestamp (since the job's epoch) of the batch that emitted it.
//! The rest is padding.

/// Bytes of the value.
pub const VALUE_BYTES: usize = 8;
/// Smallest record that can carry a timestamp.
pub const TIMESTAMPED_BYTES: usize = 16;

/// The record's value.
#[inline(always)]
pub fn value(record: &[u8]) -> u64 {
    match record.first_chunk::<8>() {
        Some(bytes) => u64::from_le_bytes(*bytes),
        None => 0,
    }
}

/// Sets the record's value.
#[inline(always)]
pub fn set_value(record: &mut [u8], value: u64) {
    if let Some(bytes) = record.first_chunk_mut::<8>() {
        *bytes = value.to_le_bytes();
    }
}

/// The record's emit timestamp, if it carries one.
#[inline(always)]
pub fn timestamp(record: &[u8]) -> Option<u64> {
    record
        .get(VALUE_BYTES..TIMESTAMPED_BYTES)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// Sets the record's emit timestamp (ignored if it is too short).
#[inline(always)]
pub fn set_timestamp(record: &mut [u8], nanos: u64) {
    if let Some(bytes) = record.get_mut(VALUE_BYTES..TIMESTAMPED_BYTES) {
        bytes.copy_from_slice(&nanos.to_le_bytes());
    }
}
