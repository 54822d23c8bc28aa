//! Flink's key-group assignment (`KeyGroupRangeAssignment`, `MathUtils`),
//! bit for bit, so a key lands on the subtask it would in Flink.

/// Flink's lower bound for the default max parallelism.
pub const DEFAULT_LOWER_BOUND_MAX_PARALLELISM: u32 = 1 << 7;
/// Flink's upper bound for any max parallelism.
pub const UPPER_BOUND_MAX_PARALLELISM: u32 = 1 << 15;

/// The max parallelism Flink derives from an operator's parallelism:
/// `min(max(next_pow2(p + p/2), 128), 32768)`.
pub fn default_max_parallelism(parallelism: u32) -> u32 {
    (parallelism + parallelism / 2).next_power_of_two().clamp(
        DEFAULT_LOWER_BOUND_MAX_PARALLELISM,
        UPPER_BOUND_MAX_PARALLELISM,
    )
}

/// Java's `Long.hashCode()`: the key as Flink would hash a `long` key.
#[inline]
pub fn java_long_hash(key: u64) -> i32 {
    (key ^ (key >> 32)) as i32
}

/// Flink's `MathUtils.murmurHash(int)`: one murmur3 round and finalizer,
/// made non-negative.
#[inline]
pub fn murmur_hash(code: i32) -> i32 {
    let h = murmur_hash_raw(code);
    if h >= 0 {
        h
    } else if h != i32::MIN {
        -h
    } else {
        0
    }
}

/// [`murmur_hash`] before it is made non-negative.
#[inline(always)]
pub fn murmur_hash_raw(code: i32) -> i32 {
    let mut h = code.wrapping_mul(0xcc9e_2d51_u32 as i32);
    h = h.rotate_left(15);
    h = h.wrapping_mul(0x1b87_3593);
    h = h.rotate_left(13);
    h = h.wrapping_mul(5).wrapping_add(0xe654_6b64_u32 as i32);
    h ^= 4;
    bit_mix(h)
}

/// Flink's `MathUtils.bitMix`: murmur3's 32-bit finalizer.
#[inline]
fn bit_mix(mut h: i32) -> i32 {
    h ^= ((h as u32) >> 16) as i32;
    h = h.wrapping_mul(0x85eb_ca6b_u32 as i32);
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(0xc2b2_ae35_u32 as i32);
    h ^= ((h as u32) >> 16) as i32;
    h
}

/// The key group of a key hash (`computeKeyGroupForKeyHash`).
#[inline]
pub fn key_group_for_hash(key_hash: i32, max_parallelism: u32) -> u32 {
    murmur_hash(key_hash) as u32 % max_parallelism
}

/// The subtask that owns a key group (`computeOperatorIndexForKeyGroup`).
#[inline]
pub fn operator_index_for_key_group(max_parallelism: u32, parallelism: u32, key_group: u32) -> u32 {
    (key_group as u64 * parallelism as u64 / max_parallelism as u64) as u32
}

/// The subtask a `long` key goes to (`assignKeyToParallelOperator`).
#[inline]
pub fn assign_key_to_operator(key: u64, max_parallelism: u32, parallelism: u32) -> u32 {
    let group = key_group_for_hash(java_long_hash(key), max_parallelism);
    operator_index_for_key_group(max_parallelism, parallelism, group)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn default_max_parallelism_follows_flink() {
        for (p, expected) in [
            (1, 128),
            (4, 128),
            (85, 128),
            (86, 256),
            (200, 512),
            (30000, 32768),
        ] {
            assert_eq!(default_max_parallelism(p), expected, "parallelism {p}");
        }
    }

    #[test]
    fn murmur_hash_matches_flink() {
        // Reference values from running Flink's MathUtils.murmurHash on a JVM.
        for (input, expected) in [
            (0, 593_689_054),
            (1, 68_075_478),
            (2, 1_085_422_463),
            (42, 1_134_849_565),
            (-1, 1_982_413_648),
            (i32::MAX, 1_653_689_534),
        ] {
            assert_eq!(murmur_hash(input), expected, "murmurHash({input})");
        }
    }

    #[test]
    fn long_keys_land_where_flink_puts_them() {
        // Reference: Long.hashCode, then KeyGroupRangeAssignment with max
        // parallelism 128 and parallelism 4, on a JVM.
        for (key, group, index) in [
            (0, 94, 2),
            (7, 113, 3),
            (123_456_789, 81, 2),
            (1 << 40, 54, 1),
        ] {
            assert_eq!(
                key_group_for_hash(java_long_hash(key), 128),
                group,
                "key {key}"
            );
            assert_eq!(assign_key_to_operator(key, 128, 4), index, "key {key}");
        }
    }

    #[test]
    fn key_groups_spread_over_every_subtask_in_contiguous_ranges() {
        let (max, parallelism) = (128, 3);
        let mut last = 0;
        for group in 0..max {
            let index = operator_index_for_key_group(max, parallelism, group);
            assert!(index >= last && index < parallelism);
            last = index;
        }
        assert_eq!(last, parallelism - 1);
        let mut seen = [0u32; 3];
        for key in 0..3000u64 {
            seen[assign_key_to_operator(key, max, parallelism) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
    }
}
