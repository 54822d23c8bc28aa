//! The bounded, allocation-free mailbox of one task (Flink's
//! `TaskMailboxImpl`).

use std::fmt;

use super::Mail;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{thread, Arc, BoundedQueue, CachePadded, Parker};

/// Low two bits of [`TaskMailbox::state`]. The values only ever gain bits
/// (OPEN → QUIESCED → CLOSED), so transitions are a `fetch_or` that cannot
/// disturb the writer count in the upper bits.
const OPEN: usize = 0;
const QUIESCED: usize = 1;
const CLOSED: usize = 3;
const STATE_MASK: usize = 3;
/// One put in flight, counted above the state bits.
const WRITER: usize = 4;

/// Where a mailbox is in its life (Flink's `TaskMailbox.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailboxState {
    /// Mails are accepted and taken.
    Open,
    /// No new mails are accepted; those queued can still be taken (the task
    /// is finishing and drains what it has).
    Quiesced,
    /// Nothing is accepted; what was queued was handed to
    /// [`TaskMailbox::close`]'s caller.
    Closed,
}

impl fmt::Display for MailboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailboxState::Open => "open",
            MailboxState::Quiesced => "quiesced",
            MailboxState::Closed => "closed",
        })
    }
}

/// Why a mail was not delivered; the mail is handed back, as rtrb's
/// `PushError::Full(T)` hands back its item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The lane holds `capacity` mails already: the task is not keeping up.
    #[error(
        "the task's mailbox lane is full ({capacity} mails); {mail:?} was not delivered, \
         retry once the task has taken some"
    )]
    Full {
        /// The mail that was not delivered.
        mail: Mail,
        /// The lane's capacity.
        capacity: usize,
    },
    /// The mailbox no longer accepts mails (the task is finishing or gone).
    #[error("the task's mailbox is {state}, so {mail:?} was not delivered; only an open mailbox accepts mails")]
    Closed {
        /// The mail that was not delivered.
        mail: Mail,
        /// The mailbox's state when the put was refused.
        state: MailboxState,
    },
}

impl MailboxError {
    /// The mail that was not delivered.
    pub fn into_mail(self) -> Mail {
        match self {
            MailboxError::Full { mail, .. } | MailboxError::Closed { mail, .. } => mail,
        }
    }
}

/// A task's mailbox: any thread puts [`Mail`]s, the task's thread takes them
/// (Flink's `TaskMailboxImpl`, minus its lock).
///
/// Two bounded lanes, each of `capacity` mails: a priority lane
/// ([`put_first`](Self::put_first), for control mails such as
/// [`Mail::Cancel`] or checkpoint triggers) that is always served before the
/// default lane ([`put`](Self::put)). Each lane is FIFO. Flink's priority
/// mails are "urgent" mails moved to the head of its batch; two lanes give
/// the same order without a lock.
///
/// # Protocol
///
/// * **Counting.** `queued` counts mails whose put has completed. A producer
///   increments it (Release) *after* pushing into its lane, so a consumer
///   that loads a non-zero count (Acquire) also sees a pushed mail and its
///   `try_take` succeeds. Only the consumer decrements it, after a
///   successful pop. [`has_mail`](Self::has_mail) is therefore a single
///   load, which is what the mailbox loop pays per iteration when no mail
///   is there. It sits on its own cache line, away from the `state` word
///   every put writes.
/// * **Waking.** After the increment a producer calls the owner's
///   [`Parker::unpark`]; the task's park re-check includes `has_mail`, so
///   the parker's fence handshake guarantees no lost wake-up.
/// * **Closing.** `state` holds the lifecycle in its low bits and the
///   number of puts in flight above them. A put registers itself with one
///   `fetch_add` that also reads the state; if the mailbox is not open it
///   backs out and hands the mail back. [`close`](Self::close) sets CLOSED
///   in the same word and then waits for the in-flight puts to finish, so
///   every mail is either delivered and drained by `close`, or refused: none
///   is stranded in a closed mailbox. Both are read-modify-writes of one
///   word, so they are totally ordered: a put either comes first (and close
///   waits for it) or sees CLOSED.
///
/// Taking is single-consumer by contract (the task's thread); taking from
/// several threads is memory-safe but makes the count a hint.
#[derive(Debug)]
pub struct TaskMailbox {
    queued: CachePadded<AtomicUsize>,
    state: CachePadded<AtomicUsize>,
    priority: BoundedQueue<Mail>,
    default: BoundedQueue<Mail>,
    capacity: usize,
    owner: Arc<Parker>,
}

impl TaskMailbox {
    /// An open mailbox whose lanes hold `capacity` mails each, for the task
    /// that parks on `owner`.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn new(capacity: usize, owner: Arc<Parker>) -> Self {
        assert!(
            capacity > 0,
            "a task mailbox needs room for at least one mail"
        );
        Self {
            queued: CachePadded::new(AtomicUsize::new(0)),
            state: CachePadded::new(AtomicUsize::new(OPEN)),
            priority: BoundedQueue::new(capacity),
            default: BoundedQueue::new(capacity),
            capacity,
            owner,
        }
    }

    /// Appends `mail` to the default lane and wakes the task; any thread.
    #[inline]
    pub fn put(&self, mail: Mail) -> Result<(), MailboxError> {
        self.put_into(&self.default, mail)
    }

    /// Appends `mail` to the priority lane, served before every default-lane
    /// mail, and wakes the task; any thread.
    #[inline]
    pub fn put_first(&self, mail: Mail) -> Result<(), MailboxError> {
        self.put_into(&self.priority, mail)
    }

    #[inline]
    fn put_into(&self, lane: &BoundedQueue<Mail>, mail: Mail) -> Result<(), MailboxError> {
        // Relaxed: the RMW's place in `state`'s modification order is all
        // that matters (see the type's docs); no data is read under it.
        let word = self.state.fetch_add(WRITER, Ordering::Relaxed);
        if word & STATE_MASK != OPEN {
            self.state.fetch_sub(WRITER, Ordering::Relaxed);
            return Err(MailboxError::Closed {
                mail,
                state: state_of(word),
            });
        }
        let pushed = lane.push(mail);
        if pushed.is_ok() {
            // Release: pairs with the Acquire load in `has_mail`/`len`; the
            // push happens before a consumer sees the count that covers it.
            self.queued.fetch_add(1, Ordering::Release);
        }
        // Release: pairs with the Acquire RMW/load in `close`; our push (and
        // count) happen before close drains the lanes.
        self.state.fetch_sub(WRITER, Ordering::Release);
        match pushed {
            Ok(()) => {
                self.owner.unpark();
                Ok(())
            }
            Err(mail) => Err(MailboxError::Full {
                mail,
                capacity: self.capacity,
            }),
        }
    }

    /// Whether a mail is queued: one atomic load, the loop's per-iteration
    /// check. A `true` seen by the task's thread means `try_take` succeeds.
    #[inline]
    pub fn has_mail(&self) -> bool {
        // Acquire: pairs with the Release increment in `put_into`.
        self.queued.load(Ordering::Acquire) != 0
    }

    /// Mails queued in both lanes (a snapshot from other threads).
    #[inline]
    pub fn len(&self) -> usize {
        // Acquire: pairs with the Release increment in `put_into`.
        self.queued.load(Ordering::Acquire)
    }

    /// Whether no mail is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        !self.has_mail()
    }

    /// Takes the next mail, priority lane first; the task's thread only.
    /// Works while open or quiesced; a closed mailbox is empty.
    #[inline]
    pub fn try_take(&self) -> Option<Mail> {
        if !self.has_mail() {
            return None;
        }
        let mail = self.priority.pop().or_else(|| self.default.pop())?;
        // Relaxed: the count only tells the consumer itself what is left;
        // producers never read it, and as an RMW it keeps their Release
        // increments visible to the next Acquire load.
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(mail)
    }

    /// Stops accepting mails; queued ones can still be taken (Flink's
    /// `quiesce`, called when the task finishes). No-op unless open.
    pub fn quiesce(&self) {
        // Relaxed: a put that comes later in `state`'s modification order
        // sees the bit; nothing else is published.
        self.state.fetch_or(QUIESCED, Ordering::Relaxed);
    }

    /// Closes the mailbox for good: puts are refused from now on, puts in
    /// flight are waited for, and the mails still queued are handed out by
    /// the returned iterator (priority lane first; dropping it discards
    /// them). Closing again yields nothing new. Flink's `close`, which
    /// returns the dropped mails.
    pub fn close(&self) -> DroppedMails<'_> {
        // Acquire: pairs with the Release `fetch_sub` in `put_into`; a put
        // that finished before our RMW has its push visible to the drain.
        let mut word = self.state.fetch_or(CLOSED, Ordering::Acquire);
        // A put in flight saw OPEN and is a few instructions from done.
        while word >= WRITER {
            thread::yield_now();
            // Acquire: pairs with the Release `fetch_sub` in `put_into`.
            word = self.state.load(Ordering::Acquire);
        }
        DroppedMails { mailbox: self }
    }

    /// The mailbox's state now.
    pub fn state(&self) -> MailboxState {
        state_of(self.state.load(Ordering::Relaxed))
    }

    /// Mails each lane holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The parker of the task this mailbox belongs to; puts unpark it.
    pub fn owner(&self) -> &Arc<Parker> {
        &self.owner
    }

    /// Asks the task to stop, from any thread: interrupts the owner, which
    /// ends any wait of its loop, and queues [`Mail::Cancel`] first so a
    /// busy loop sees it at its next `has_mail` check.
    ///
    /// If the priority lane is full, the loop checks the interrupt flag when
    /// it serves those mails; if the mailbox no longer accepts mails, the
    /// interrupt ends the loop at its next wait or mail.
    pub fn cancel(&self) {
        self.owner.interrupt();
        // Refused only when full or not open; both are covered above.
        let _ = self.put_first(Mail::Cancel);
    }
}

fn state_of(word: usize) -> MailboxState {
    match word & STATE_MASK {
        OPEN => MailboxState::Open,
        QUIESCED => MailboxState::Quiesced,
        _ => MailboxState::Closed,
    }
}

/// The mails a [`TaskMailbox::close`] found, priority lane first; dropping
/// it discards the rest.
#[derive(Debug)]
pub struct DroppedMails<'a> {
    mailbox: &'a TaskMailbox,
}

impl Iterator for DroppedMails<'_> {
    type Item = Mail;

    fn next(&mut self) -> Option<Mail> {
        let mailbox = self.mailbox;
        let mail = mailbox.priority.pop().or_else(|| mailbox.default.pop())?;
        // Relaxed: no put runs any more; keeps `has_mail` false once drained.
        mailbox.queued.fetch_sub(1, Ordering::Relaxed);
        Some(mail)
    }
}

impl Drop for DroppedMails<'_> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn mailbox(capacity: usize) -> TaskMailbox {
        TaskMailbox::new(capacity, Arc::new(Parker::new()))
    }

    fn action(id: u32) -> Mail {
        Mail::Action { id }
    }

    fn drain(mailbox: &TaskMailbox) -> Vec<Mail> {
        std::iter::from_fn(|| mailbox.try_take()).collect()
    }

    #[test]
    fn priority_lane_first_each_lane_fifo() {
        /// Puts as (priority lane?, id).
        type Puts = &'static [(bool, u32)];
        // (puts, ids in the order they are taken)
        let cases: [(Puts, &[u32]); 4] = [
            (&[(false, 1), (false, 2), (false, 3)], &[1, 2, 3]),
            (&[(true, 1), (true, 2)], &[1, 2]),
            (
                &[(false, 1), (true, 2), (false, 3), (true, 4)],
                &[2, 4, 1, 3],
            ),
            (&[], &[]),
        ];
        for (puts, expected) in cases {
            let mailbox = mailbox(4);
            for &(first, id) in puts {
                let put = if first {
                    mailbox.put_first(action(id))
                } else {
                    mailbox.put(action(id))
                };
                put.unwrap();
            }
            assert_eq!(mailbox.len(), puts.len());
            let taken = drain(&mailbox);
            let expected: Vec<_> = expected.iter().map(|&id| action(id)).collect();
            assert_eq!(taken, expected, "puts {puts:?}");
            assert!(!mailbox.has_mail());
        }
    }

    #[test]
    fn a_full_lane_hands_the_mail_back() {
        let mailbox = mailbox(2);
        mailbox.put(action(1)).unwrap();
        mailbox.put(action(2)).unwrap();
        let err = mailbox.put(action(3)).unwrap_err();
        assert_eq!(
            err,
            MailboxError::Full {
                mail: action(3),
                capacity: 2
            }
        );
        assert_eq!(err.into_mail(), action(3));
        assert!(err.to_string().contains("full"), "{err}");
        // The other lane has its own room.
        mailbox.put_first(Mail::Cancel).unwrap();
        assert_eq!(mailbox.len(), 3);
        assert_eq!(mailbox.try_take(), Some(Mail::Cancel));
        assert_eq!(mailbox.try_take(), Some(action(1)));
        mailbox.put(action(3)).unwrap();
    }

    #[test]
    fn lifecycle_decides_what_is_accepted_and_taken() {
        struct Case {
            /// Brings a mailbox holding `action(1)` into the state.
            enter: fn(&TaskMailbox),
            state: MailboxState,
            /// Whether `action(1)` can still be taken afterwards.
            still_taken: bool,
        }
        let cases = [
            Case {
                enter: |_| {},
                state: MailboxState::Open,
                still_taken: true,
            },
            Case {
                enter: TaskMailbox::quiesce,
                state: MailboxState::Quiesced,
                still_taken: true,
            },
            Case {
                enter: |m| assert_eq!(m.close().collect::<Vec<_>>(), [action(1)]),
                state: MailboxState::Closed,
                still_taken: false,
            },
        ];
        for case in cases {
            let state = case.state;
            let mailbox = mailbox(4);
            mailbox.put(action(1)).unwrap();
            (case.enter)(&mailbox);
            assert_eq!(mailbox.state(), state);
            if state == MailboxState::Open {
                mailbox.put(action(2)).unwrap();
            } else {
                let err = mailbox.put_first(action(2)).unwrap_err();
                assert_eq!(
                    err,
                    MailboxError::Closed {
                        mail: action(2),
                        state
                    }
                );
                assert!(err.to_string().contains(&state.to_string()), "{err}");
            }
            let taken = mailbox.try_take() == Some(action(1));
            assert_eq!(taken, case.still_taken, "{state}");
        }
    }

    #[test]
    fn close_drains_priority_first_and_only_once() {
        let mailbox = mailbox(4);
        mailbox.put(action(1)).unwrap();
        mailbox.put_first(action(2)).unwrap();
        mailbox.put(action(3)).unwrap();
        mailbox.quiesce();
        assert_eq!(mailbox.try_take(), Some(action(2)));
        let dropped: Vec<_> = mailbox.close().collect();
        assert_eq!(dropped, [action(1), action(3)]);
        assert!(!mailbox.has_mail());
        assert_eq!(mailbox.close().count(), 0);
        // Quiescing a closed mailbox does not reopen anything.
        mailbox.quiesce();
        assert_eq!(mailbox.state(), MailboxState::Closed);
    }

    #[test]
    fn dropping_the_drain_discards_and_resets_the_count() {
        let mailbox = mailbox(4);
        mailbox.put(action(1)).unwrap();
        mailbox.put_first(action(2)).unwrap();
        drop(mailbox.close());
        assert_eq!(mailbox.len(), 0);
        assert_eq!(mailbox.try_take(), None);
    }

    #[test]
    fn cancel_interrupts_and_queues_cancel_first() {
        let mailbox = mailbox(1);
        mailbox.put(action(1)).unwrap();
        mailbox.cancel();
        assert!(mailbox.owner().is_interrupted());
        assert_eq!(mailbox.try_take(), Some(Mail::Cancel));
        // A full priority lane or a closed mailbox still interrupts.
        let full = self::mailbox(1);
        full.put_first(action(2)).unwrap();
        full.cancel();
        assert!(full.owner().is_interrupted());
        let closed = self::mailbox(1);
        closed.close().for_each(drop);
        closed.cancel();
        assert!(closed.owner().is_interrupted());
    }

    #[test]
    #[should_panic(expected = "at least one mail")]
    fn zero_capacity_is_refused() {
        mailbox(0);
    }
}
