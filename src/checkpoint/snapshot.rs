//! One task's snapshot and its binary form: a magic, the version, the
//! checkpoint and task, the operator state, the channel state, and a CRC-32
//! over everything before it. Decoding never trusts a length it has not
//! checked against what is left.

/// Which subtask a snapshot belongs to: stable across restarts (an
/// execution attempt is not), as Flink keys state by operator and subtask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    /// The job vertex, in the job graph's order.
    pub vertex: u32,
    /// The subtask index.
    pub subtask: u32,
}

impl std::fmt::Display for TaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task-{}-{}", self.vertex, self.subtask)
    }
}

/// What one input channel held in flight when an unaligned checkpoint cut
/// it (Flink's `InputChannelStateHandle`): serialized record bytes, to be
/// read before new input after a restore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelState {
    /// The input gate, in the task's gate order.
    pub gate: u32,
    /// The channel within the gate.
    pub channel: u32,
    /// The bytes, as the channel's deserializer would have read them.
    pub bytes: Vec<u8>,
}

/// One task's part of a checkpoint (Flink's `TaskStateSnapshot`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSnapshot {
    /// The checkpoint.
    pub checkpoint_id: u64,
    /// The subtask.
    pub task: TaskKey,
    /// Source position, operator tables and sink counters, in chain order
    /// (written by [`StateWriter`]).
    pub operator_state: Vec<u8>,
    /// In-flight input, per channel (unaligned checkpoints).
    pub channel_state: Vec<ChannelState>,
}

/// Why a snapshot could not be decoded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The bytes end before a field does.
    #[error("truncated: {what} needs {need} bytes, {left} left")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes left.
        left: usize,
    },
    /// Not a snapshot, or another version.
    #[error("not a taskbench snapshot (magic or version {0} does not match)")]
    Format(u32),
    /// The checksum does not match.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Stored CRC-32.
        stored: u32,
        /// Computed CRC-32.
        computed: u32,
    },
    /// A value does not fit the job it is restored into.
    #[error("state does not fit the task: {0}")]
    Mismatch(String),
}

const MAGIC: &[u8; 4] = b"TBCK";
const VERSION: u32 = 1;

/// Appends little-endian fields to a byte vector.
#[derive(Debug, Default)]
pub struct StateWriter(pub Vec<u8>);

impl StateWriter {
    /// One `u64`.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// One `u32`.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A length-prefixed run of `u64`s.
    pub fn u64s(&mut self, values: &[u64]) {
        self.u64(values.len() as u64);
        self.0.reserve(values.len() * 8);
        for &v in values {
            self.u64(v);
        }
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }
}

/// Reads what a [`StateWriter`] wrote, checking every length.
#[derive(Debug)]
pub struct StateReader<'a> {
    bytes: &'a [u8],
}

impl<'a> StateReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, what: &'static str, need: usize) -> Result<&'a [u8], StateError> {
        if self.bytes.len() < need {
            return Err(StateError::Truncated {
                what,
                need,
                left: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(need);
        self.bytes = rest;
        Ok(head)
    }

    /// One `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, StateError> {
        let b = self.take(what, 8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// One `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, StateError> {
        let b = self.take(what, 4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    /// A length-prefixed run of `u64`s into `into`, which must have that
    /// length (a table sized by the job).
    pub fn u64s_into(&mut self, what: &'static str, into: &mut [u64]) -> Result<(), StateError> {
        let n = self.u64(what)?;
        if n != into.len() as u64 {
            return Err(StateError::Mismatch(format!(
                "{what} holds {n} values, the task {}",
                into.len()
            )));
        }
        let bytes = self.take(what, into.len() * 8)?;
        for (v, b) in into.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        Ok(())
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], StateError> {
        let n = self.u64(what)?;
        let n = usize::try_from(n).map_err(|_| StateError::Truncated {
            what,
            need: usize::MAX,
            left: self.bytes.len(),
        })?;
        self.take(what, n)
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Fails unless everything was read.
    pub fn finish(self, what: &'static str) -> Result<(), StateError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(StateError::Mismatch(format!(
                "{} bytes left after {what}",
                self.bytes.len()
            )))
        }
    }
}

impl TaskSnapshot {
    /// Bytes of state (operator and channel state), as reported.
    pub fn state_size(&self) -> u64 {
        self.operator_state.len() as u64 + self.in_flight_bytes()
    }

    /// Bytes of persisted in-flight data.
    pub fn in_flight_bytes(&self) -> u64 {
        self.channel_state
            .iter()
            .map(|c| c.bytes.len() as u64)
            .sum()
    }

    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StateWriter(Vec::with_capacity(64 + self.state_size() as usize));
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u64(self.checkpoint_id);
        w.u32(self.task.vertex);
        w.u32(self.task.subtask);
        w.bytes(&self.operator_state);
        w.u32(self.channel_state.len() as u32);
        for c in &self.channel_state {
            w.u32(c.gate);
            w.u32(c.channel);
            w.bytes(&c.bytes);
        }
        let crc = crc32fast::hash(&w.0);
        w.u32(crc);
        w.0
    }

    /// Decodes [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        if bytes.len() < 4 {
            return Err(StateError::Truncated {
                what: "checksum",
                need: 4,
                left: bytes.len(),
            });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(StateError::Checksum { stored, computed });
        }
        let mut r = StateReader::new(body);
        if r.take("magic", 4)? != MAGIC {
            return Err(StateError::Format(0));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(StateError::Format(version));
        }
        let checkpoint_id = r.u64("checkpoint id")?;
        let task = TaskKey {
            vertex: r.u32("vertex")?,
            subtask: r.u32("subtask")?,
        };
        let operator_state = r.bytes("operator state")?.to_vec();
        let channels = r.u32("channel count")?;
        let mut channel_state = Vec::new();
        for _ in 0..channels {
            channel_state.push(ChannelState {
                gate: r.u32("gate")?,
                channel: r.u32("channel")?,
                bytes: r.bytes("channel state")?.to_vec(),
            });
        }
        r.finish("the snapshot")?;
        Ok(Self {
            checkpoint_id,
            task,
            operator_state,
            channel_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskSnapshot {
        let mut w = StateWriter::default();
        w.u64(42);
        w.u64s(&[1, 2, 3]);
        TaskSnapshot {
            checkpoint_id: 7,
            task: TaskKey {
                vertex: 2,
                subtask: 1,
            },
            operator_state: w.0,
            channel_state: vec![ChannelState {
                gate: 0,
                channel: 3,
                bytes: vec![9; 17],
            }],
        }
    }

    #[test]
    fn a_snapshot_round_trips() {
        let s = sample();
        let decoded = TaskSnapshot::decode(&s.encode()).unwrap();
        assert_eq!(decoded, s);
        assert_eq!(s.in_flight_bytes(), 17);
        let mut r = StateReader::new(&decoded.operator_state);
        assert_eq!(r.u64("position").unwrap(), 42);
        let mut table = [0u64; 3];
        r.u64s_into("table", &mut table).unwrap();
        assert_eq!(table, [1, 2, 3]);
        r.finish("state").unwrap();
    }

    #[test]
    fn every_corruption_is_an_error_never_a_panic() {
        let bytes = sample().encode();
        // Every truncation and every single flipped bit is refused.
        for len in 0..bytes.len() {
            assert!(TaskSnapshot::decode(&bytes[..len]).is_err(), "length {len}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(TaskSnapshot::decode(&b).is_err(), "byte {i}");
        }
        // A length field claiming more than is there, with a valid checksum.
        let mut w = StateWriter::default();
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u64(1);
        w.u32(0);
        w.u32(0);
        w.u64(u64::MAX);
        let crc = crc32fast::hash(&w.0);
        w.u32(crc);
        assert!(matches!(
            TaskSnapshot::decode(&w.0),
            Err(StateError::Truncated { .. })
        ));
    }

    #[test]
    fn a_table_of_another_size_is_a_mismatch() {
        let mut w = StateWriter::default();
        w.u64s(&[1, 2]);
        let mut table = [0u64; 3];
        assert!(matches!(
            StateReader::new(&w.0).u64s_into("keyed table", &mut table),
            Err(StateError::Mismatch(_))
        ));
    }
}
