//! Record framing: `[u32 little-endian length][bytes]`, appended into
//! segments, a record continuing into the next buffer when it does not fit.

use crate::memory::{Buffer, BufferBuilder};

const HEADER: usize = 4;
/// The frame of an 8-byte record, and its header.
const SMALL_FRAME: usize = HEADER + 8;
const SMALL_HEADER: [u8; HEADER] = 8u32.to_le_bytes();

/// The frame of an 8-byte record: its length, then the value (little-endian).
#[inline(always)]
fn small_frame(value: u64) -> [u8; SMALL_FRAME] {
    let mut frame = [0; SMALL_FRAME];
    frame[..HEADER].copy_from_slice(&SMALL_HEADER);
    frame[HEADER..].copy_from_slice(&value.to_le_bytes());
    frame
}

/// Why a record could not be (de)serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SerdeError {
    /// A record is larger than the configured maximum.
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge {
        /// Size of the record.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A channel ended in the middle of a record.
    #[error("channel ended inside a record: {missing} bytes never arrived")]
    Truncated {
        /// Bytes of the record still missing.
        missing: usize,
    },
}

/// Appends framed records to buffer builders (Flink's `SpanningRecordSerializer`).
///
/// The serializer is stateless; a record that does not fit is tracked by the
/// caller's `written` count, so one serializer serves every subpartition.
#[derive(Clone, Copy, Debug)]
pub struct RecordSerializer {
    max_record_size: usize,
}

impl RecordSerializer {
    /// A serializer for records up to `max_record_size` bytes.
    pub fn new(max_record_size: usize) -> Self {
        Self { max_record_size }
    }

    /// The largest record accepted.
    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// Refuses a record above the maximum (call before the first `serialize`).
    #[inline]
    pub fn check(&self, record: &[u8]) -> Result<(), SerdeError> {
        if record.len() > self.max_record_size {
            return Err(SerdeError::RecordTooLarge {
                size: record.len(),
                max: self.max_record_size,
            });
        }
        Ok(())
    }

    /// Writes as much of `record`'s frame as fits into `builder`, starting at
    /// frame byte `*written` (0 for a new record). Returns `true` when the
    /// whole frame is written; otherwise the builder is full and the caller
    /// continues with a fresh builder and the same `written`.
    #[inline]
    pub fn serialize(
        &self,
        builder: &mut BufferBuilder,
        record: &[u8],
        written: &mut usize,
    ) -> bool {
        let frame = HEADER + record.len();
        if *written == 0 {
            let free = builder.unused_mut();
            if free.len() >= frame {
                free[..HEADER].copy_from_slice(&(record.len() as u32).to_le_bytes());
                copy_record(&mut free[HEADER..frame], record);
                builder.commit(frame);
                if record.len() >= PREFETCH_MIN_RECORD {
                    // A reused segment has the same layout as last time, so
                    // this is the header line the reader touched there.
                    builder.prefetch_for_write(PREFETCH_RECORDS * frame);
                }
                *written = frame;
                return true;
            }
        }
        self.serialize_spanning(builder, record, written)
    }

    /// Writes whole frames of 8-byte records, given as their values, while
    /// they fit into `builder`; returns how many were written. One loop of
    /// two fixed-size stores per record; the capacity is checked once.
    #[inline]
    pub fn serialize_values(&self, builder: &mut BufferBuilder, values: &[u64]) -> usize {
        let free = builder.unused_mut();
        let n = (free.len() / SMALL_FRAME).min(values.len());
        for (frame, value) in free[..n * SMALL_FRAME]
            .chunks_exact_mut(SMALL_FRAME)
            .zip(&values[..n])
        {
            frame[..HEADER].copy_from_slice(&SMALL_HEADER);
            frame[HEADER..].copy_from_slice(&value.to_le_bytes());
        }
        builder.commit(n * SMALL_FRAME);
        n
    }

    /// Writes one 8-byte record's frame into `builder` if it leaves room
    /// to spare (the builder is not full afterwards); otherwise writes
    /// nothing and returns `false`.
    #[inline(always)]
    pub fn serialize_value(&self, builder: &mut BufferBuilder, value: u64) -> bool {
        builder.append_small(small_frame(value))
    }

    #[cold]
    fn serialize_spanning(
        &self,
        builder: &mut BufferBuilder,
        record: &[u8],
        written: &mut usize,
    ) -> bool {
        let header = (record.len() as u32).to_le_bytes();
        if *written < HEADER {
            *written += builder.append(&header[*written..]);
        }
        if *written >= HEADER {
            *written += builder.append(&record[*written - HEADER..]);
        }
        *written == HEADER + record.len()
    }
}

/// Copies a record into its frame. Records of up to 16 bytes (the common
/// benchmark sizes) are copied with two fixed-size, possibly overlapping
/// moves instead of a call to `memcpy`, which costs more than the copy.
#[inline(always)]
pub(crate) fn copy_record(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert_eq!(dst.len(), n);
    if (8..=16).contains(&n) {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if (4..8).contains(&n) {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// How many records ahead the serializer claims the line it will write.
const PREFETCH_RECORDS: usize = 4;
/// Records smaller than this share lines; their writes need no prefetch.
const PREFETCH_MIN_RECORD: usize = 256;

/// Most 8-byte records a deserializer decodes into one batch of values.
pub const VALUE_RUN: usize = 256;

/// Where a [`RecordDeserializer`]'s records go.
pub trait RecordConsumer {
    /// One record, as a view valid for this call.
    fn record(&mut self, record: &[u8]);
    /// Consecutive 8-byte records, decoded to their values (little-endian),
    /// at most [`VALUE_RUN`]; the consumer may change them in place.
    fn values(&mut self, values: &mut [u64]);
    /// Whether to stop after the record (or run of values) just handed
    /// over, leaving the rest of the buffer unread for the next call (an
    /// announced barrier waits: Flink's input loop likewise returns to the
    /// mailbox between records). Never, unless a consumer says so.
    #[inline(always)]
    fn should_yield(&self) -> bool {
        false
    }
}

/// A closure as a [`RecordConsumer`]: 8-byte records are handed over one at
/// a time, re-encoded.
pub struct EachRecord<F>(pub F);

impl<F: FnMut(&[u8])> RecordConsumer for EachRecord<F> {
    #[inline(always)]
    fn record(&mut self, record: &[u8]) {
        (self.0)(record);
    }

    #[inline(always)]
    fn values(&mut self, values: &mut [u64]) {
        for value in values {
            (self.0)(&value.to_le_bytes());
        }
    }
}

/// Where a record being assembled across buffers stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spanning {
    /// Between records.
    None,
    /// `have` of the 4 header bytes collected.
    Header { have: usize },
    /// Header read; `len` payload bytes expected, some already spilled.
    Payload { len: usize },
}

/// Yields the records of a channel's buffers (Flink's
/// `SpillingAdaptiveSpanningRecordDeserializer`): zero-copy views of records
/// inside one buffer, and records that span buffers assembled in a spill
/// buffer sized at setup, so nothing allocates once running.
#[derive(Debug)]
pub struct RecordDeserializer {
    current: Option<Buffer>,
    position: usize,
    spanning: Spanning,
    header: [u8; HEADER],
    spill: Vec<u8>,
    max_record_size: usize,
}

impl RecordDeserializer {
    /// A deserializer for records up to `max_record_size` bytes; the spill
    /// buffer is allocated here, once.
    pub fn new(max_record_size: usize) -> Self {
        Self {
            current: None,
            position: 0,
            spanning: Spanning::None,
            header: [0; HEADER],
            spill: Vec::with_capacity(max_record_size),
            max_record_size,
        }
    }

    /// Hands over the channel's next buffer.
    ///
    /// # Panics
    /// If the previous buffer was not taken back with
    /// [`take_buffer`](Self::take_buffer).
    #[inline]
    pub fn set_next_buffer(&mut self, buffer: Buffer) {
        assert!(self.current.is_none(), "previous buffer not taken back");
        self.current = Some(buffer);
        self.position = 0;
    }

    /// Bytes of the current buffer left unread because the consumer asked
    /// to stop (whole records; 0 once the buffer is used up or its tail
    /// went into a record spanning buffers).
    #[inline]
    pub fn unread(&self) -> usize {
        match (&self.current, self.spanning) {
            (Some(buffer), Spanning::None) => buffer.len() - self.position,
            _ => 0,
        }
    }

    /// Takes the current buffer back (to recycle it) once its records are read.
    #[inline]
    pub fn take_buffer(&mut self) -> Option<Buffer> {
        self.current.take()
    }

    /// Appends the bytes of the record only partly received, as they came
    /// (header first), to `out`: an unaligned checkpoint keeps them as the
    /// start of the channel's in-flight state.
    pub fn partial_bytes(&self, out: &mut Vec<u8>) {
        match self.spanning {
            Spanning::None => {}
            Spanning::Header { have } => out.extend_from_slice(&self.header[..have]),
            Spanning::Payload { len } => {
                out.extend_from_slice(&(len as u32).to_le_bytes());
                out.extend_from_slice(&self.spill);
            }
        }
    }

    /// Whether a record is only partly received.
    pub fn has_partial_record(&self) -> bool {
        self.spanning != Spanning::None
    }

    /// Bytes of the partial record still missing, if any (for the error at
    /// end of input).
    pub fn check_complete(&self) -> Result<(), SerdeError> {
        let missing = match self.spanning {
            Spanning::None => return Ok(()),
            Spanning::Header { have } => HEADER - have,
            Spanning::Payload { len } => len - self.spill.len(),
        };
        Err(SerdeError::Truncated { missing })
    }

    /// Calls `f` for every complete record in the current buffer (and a
    /// spanning record it completes); returns how many records it yielded.
    #[inline]
    pub fn for_each_record(&mut self, f: impl FnMut(&[u8])) -> Result<usize, SerdeError> {
        self.read_records(&mut EachRecord(f))
    }

    /// Hands every complete record in the current buffer (and a spanning
    /// record it completes) to `consumer`: runs of 8-byte records decoded
    /// into batches of values, any other record as a view. Returns how many
    /// records it yielded.
    #[inline]
    pub fn read_records(
        &mut self,
        consumer: &mut impl RecordConsumer,
    ) -> Result<usize, SerdeError> {
        self.read_records_into(consumer, &mut [0; VALUE_RUN])
    }

    /// [`read_records`](Self::read_records) decoding runs into `values`, a
    /// scratch array the caller keeps (a gate keeps one for all its
    /// channels), so a buffer of a few records does not pay for clearing
    /// a fresh one.
    #[inline]
    pub fn read_records_into(
        &mut self,
        consumer: &mut impl RecordConsumer,
        values: &mut [u64; VALUE_RUN],
    ) -> Result<usize, SerdeError> {
        let mut count = 0;
        if self.spanning != Spanning::None {
            if !self.continue_spanning()? {
                return Ok(0);
            }
            consumer.record(&self.spill);
            count += 1;
            self.spanning = Spanning::None;
            if consumer.should_yield() {
                return Ok(count);
            }
        }
        let Some(buffer) = &self.current else {
            return Ok(count);
        };
        let bytes = buffer.as_slice();
        let mut pos = self.position;
        let mut yielded = false;
        loop {
            // A run of 8-byte records (Flink's `Long`s): entered only when
            // the next frame is one, decoded in blocks of `BLOCK` frames
            // without a branch per record (a block's headers are checked
            // together); the run goes to the consumer as one batch. A header
            // that is not 8 ends the run there.
            let mut run = 0;
            if bytes.get(pos..pos + HEADER) == Some(&SMALL_HEADER[..]) {
                const BLOCK: usize = 8;
                let frames = ((bytes.len() - pos) / SMALL_FRAME).min(VALUE_RUN);
                let window = &bytes[pos..pos + frames * SMALL_FRAME];
                let blocks = window.chunks_exact(BLOCK * SMALL_FRAME);
                for (block, out) in blocks.zip(values.chunks_exact_mut(BLOCK)) {
                    let mut mismatch = 0;
                    for i in 0..BLOCK {
                        let frame = &block[i * SMALL_FRAME..(i + 1) * SMALL_FRAME];
                        let (header, record) = frame.split_at(HEADER);
                        mismatch |= u32::from_le_bytes(header.try_into().expect("4 bytes")) ^ 8;
                        out[i] = u64::from_le_bytes(record.try_into().expect("8 bytes"));
                    }
                    if mismatch != 0 {
                        break;
                    }
                    run += BLOCK;
                }
                // The frames after the last whole block, and a block with
                // another record in it: one frame at a time.
                let rest = &window[run * SMALL_FRAME..];
                for (frame, value) in rest.chunks_exact(SMALL_FRAME).zip(&mut values[run..]) {
                    let (header, record) = frame.split_at(HEADER);
                    if header != SMALL_HEADER {
                        break;
                    }
                    *value = u64::from_le_bytes(record.try_into().expect("8 bytes"));
                    run += 1;
                }
            }
            if run > 0 {
                consumer.values(&mut values[..run]);
                count += run;
                pos += run * SMALL_FRAME;
                if consumer.should_yield() {
                    yielded = true;
                    break;
                }
                if run == VALUE_RUN {
                    continue;
                }
            }
            let rest = &bytes[pos..];
            if rest.len() < HEADER {
                break;
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len > self.max_record_size {
                return Err(self.too_large(len));
            }
            let Some(record) = rest.get(HEADER..HEADER + len) else {
                break;
            };
            consumer.record(record);
            count += 1;
            pos += HEADER + len;
            if consumer.should_yield() {
                yielded = true;
                break;
            }
        }
        let ended = pos == bytes.len();
        self.position = pos;
        if !ended && !yielded {
            // The tail of this buffer starts a record that spans into the next.
            self.start_spanning();
            self.continue_spanning()?;
        }
        Ok(count)
    }

    /// The next record, or `None` when the current buffer is used up.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, SerdeError> {
        if self.spanning == Spanning::None {
            let Some(buffer) = &self.current else {
                return Ok(None);
            };
            let rest = &buffer.as_slice()[self.position..];
            if rest.is_empty() {
                return Ok(None);
            }
            if rest.len() >= HEADER {
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if len > self.max_record_size {
                    return Err(self.too_large(len));
                }
                if rest.len() - HEADER >= len {
                    let start = self.position + HEADER;
                    self.position = start + len;
                    let bytes = self.current.as_ref().map_or(&[][..], Buffer::as_slice);
                    return Ok(Some(&bytes[start..start + len]));
                }
            }
            self.start_spanning();
        }
        if !self.continue_spanning()? {
            return Ok(None);
        }
        self.spanning = Spanning::None;
        Ok(Some(&self.spill))
    }

    fn start_spanning(&mut self) {
        self.spanning = Spanning::Header { have: 0 };
        self.spill.clear();
    }

    fn too_large(&self, size: usize) -> SerdeError {
        SerdeError::RecordTooLarge {
            size,
            max: self.max_record_size,
        }
    }

    /// Feeds the current buffer's unread bytes into the spanning record;
    /// returns whether the record is now complete (left in `spill`, state
    /// `Payload { len == spill.len() }`).
    #[cold]
    fn continue_spanning(&mut self) -> Result<bool, SerdeError> {
        let Some(buffer) = &self.current else {
            return Ok(false);
        };
        let bytes = &buffer.as_slice()[self.position..];
        let mut used = 0;
        if let Spanning::Header { have } = self.spanning {
            let take = (HEADER - have).min(bytes.len());
            self.header[have..have + take].copy_from_slice(&bytes[..take]);
            used = take;
            if have + take < HEADER {
                self.spanning = Spanning::Header { have: have + take };
                self.position += used;
                return Ok(false);
            }
            let len = u32::from_le_bytes(self.header) as usize;
            if len > self.max_record_size {
                return Err(self.too_large(len));
            }
            self.spanning = Spanning::Payload { len };
        }
        let Spanning::Payload { len } = self.spanning else {
            unreachable!("header handled above")
        };
        let take = (len - self.spill.len()).min(bytes.len() - used);
        // Never grows past the capacity reserved at setup: len <= max.
        self.spill.extend_from_slice(&bytes[used..used + take]);
        self.position += used + take;
        Ok(self.spill.len() == len)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::{BufferConsumer, BufferPool, MemoryConfig, SegmentPool};
    use crate::sync::{Arc, Parker};

    /// Collects what a deserializer yields, runs of values and single records apart.
    #[derive(Default)]
    struct Collect {
        records: Vec<Vec<u8>>,
        runs: usize,
    }

    impl RecordConsumer for Collect {
        fn record(&mut self, record: &[u8]) {
            self.records.push(record.to_vec());
        }
        fn values(&mut self, values: &mut [u64]) {
            assert!(!values.is_empty() && values.len() <= VALUE_RUN);
            self.runs += 1;
            let records = values.iter().map(|v| v.to_le_bytes().to_vec());
            self.records.extend(records);
        }
    }

    fn test_pool() -> BufferPool {
        let config = MemoryConfig {
            segment_size: 4096,
            total_segments: 16,
            huge_pages: false,
        };
        BufferPool::new(
            Arc::new(SegmentPool::new(&config).unwrap()),
            16,
            16,
            Arc::new(Parker::new()),
        )
        .unwrap()
    }

    /// Runs longer than VALUE_RUN and than a segment, broken by records of
    /// other sizes (and by one 8-byte record written the record way): the
    /// finished segments, and the records in order.
    fn mixed_stream(pool: &BufferPool) -> (Vec<BufferConsumer>, Vec<Vec<u8>>) {
        let serializer = RecordSerializer::new(64);
        let mut expected: Vec<Vec<u8>> = Vec::new();
        let mut buffers = Vec::new();
        let mut builder = pool.request().unwrap();
        for (run, other) in [(700u64, 3usize), (5, 12), (300, 0), (1, 9), (400, 8)] {
            let values: Vec<u64> = (0..run).map(|i| i * 0x0101_0101 + run).collect();
            let mut rest = &values[..];
            while !rest.is_empty() {
                let n = serializer.serialize_values(&mut builder, rest);
                rest = &rest[n..];
                if !rest.is_empty() {
                    // Room for less than a frame: span the next record.
                    let mut written = 0;
                    while !serializer.serialize(&mut builder, &rest[0].to_le_bytes(), &mut written)
                    {
                        buffers.push(pool.finish(builder));
                        builder = pool.request().unwrap();
                    }
                    rest = &rest[1..];
                }
            }
            expected.extend(values.iter().map(|v| v.to_le_bytes().to_vec()));
            let record: Vec<u8> = (0..other as u8).collect();
            let mut written = 0;
            while !serializer.serialize(&mut builder, &record, &mut written) {
                buffers.push(pool.finish(builder));
                builder = pool.request().unwrap();
            }
            expected.push(record);
        }
        buffers.push(pool.finish(builder));
        assert!(buffers.len() >= 4, "the stream spans segments");
        (buffers, expected)
    }

    #[test]
    fn runs_of_small_records_and_other_records_come_back_in_order() {
        let pool = test_pool();
        let (buffers, expected) = mixed_stream(&pool);

        let mut deserializer = RecordDeserializer::new(64);
        let mut got = Collect::default();
        for mut consumer in buffers {
            deserializer.set_next_buffer(consumer.build().0.unwrap());
            deserializer.read_records(&mut got).unwrap();
            deserializer.take_buffer();
            assert!(consumer.is_consumed());
            pool.recycle(consumer);
        }
        assert!(!deserializer.has_partial_record());
        assert_eq!(got.records, expected);
        assert!(got.runs >= 8, "8-byte records arrive in runs");
        assert!(pool.is_full());
    }

    /// Yields after every record or run, as a task does when a barrier is
    /// announced or an output fills.
    #[derive(Default)]
    struct Yielding(Collect);

    impl RecordConsumer for Yielding {
        fn record(&mut self, record: &[u8]) {
            self.0.record(record);
        }
        fn values(&mut self, values: &mut [u64]) {
            self.0.values(values);
        }
        fn should_yield(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_consumer_that_yields_gets_one_record_or_run_per_call_and_the_rest_later() {
        let pool = test_pool();
        let (buffers, expected) = mixed_stream(&pool);
        let mut deserializer = RecordDeserializer::new(64);
        let mut got = Yielding::default();
        let mut calls = 0;
        for mut consumer in buffers {
            let mut slice = consumer.build().0.unwrap();
            loop {
                let len = slice.len();
                deserializer.set_next_buffer(slice);
                let before = got.0.records.len();
                let runs_before = got.0.runs;
                let n = deserializer
                    .read_records_into(&mut got, &mut [0; VALUE_RUN])
                    .unwrap();
                calls += 1;
                assert_eq!(got.0.records.len() - before, n);
                let unread = deserializer.unread();
                let whole = deserializer.take_buffer().unwrap();
                if unread == 0 {
                    break;
                }
                // Stopped after one record or run, between records.
                assert!(
                    n == 1 || got.0.runs == runs_before + 1,
                    "one record or one run per call, not {n}"
                );
                assert!(!deserializer.has_partial_record());
                slice = whole.tail(len - unread);
            }
            assert!(consumer.is_consumed());
            pool.recycle(consumer);
        }
        assert!(!deserializer.has_partial_record());
        assert_eq!(got.0.records, expected, "every record once, in order");
        assert!(
            calls > expected.len() / VALUE_RUN + 10,
            "it stopped between records"
        );
        assert!(pool.is_full());
    }
}
