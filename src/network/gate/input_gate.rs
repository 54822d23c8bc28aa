//! Flink's `SingleInputGate`: one task input over many channels.

use super::input_channel::Read;
use super::{ChannelAvailability, ChannelMetrics, InputChannel};
use crate::network::event::Event;
use crate::network::serde::{EachRecord, RecordConsumer, SerdeError, VALUE_RUN};
use crate::sync::{Arc, Parker};

/// What one [`InputGate::poll`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// One buffer of `channel` was read; `records` records were handed to the
    /// callback (0 if the buffer only continued a spanning record).
    Records {
        /// The channel read.
        channel: usize,
        /// Records yielded.
        records: usize,
    },
    /// An in-band event arrived on `channel`.
    Event {
        /// The channel it arrived on.
        channel: usize,
        /// The event.
        event: Event,
    },
    /// No channel has anything now: wait for input.
    Empty,
    /// Every channel delivered `EndOfPartition`.
    Finished,
    /// A checkpoint barrier was announced on some channel (see
    /// [`InputGate::announcements`]); nothing was read.
    Priority,
}

/// Why reading a gate failed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A channel's byte stream is not well-formed.
    #[error("input channel {channel}: {source}")]
    Serde {
        /// The channel.
        channel: usize,
        /// What went wrong.
        source: SerdeError,
    },
}

/// A task's input over `n` channels. Knows which channels have data through
/// a [`ChannelAvailability`] queue (no scan over all channels) and serves
/// them round-robin, one buffer per turn.
///
/// A channel read to the end of what its producer published, while the
/// producer still writes its segment, is *watched* rather than dequeued
/// (up to [`WATCHED`] of them): the gate looks at its position when the
/// queue is empty, so a producer publishing record after record (buffer
/// timeout 0) pays no enqueue and the gate no dequeue for each.
#[derive(Debug)]
pub struct InputGate {
    availability: Arc<ChannelAvailability>,
    channels: Vec<InputChannel>,
    finished_channels: usize,
    /// Where runs of 8-byte records are decoded, for every channel.
    values: Box<[u64; VALUE_RUN]>,
    /// Channels read dry whose flag stays set (see the type's docs).
    watched: Vec<u32>,
    /// Channels blocked by a checkpoint's alignment (their barrier came).
    blocked: Vec<bool>,
    /// Whether any channel is blocked (the one check on the read path).
    blocking: bool,
    /// Blocked channels taken off the queue, flags still set: queued again
    /// when alignment ends.
    deferred: Vec<u32>,
}

/// The most channels a gate watches; beyond, a channel read dry leaves the
/// queue as usual (a watched channel costs a look per empty poll).
pub const WATCHED: usize = 4;

impl InputGate {
    /// A gate over `channels`, in the order their producers were wired to
    /// `availability`.
    pub fn new(availability: Arc<ChannelAvailability>, channels: Vec<InputChannel>) -> Self {
        assert_eq!(
            availability.channels(),
            channels.len(),
            "the availability signal covers every channel"
        );
        let n = channels.len();
        Self {
            availability,
            channels,
            finished_channels: 0,
            values: Box::new([0; VALUE_RUN]),
            watched: Vec::with_capacity(WATCHED),
            blocked: vec![false; n],
            blocking: false,
            deferred: Vec::with_capacity(n),
        }
    }

    /// Blocks channel `channel` until [`unblock_all`](Self::unblock_all):
    /// nothing after its checkpoint barrier is read before every channel
    /// delivered the barrier (Flink's `CheckpointedInputGate` blocking a
    /// channel during aligned checkpoints).
    pub fn block(&mut self, channel: usize) {
        self.blocked[channel] = true;
        self.blocking = true;
    }

    /// Ends alignment: every blocked channel is read again.
    pub fn unblock_all(&mut self) {
        if !self.blocking {
            return;
        }
        self.blocked.iter_mut().for_each(|b| *b = false);
        self.blocking = false;
        for index in self.deferred.drain(..) {
            // Its flag stayed set while it was deferred.
            self.availability.requeue(index);
        }
    }

    /// Clears the gate's announcement flag and calls `f(channel, (id,
    /// timestamp, position))` for every channel's latest announcement
    /// (Flink's priority events, polled first).
    pub fn announcements(&self, mut f: impl FnMut(usize, (u64, u64, u64))) {
        if !self.availability.take_priority() {
            return;
        }
        for channel in 0..self.channels.len() {
            if let Some(announcement) = self.availability.announcement(channel) {
                f(channel, announcement);
            }
        }
    }

    /// Whether a barrier was announced and not looked at (one relaxed load).
    #[inline]
    pub fn has_priority(&self) -> bool {
        self.availability.has_priority()
    }

    /// Channel `channel`'s stream position (bytes read).
    pub fn position(&self, channel: usize) -> u64 {
        self.channels[channel].position()
    }

    /// Starts capturing channel `channel`'s in-flight bytes.
    pub fn start_capture(&mut self, channel: usize) {
        self.channels[channel].start_capture();
    }

    /// Ends channel `channel`'s capture at stream position `barrier`.
    pub fn finish_capture(&mut self, channel: usize, barrier: u64) -> Option<Vec<u8>> {
        self.channels[channel].finish_capture(barrier)
    }

    /// What is queued on channel `channel` up to stream position `barrier`,
    /// after the deserializer's partial record.
    pub fn in_flight(&self, channel: usize, barrier: u64) -> Vec<u8> {
        let c = &self.channels[channel];
        let mut bytes = Vec::new();
        c.deserializer.partial_bytes(&mut bytes);
        c.copy_in_flight(barrier, &mut bytes);
        bytes
    }

    /// Whether channel `channel` delivered `EndOfPartition`.
    pub fn is_channel_finished(&self, channel: usize) -> bool {
        self.channels[channel].is_finished()
    }

    /// Bytes read so far over all channels.
    pub fn bytes_in(&self) -> u64 {
        self.channels.iter().map(|c| c.metrics().bytes_in).sum()
    }

    /// Buffers queued in the gate's channels, not yet read to their end
    /// (Flink's `getBuffersInUseCount`).
    pub fn queued_buffers(&mut self) -> usize {
        self.channels.iter_mut().map(|c| c.ring.len()).sum()
    }

    /// Asks every channel's producer for buffers of at most `bytes` (the
    /// debloater's announcement).
    pub fn set_buffer_size(&self, bytes: u32) {
        for channel in 0..self.channels.len() {
            self.availability.set_buffer_size(channel, bytes);
        }
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Whether every channel delivered `EndOfPartition`.
    pub fn is_finished(&self) -> bool {
        self.finished_channels == self.channels.len()
    }

    /// Whether some channel has something (the park re-check; a hint).
    #[inline]
    pub fn has_input(&self) -> bool {
        self.availability.has_queued()
            || self
                .watched
                .iter()
                .any(|&c| self.channels[c as usize].has_news())
    }

    /// A watched channel with news, taken off the watch list.
    #[inline]
    fn next_watched(&mut self) -> Option<u32> {
        let at = self
            .watched
            .iter()
            .position(|&c| self.channels[c as usize].has_news())?;
        Some(self.watched.swap_remove(at))
    }

    /// The consumer task's parker the producers wake.
    pub fn parker(&self) -> &Arc<Parker> {
        self.availability.consumer()
    }

    /// Channel `index`'s counters.
    pub fn channel_metrics(&self, index: usize) -> ChannelMetrics {
        self.channels[index].metrics()
    }

    /// Counters summed over all channels.
    pub fn metrics(&self) -> ChannelMetrics {
        self.channels
            .iter()
            .fold(ChannelMetrics::default(), |mut sum, channel| {
                let m = channel.metrics();
                sum.records_in += m.records_in;
                sum.buffers_in += m.buffers_in;
                sum.bytes_in += m.bytes_in;
                sum
            })
    }

    /// Reads the next slice of published bytes, or the next event, of the
    /// next channel with data. Records are handed to `on_record` as
    /// zero-copy views (records that spanned segments from the channel's
    /// spill buffer); a segment read to its end goes back to its producer's
    /// pool before this returns.
    #[inline]
    pub fn poll(&mut self, on_record: impl FnMut(&[u8])) -> Result<Poll, GateError> {
        self.poll_into(&mut EachRecord(on_record))
    }

    /// [`poll`](Self::poll) into a [`RecordConsumer`], which takes runs of
    /// 8-byte records as batches of values (the task loop's path).
    ///
    /// A channel read stays queued while its producer has published more
    /// (behind the other queued channels, so none starves); one that ran
    /// dry leaves the queue, and its producer's next publish queues it
    /// again (Flink queues a channel only when it goes from nothing to read
    /// to something).
    #[inline]
    pub fn poll_into(&mut self, consumer: &mut impl RecordConsumer) -> Result<Poll, GateError> {
        loop {
            let Some(index) = self.availability.next().or_else(|| self.next_watched()) else {
                return Ok(if self.is_finished() {
                    Poll::Finished
                } else {
                    Poll::Empty
                });
            };
            if self.blocking && self.blocked[index as usize] {
                self.deferred.push(index);
                continue;
            }
            let channel = &mut self.channels[index as usize];
            let read = channel.read(consumer, &mut self.values, &self.availability);
            if channel.has_news() {
                self.availability.requeue(index);
            } else if channel.reads_open_segment() && self.watched.len() < WATCHED {
                // Its producer is still writing: keep the flag, watch it.
                self.watched.push(index);
            } else {
                let channel = &*channel;
                self.availability
                    .dequeue_empty(index, || channel.has_news());
            }
            let channel_index = index as usize;
            match read.map_err(|source| GateError::Serde {
                channel: channel_index,
                source,
            })? {
                Read::Nothing => continue,
                Read::Priority => return Ok(Poll::Priority),
                Read::Records(records) => {
                    return Ok(Poll::Records {
                        channel: channel_index,
                        records,
                    })
                }
                Read::Event(event) => {
                    if event == Event::EndOfPartition {
                        self.finished_channels += 1;
                    }
                    return Ok(Poll::Event {
                        channel: channel_index,
                        event,
                    });
                }
            }
        }
    }
}
