//! Channel selection: which subpartition(s) a record goes to.

use super::key_group;

/// How records are distributed over a partition's subpartitions (Flink's
/// `StreamPartitioner`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioner {
    /// Everything to subpartition 0 (one consumer, same parallelism).
    Forward,
    /// Round-robin over all subpartitions.
    Rebalance,
    /// Round-robin over the subpartitions this producer is wired to; the
    /// difference from rebalance lies in the job graph's point-wise wiring.
    Rescale,
    /// Flink's key-group hash: `murmur(key.hashCode()) % max_parallelism`,
    /// then the key group's subtask.
    Hash {
        /// Flink's max parallelism (number of key groups).
        max_parallelism: u32,
        /// The key is `value % key_space`, as keyed operators key records
        /// (so a key's records all reach the subtask holding its state);
        /// 0 keys by the whole value.
        key_space: u64,
    },
    /// Every record to every subpartition, written once and shared.
    Broadcast,
}

impl Partitioner {
    /// Key-group hashing with the max parallelism Flink derives from the
    /// consumer's parallelism.
    pub fn hash_for(parallelism: u32) -> Self {
        Partitioner::Hash {
            max_parallelism: key_group::default_max_parallelism(parallelism),
            key_space: 0,
        }
    }

    /// As [`hash_for`](Self::hash_for), keyed by `value % key_space`.
    pub fn hash_keyed(parallelism: u32, key_space: u64) -> Self {
        Partitioner::Hash {
            max_parallelism: key_group::default_max_parallelism(parallelism),
            key_space,
        }
    }
}

/// Where one record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One subpartition.
    One(usize),
    /// All subpartitions (broadcast).
    All,
}

/// A partitioner bound to a number of subpartitions, with its round-robin
/// position.
#[derive(Clone, Copy, Debug)]
pub struct ChannelSelector {
    partitioner: Partitioner,
    channels: usize,
    next: usize,
}

impl ChannelSelector {
    /// Binds `partitioner` to `channels` subpartitions; round-robin starts at
    /// `start % channels` (Flink starts at a random channel; a seed keeps
    /// runs repeatable).
    pub fn new(partitioner: Partitioner, channels: usize, start: usize) -> Self {
        assert!(channels > 0, "a partition has at least one subpartition");
        Self {
            partitioner,
            channels,
            next: start % channels,
        }
    }

    /// The partitioner.
    pub fn partitioner(&self) -> Partitioner {
        self.partitioner
    }

    /// Picks the subpartition(s) for a record with `key`.
    #[inline]
    pub fn select(&mut self, key: u64) -> Selection {
        match self.partitioner {
            Partitioner::Forward => Selection::One(0),
            Partitioner::Rebalance | Partitioner::Rescale => Selection::One(self.round_robin()),
            Partitioner::Hash {
                max_parallelism,
                key_space,
            } => Selection::One(self.hash(key, max_parallelism, key_space)),
            Partitioner::Broadcast => Selection::All,
        }
    }

    /// Where the round-robin turn stands, for a writer that routes a batch
    /// in turn itself.
    #[inline]
    pub fn next_mut(&mut self) -> &mut usize {
        &mut self.next
    }

    /// The next channel in turn (rebalance, rescale).
    #[inline(always)]
    pub fn round_robin(&mut self) -> usize {
        let channel = self.next;
        self.next += 1;
        if self.next == self.channels {
            self.next = 0;
        }
        channel
    }

    /// The channel of `key`'s key group (hash; the partitioner's fields):
    /// Flink's `assignKeyToParallelOperator`.
    #[inline(always)]
    pub fn hash(&self, key: u64, max_parallelism: u32, key_space: u64) -> usize {
        let key = if key_space == 0 { key } else { key % key_space };
        key_group::assign_key_to_operator(key, max_parallelism, self.channels as u32) as usize
    }

    /// The hash route without a division, when the partitioner allows one
    /// (see [`KeyGroupRoute`]).
    pub fn key_group_route(&self) -> Option<KeyGroupRoute> {
        match self.partitioner {
            Partitioner::Hash {
                max_parallelism,
                key_space,
            } => KeyGroupRoute::new(max_parallelism, key_space, self.channels),
            _ => None,
        }
    }
}

/// Flink's key-group routing with every division turned into a mask or a
/// shift, for a max parallelism that is a power of two (Flink's default
/// always is) and a key space that is one or unbounded: three 64-bit
/// divisions a record cost a hash writer about 6 ns on this machine's
/// cores. Bit for bit Flink's assignment (a test holds it to the division).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyGroupRoute {
    key_mask: u64,
    group_mask: u32,
    shift: u32,
    channels: u64,
}

impl KeyGroupRoute {
    /// The route for `channels` subpartitions, if the divisors allow one.
    pub fn new(max_parallelism: u32, key_space: u64, channels: usize) -> Option<Self> {
        let key_mask = match key_space {
            0 => u64::MAX,
            space if space.is_power_of_two() => space - 1,
            _ => return None,
        };
        max_parallelism.is_power_of_two().then(|| KeyGroupRoute {
            key_mask,
            group_mask: max_parallelism - 1,
            shift: max_parallelism.trailing_zeros(),
            channels: channels as u64,
        })
    }

    /// The channel of `value`'s key.
    #[inline(always)]
    pub fn channel(&self, value: u64) -> usize {
        let hash = key_group::murmur_hash_raw(key_group::java_long_hash(value & self.key_mask));
        // Flink makes the hash non-negative (`i32::MIN` becoming 0) before
        // `% max_parallelism`; masking the wrapping absolute value with a
        // power of two below 2^31 gives the same group, `i32::MIN` too.
        let group = hash.wrapping_abs() as u32 & self.group_mask;
        ((u64::from(group) * self.channels) >> self.shift) as usize
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn each_partitioner_selects_as_flink_does() {
        let mut forward = ChannelSelector::new(Partitioner::Forward, 1, 0);
        assert_eq!(forward.select(5), Selection::One(0));

        let mut rebalance = ChannelSelector::new(Partitioner::Rebalance, 3, 1);
        let picks: Vec<_> = (0..6).map(|k| rebalance.select(k)).collect();
        let expected: Vec<_> = [1, 2, 0, 1, 2, 0].map(Selection::One).into();
        assert_eq!(picks, expected);

        let mut hash = ChannelSelector::new(Partitioner::hash_for(4), 4, 0);
        assert_eq!(hash.select(7), Selection::One(3));
        assert_eq!(
            hash.select(7),
            Selection::One(3),
            "a key always lands on the same channel"
        );
        assert_eq!(hash.select(0), Selection::One(2));

        let mut keyed = ChannelSelector::new(Partitioner::hash_keyed(4, 10), 4, 0);
        assert_eq!(keyed.select(17), hash.select(7), "17 and 7 share key 7");
        assert_eq!(keyed.select(10), hash.select(0));

        let mut broadcast = ChannelSelector::new(Partitioner::Broadcast, 4, 0);
        assert_eq!(broadcast.select(1), Selection::All);
    }

    #[test]
    fn the_key_group_route_sends_every_key_where_flinks_division_does() {
        for (max_parallelism, channels, key_space) in [
            (128, 2, 1 << 24),
            (128, 3, 1000),
            (256, 200, 0),
            (100, 7, 1 << 10),
            (32768, 4096, 0),
            (32768, 4096, 3),
        ] {
            let route = KeyGroupRoute::new(max_parallelism, key_space, channels);
            let pow2_keys = key_space == 0 || key_space.is_power_of_two();
            assert_eq!(
                route.is_some(),
                pow2_keys && max_parallelism.is_power_of_two(),
                "{max_parallelism} {key_space}"
            );
            let Some(route) = route else { continue };
            let mut value = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..10_000 {
                value = value.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d);
                let key = if key_space == 0 {
                    value
                } else {
                    value % key_space
                };
                let flink =
                    key_group::assign_key_to_operator(key, max_parallelism, channels as u32);
                assert_eq!(
                    route.channel(value),
                    flink as usize,
                    "value {value} max {max_parallelism} channels {channels} keys {key_space}"
                );
            }
        }
    }
}
