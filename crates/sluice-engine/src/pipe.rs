//! The append pipe and the writer thread: group commit, fsync policy,
//! fail-stop on I/O errors, and the ENOSPC retry.
//!
//! Operations append encoded records to the pipe while holding their queue's
//! lock (so the log order of one queue's records is the order their effects
//! were applied) and receive a `Ticket`; they await it after releasing the
//! lock. One writer thread takes *everything* appended since its last round,
//! writes it (one positional write per batch, or with direct writes one per
//! round: see `DirectTail`) and, under policy `Always`, hands the round to a
//! syncer thread (`sync_run`), which fsyncs and only then completes the
//! round's tickets, while the writer writes the next round (when nothing
//! was appended meanwhile and the syncer is idle, the writer fsyncs the
//! round itself): concurrent requests share one fsync, and no ticket
//! completes before an fsync that began after its record was written
//! returned. Under the other policies the writer completes the round itself.
//!
//! Failure handling:
//! * fsync error (any errno), write error other than "no space", failure to
//!   create a segment or to truncate back: **fail-stop**. The round's tickets
//!   and every later one fail with `Unavailable`; nothing is written or
//!   fsynced again by this process (a retried fsync may "succeed" after the
//!   kernel dropped the dirty pages — fsyncgate). Reads keep working. Only
//!   reopening the store (which re-reads and re-writes the unsynced tail)
//!   clears it.
//! * ENOSPC/EDQUOT on a write or while creating a segment: **degraded**. The
//!   partial write is truncated back, the unwritten batches stay queued in
//!   order (memory and log must not diverge: their effects are already
//!   visible), their tickets and all tickets arriving meanwhile fail with
//!   `Unavailable` (an unknown outcome: the effect may still become durable,
//!   as after any 5xx), and new operations are refused before they change
//!   anything. Every `enospc_retry`, or at once on `resume`, the writer tries
//!   the queued batches again; when they are written and fsynced the store
//!   accepts writes again.

use crate::codec::{encode_file_header, FILE_HEADER_BYTES, SEGMENT_MAGIC};
use crate::io::{direct_write_refused, is_no_space, open_direct_or_none, write_all_at, AlignedBuf, Io, IoFile, DIRECT_BLOCK};
use crate::limits::{INDEX_MESSAGES_PER_LOG_RECORD, LIVE_RECHECK, LOG_BYTES_PER_INDEX_BYTE, PENDING_BYTES_MAX, STALE_INDEX_LIVE};
use crate::record::Record;
use crate::FsyncPolicy;
use crate::limits::{PIPE_BUFFER_BYTES_INITIAL, PIPE_SPARE_BUFFERS, PIPE_SPARE_BUFFER_BYTES_MAX, PREPARE_NEXT_AT_BYTES_MAX, PREPARE_NEXT_AT_DIVISOR};
use crate::limits::SYNC_HAND_OVER_ROUNDS;
use crate::prealloc::{PrepWork, PREPARED_NAME};
use parking_lot::{Condvar, Mutex};
use sluice_store::StoreError;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The file name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("{n:020}.seg")
}

/// Whether the log accepts writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Accepting writes.
    Ok,
    /// Out of space: writes are refused until a retry succeeds.
    Degraded(String),
    /// An I/O error stopped the log; writes are refused until the store is reopened.
    Failed(String),
    /// Closed.
    Closed,
}

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// Completes when the records appended before it are as durable as the
/// policy promises.
pub(crate) enum Ticket {
    Ready(Result<(), StoreError>),
    Wait(oneshot::Receiver<Result<(), StoreError>>),
}

impl Ticket {
    pub async fn wait(self) -> Result<(), StoreError> {
        match self {
            Ticket::Ready(r) => r,
            Ticket::Wait(rx) => rx.await.unwrap_or_else(|_| Err(StoreError::Unavailable("log writer stopped".into()))),
        }
    }

    /// `wait` from a thread that is not running async code.
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        match self {
            Ticket::Ready(r) => r,
            Ticket::Wait(rx) => rx.blocking_recv().unwrap_or_else(|_| Err(StoreError::Unavailable("log writer stopped".into()))),
        }
    }
}

/// Records bound for one segment, starting at byte `start` of it. The first
/// `MARKER_BYTES` are a slot the writer fills with a `SyncedThrough` marker,
/// so that every byte's position in the segment is known at append time.
pub(crate) struct Batch {
    segment: u64,
    start: u64,
    bytes: Vec<u8>,
}

/// Size of an encoded `SyncedThrough` record (frame header + u64).
pub(crate) const MARKER_BYTES: u64 = crate::codec::FRAME_HEADER_BYTES as u64 + 8;

/// Where an appended record begins: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// An automatic checkpoint is due: the checkpointer runs it, and its window
/// (`PipeState::prepared_from`) opens now.
fn request_checkpoint(st: &mut PipeState) {
    st.checkpoint_requested = true;
    st.checkpoint_requests += 1;
    st.prepared_from = u64::MAX;
}

/// Ends an open checkpoint window (`PipeState::prepared_from`) after the
/// appender's current segment, unless it belongs to a pending request (a
/// checkpoint's first roll clears its own).
fn close_checkpoint_window(st: &mut PipeState) {
    if st.prepared_from == u64::MAX && !st.checkpoint_requested {
        st.prepared_from = st.segment + 1;
    }
}

/// Starts a new segment for the next appended record unless the current
/// one holds none yet; returns the segment it will go to.
fn roll_segment(st: &mut PipeState) -> u64 {
    if st.segment_len > FILE_HEADER_BYTES as u64 {
        st.segment += 1;
        st.segment_len = FILE_HEADER_BYTES as u64;
    }
    st.segment
}

pub(crate) struct PipeState {
    batches: VecDeque<Arc<Batch>>,
    /// The batches of the writer's current round, until they are written:
    /// readers of bodies find bytes here that are not in the file yet.
    writing: Vec<Arc<Batch>>,
    /// Written batches' buffers, emptied, for the next batches.
    spare: Vec<Vec<u8>>,
    waiters: Vec<Waiter>,
    pending_bytes: usize,
    appended: u64,
    completed: u64,
    segment: u64,
    segment_len: u64,
    failed: Option<String>,
    degraded: Option<String>,
    closing: bool,
    writer_exited: bool,
    resume_requested: bool,
    resume_waiters: Vec<Waiter>,
    exit_waiters: Vec<oneshot::Sender<()>>,
    since_checkpoint: u64,
    checkpoint_requested: bool,
    /// Requests made since open (`request_checkpoint`): tells the request an
    /// attempt served from one made while it ran (`checkpoint_attempted`).
    checkpoint_requests: u64,
    /// Bytes of the newest checkpoint index: the next checkpoint is due
    /// after `INDEX_BYTES_PER_LOG_BYTE` times as much log, if that is more
    /// than `checkpoint_every`.
    last_index_bytes: u64,
    /// Records appended since the last checkpoint started, and the
    /// messages the last index held: replaying records costs restart time
    /// as loading index entries does, so a checkpoint is also due after
    /// `max(every_records, last_index_messages / INDEX_MESSAGES_PER_LOG_RECORD)`
    /// records (`None`: bytes only).
    records_since_checkpoint: u64,
    last_index_messages: u64,
    every_records: Option<u64>,
    /// `appended` when the checkpointer last handled an idle period: it looks
    /// again only after something new was appended.
    idle_handled: u64,
    writer_segment: u64,
    /// Segments are preallocated (`prealloc`): the state of the next one.
    preallocate: bool,
    prep: Prep,
    /// The segment a preparation was last asked for (once per segment, so a
    /// failed preparation is not retried in a loop).
    prep_asked: u64,
    /// Remove the file being prepared as soon as it is done.
    prep_discard: bool,
    /// The next roll makes an empty segment (the log went idle).
    plain_next_roll: bool,
    /// The writer's segment was made from a prepared file.
    writer_preallocated: bool,
    /// Segments numbered below this are made empty, never from a prepared
    /// file; `u64::MAX` while a checkpoint's window is open, from its request
    /// (`request_checkpoint`) or first roll (`force_roll`) to its second roll
    /// (`roll`), which sets it to the segment after the window. By segment
    /// number, not by time: the writer opens a segment after the appender
    /// rolled to it, and a checkpoint with a small index can be over before
    /// the writer opens the segments of its window. Why: a checkpoint's
    /// rolls seal segments early, and the seal of a prepared file cuts its
    /// unused zeros on the writer's path (2 – 14 ms of `ftruncate` for tens
    /// of megabytes with the file system's online discard, every round
    /// waiting behind it), wasting the preparer's writes too.
    prepared_from: u64,
    /// Rounds written and waiting for the syncer's fsync (`FsyncPolicy::Always`),
    /// in order.
    sync_jobs: VecDeque<SyncJob>,
    /// The syncer's last fsync covered this segment up to this offset.
    synced: Position,
    /// The writer is done: the syncer finishes its jobs and exits.
    syncer_stop: bool,
    /// The syncer has jobs in hand (taken, not yet completed).
    syncing: bool,
}

/// A round written under `FsyncPolicy::Always`, whose tickets complete once
/// an fsync issued after its write returned does.
struct SyncJob {
    /// The segment written to (`None`: nothing was ever written).
    file: Option<Arc<dyn IoFile>>,
    segment: u64,
    /// The segment's bytes up to here are written.
    end: u64,
    waiters: Vec<Waiter>,
    taken_upto: u64,
}

/// The next segment's preparation (see `prealloc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prep {
    /// No prepared file, none asked for.
    None,
    /// The writer asked for one.
    Wanted,
    /// The preparer is writing it.
    Preparing,
    /// `prealloc::PREPARED_NAME` is ready to become the next segment.
    Ready,
    /// The prepared file is to be removed.
    Discard,
}

/// What the checkpointer thread is to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckpointWork {
    /// An automatic checkpoint was requested (`request`: which one, for
    /// `Pipe::checkpoint_attempted`).
    Due { request: u64 },
    /// The log was quiet for the idle period; `appended` records so far.
    Idle { appended: u64 },
    /// The store is closing.
    Close,
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub rounds: AtomicU64,
    pub fsyncs: AtomicU64,
    pub segments_created: AtomicU64,
    pub segments_preallocated: AtomicU64,
    pub segments_prepared: AtomicU64,
}

pub(crate) struct Pipe {
    st: Mutex<PipeState>,
    writer_cv: Condvar,
    sync_cv: Condvar,
    prep_cv: Condvar,
    pub(crate) ckpt_cv: Condvar,
    policy: FsyncPolicy,
    segment_bytes: u64,
    checkpoint_every: Option<u64>,
    enospc_retry: Duration,
    pub counters: Counters,
}

fn unavailable(s: &str) -> StoreError {
    StoreError::Unavailable(s.to_string())
}

impl Pipe {
    pub fn new(
        policy: FsyncPolicy,
        segment_bytes: u64,
        checkpoint_every: Option<u64>,
        enospc_retry: Duration,
        first_segment: u64,
    ) -> Pipe {
        Pipe {
            st: Mutex::new(PipeState {
                batches: VecDeque::new(),
                writing: Vec::new(),
                spare: Vec::new(),
                waiters: Vec::new(),
                pending_bytes: 0,
                appended: 0,
                completed: 0,
                segment: first_segment,
                segment_len: FILE_HEADER_BYTES as u64,
                failed: None,
                degraded: None,
                closing: false,
                writer_exited: false,
                resume_requested: false,
                resume_waiters: Vec::new(),
                exit_waiters: Vec::new(),
                since_checkpoint: 0,
                checkpoint_requested: false,
                checkpoint_requests: 0,
                idle_handled: 0,
                last_index_bytes: 0,
                records_since_checkpoint: 0,
                last_index_messages: 0,
                every_records: None,
                writer_segment: first_segment,
                preallocate: false,
                prep: Prep::None,
                prep_asked: 0,
                prep_discard: false,
                plain_next_roll: false,
                writer_preallocated: false,
                prepared_from: 0,
                sync_jobs: VecDeque::new(),
                synced: Position { segment: first_segment, offset: 0 },
                syncer_stop: false,
                syncing: false,
            }),
            writer_cv: Condvar::new(),
            sync_cv: Condvar::new(),
            prep_cv: Condvar::new(),
            ckpt_cv: Condvar::new(),
            policy,
            segment_bytes,
            checkpoint_every,
            enospc_retry,
            counters: Counters::default(),
        }
    }

    /// Refuses a write before it changes anything when the log cannot take it.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let st = self.st.lock();
        if let Some(f) = &st.failed {
            return Err(StoreError::Unavailable(format!("log stopped after an I/O error: {f}")));
        }
        if let Some(d) = &st.degraded {
            return Err(StoreError::Unavailable(format!("log out of space: {d}")));
        }
        if st.closing {
            return Err(unavailable("store closed"));
        }
        if st.pending_bytes > PENDING_BYTES_MAX {
            return Err(unavailable("log writer backlog over its limit"));
        }
        Ok(())
    }

    /// Appends one encoded record (or several, concatenated) and returns the
    /// ticket that completes when it is durable.
    pub fn append(&self, bytes: Vec<u8>) -> Ticket {
        self.append_at(bytes).0
    }

    /// `append`, also returning where the record's first byte will be in the
    /// log (`None` when it was refused). The position is fixed here: the
    /// writer writes every batch at the offset reserved for it, so a body's
    /// handle can be made before the bytes reach the file.
    pub fn append_at(&self, bytes: Vec<u8>) -> (Ticket, Option<Position>) {
        assert!(!bytes.is_empty());
        let (tx, rx) = oneshot::channel();
        let mut st = self.st.lock();
        if let Some(f) = &st.failed {
            return (Ticket::Ready(Err(StoreError::Unavailable(format!("log stopped after an I/O error: {f}")))), None);
        }
        if st.closing {
            return (Ticket::Ready(Err(unavailable("store closed"))), None);
        }
        let len = bytes.len() as u64;
        let mut ask_checkpoint = false;
        if st.segment_len > FILE_HEADER_BYTES as u64 && st.segment_len + len + MARKER_BYTES > self.segment_bytes {
            st.segment += 1;
            st.segment_len = FILE_HEADER_BYTES as u64;
            // A checkpoint held back for this roll (`due_now`) starts here.
            ask_checkpoint = !st.checkpoint_requested && self.due(&st);
            if ask_checkpoint {
                request_checkpoint(&mut st);
            }
        }
        let segment = st.segment;
        // A batch still waiting for the writer (not shared with it) grows;
        // otherwise a new batch starts with its marker slot.
        let extend = match st.batches.back_mut() {
            Some(b) => b.segment == segment && Arc::get_mut(b).is_some(),
            None => false,
        };
        if !extend {
            let start = st.segment_len;
            let mut buf = st.spare.pop().unwrap_or_else(|| Vec::with_capacity(PIPE_BUFFER_BYTES_INITIAL));
            buf.resize(MARKER_BYTES as usize, 0);
            st.batches.push_back(Arc::new(Batch { segment, start, bytes: buf }));
            st.segment_len += MARKER_BYTES;
            st.pending_bytes += MARKER_BYTES as usize;
        }
        let offset = st.segment_len;
        let b = Arc::get_mut(st.batches.back_mut().expect("a batch")).expect("batch not shared");
        b.bytes.extend_from_slice(&bytes);
        st.segment_len += len;
        st.pending_bytes += bytes.len();
        st.since_checkpoint += len;
        st.records_since_checkpoint += 1;
        st.appended += 1;
        st.waiters.push(tx);
        drop(st);
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(len, Ordering::Relaxed);
        self.writer_cv.notify_one();
        if ask_checkpoint {
            self.ckpt_cv.notify_all();
        }
        (Ticket::Wait(rx), Some(Position { segment, offset }))
    }

    /// Copies `len` bytes at `offset` of `segment` when they are appended but
    /// not written to the file yet (`None`: they are in the file, or were
    /// never appended).
    pub fn read_unwritten(&self, segment: u64, offset: u64, len: usize) -> Option<Vec<u8>> {
        let st = self.st.lock();
        st.batches.iter().chain(st.writing.iter()).find_map(|b| {
            let end = b.start + b.bytes.len() as u64;
            if b.segment != segment || offset < b.start || offset + len as u64 > end {
                return None;
            }
            let at = (offset - b.start) as usize;
            Some(b.bytes[at..at + len].to_vec())
        })
    }

    /// A ticket that completes when everything appended so far is durable.
    pub fn barrier(&self) -> Ticket {
        let mut st = self.st.lock();
        if let Some(f) = &st.failed {
            return Ticket::Ready(Err(StoreError::Unavailable(format!("log stopped after an I/O error: {f}"))));
        }
        if let Some(d) = &st.degraded {
            return Ticket::Ready(Err(StoreError::Unavailable(format!("log out of space: {d}"))));
        }
        if st.completed == st.appended {
            return Ticket::Ready(Ok(()));
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.push(tx);
        drop(st);
        self.writer_cv.notify_one();
        Ticket::Wait(rx)
    }

    /// Starts a new segment for the records appended from now on (unless the
    /// current one is still empty) and returns its number: every record
    /// appended before lies in a lower segment. Used by checkpoints.
    pub fn force_roll(&self) -> u64 {
        let mut st = self.st.lock();
        st.prepared_from = u64::MAX;
        st.since_checkpoint = 0;
        st.records_since_checkpoint = 0;
        st.checkpoint_requested = false;
        roll_segment(&mut st)
    }

    /// `force_roll` without restarting the checkpoint triggers' counts: the
    /// end of a fuzzy checkpoint, whose window (logged since its start) is
    /// replayed at restart and so counts toward the next one.
    pub fn roll(&self) -> u64 {
        let mut st = self.st.lock();
        let next = roll_segment(&mut st);
        st.prepared_from = next;
        next
    }

    /// A checkpoint ended, whether or not it reached its second roll: the
    /// segments after it may be made from prepared files again (after the
    /// appender's current one, if it stopped before that roll), unless a
    /// request made since opened the next checkpoint's window.
    pub fn end_checkpoint_window(&self) {
        close_checkpoint_window(&mut self.st.lock());
    }

    /// Where the next appended record will begin, or later: every record
    /// appended before lies below it, every one appended after at or above.
    pub fn position(&self) -> (u64, u64) {
        let st = self.st.lock();
        (st.segment, st.segment_len)
    }

    /// The lowest segment the writer may still write to.
    pub fn writer_segment(&self) -> u64 {
        let st = self.st.lock();
        st.batches.front().map_or(st.writer_segment, |b| b.segment.min(st.writer_segment))
    }

    pub fn health(&self) -> Health {
        let st = self.st.lock();
        if let Some(f) = &st.failed {
            Health::Failed(f.clone())
        } else if let Some(d) = &st.degraded {
            Health::Degraded(d.clone())
        } else if st.closing {
            Health::Closed
        } else {
            Health::Ok
        }
    }

    /// Asks the writer to retry after ENOSPC now; resolves with the outcome.
    pub fn request_resume(&self) -> Ticket {
        let mut st = self.st.lock();
        if let Some(f) = &st.failed {
            return Ticket::Ready(Err(StoreError::Unavailable(format!("log stopped after an I/O error: {f}"))));
        }
        if st.degraded.is_none() {
            return Ticket::Ready(Ok(()));
        }
        let (tx, rx) = oneshot::channel();
        st.resume_requested = true;
        st.resume_waiters.push(tx);
        drop(st);
        self.writer_cv.notify_one();
        Ticket::Wait(rx)
    }

    /// Stops accepting writes and tells the writer to flush and exit; returns
    /// a receiver that fires when it has.
    pub fn close(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.st.lock();
        st.closing = true;
        if st.writer_exited {
            let _ = tx.send(());
        } else {
            st.exit_waiters.push(tx);
        }
        drop(st);
        self.writer_cv.notify_all();
        self.ckpt_cv.notify_all();
        self.prep_cv.notify_all();
        rx
    }

    /// Segments are preallocated from now on (before the threads start).
    pub fn enable_preallocation(&self) {
        self.st.lock().preallocate = true;
    }

    /// The preparer's next job; blocks until there is one.
    pub(crate) fn next_prep_work(&self) -> PrepWork {
        let mut st = self.st.lock();
        loop {
            if st.closing {
                return PrepWork::Exit { remove: matches!(st.prep, Prep::Ready | Prep::Discard) };
            }
            match st.prep {
                Prep::Wanted => {
                    st.prep = Prep::Preparing;
                    st.prep_discard = false;
                    return PrepWork::Prepare;
                }
                Prep::Discard => return PrepWork::Remove,
                _ => self.prep_cv.wait(&mut st),
            }
        }
    }

    /// A preparation ended (`ok`: the file is complete and fsynced).
    pub(crate) fn prep_done(&self, ok: bool) {
        let mut st = self.st.lock();
        st.prep = match (ok, st.prep_discard || st.closing) {
            (true, false) => {
                self.counters.segments_prepared.fetch_add(1, Ordering::Relaxed);
                Prep::Ready
            }
            (true, true) => Prep::Discard,
            (false, _) => Prep::None,
        };
        st.prep_discard = false;
    }

    /// The preparer removed a discarded file.
    pub(crate) fn prep_removed(&self) {
        let mut st = self.st.lock();
        if st.prep == Prep::Discard {
            st.prep = Prep::None;
        }
    }

    /// The log went idle: the next roll makes an empty segment and a
    /// prepared file is removed, so the preallocation's space goes back.
    /// True when the writer's segment was made from a prepared file (the
    /// caller rolls, so that its unused zeros are cut by its seal).
    pub fn trim_preallocation(&self) -> bool {
        let mut st = self.st.lock();
        if !st.preallocate {
            return false;
        }
        st.plain_next_roll = true;
        match st.prep {
            Prep::Ready => st.prep = Prep::Discard,
            Prep::Preparing => st.prep_discard = true,
            Prep::Wanted => st.prep = Prep::None,
            Prep::None | Prep::Discard => {}
        }
        let preallocated = st.writer_preallocated;
        drop(st);
        self.prep_cv.notify_all();
        preallocated
    }

    /// Whether the writer's next segment, `no`, is to be the prepared file
    /// (which it then owns), or created empty.
    fn take_prepared(&self, no: u64) -> bool {
        let mut st = self.st.lock();
        let plain = std::mem::take(&mut st.plain_next_roll);
        if st.prep == Prep::Ready && !plain && no >= st.prepared_from {
            st.prep = Prep::None;
            return true;
        }
        false
    }

    /// Asks for the next segment to be prepared once segment `no` holds
    /// `end` bytes (`PREPARE_NEXT_AT_DIVISOR`, at most
    /// `PREPARE_NEXT_AT_BYTES_MAX`; once per segment). When the writer's
    /// segment was created empty and a prepared one is ready, the next
    /// record starts a new segment, which will be the prepared file.
    fn maybe_ask_prep(&self, st: &mut PipeState, no: u64, end: u64) {
        if !st.preallocate || st.plain_next_roll {
            return;
        }
        let ask_at = (self.segment_bytes / PREPARE_NEXT_AT_DIVISOR).min(PREPARE_NEXT_AT_BYTES_MAX);
        if st.prep_asked != no && end >= ask_at {
            st.prep_asked = no;
            if st.prep == Prep::None {
                st.prep = Prep::Wanted;
                self.prep_cv.notify_all();
            }
        }
        if st.prep == Prep::Ready && !st.writer_preallocated && st.segment == no && no + 1 >= st.prepared_from {
            roll_segment(st);
        }
    }

    pub fn is_closing(&self) -> bool {
        self.st.lock().closing
    }

    pub fn is_failed(&self) -> bool {
        self.st.lock().failed.is_some()
    }

    /// After an attempt at the checkpoint `request` asked for, successful or
    /// not: clears that request, so that a checkpoint failing before its
    /// first roll (which clears it otherwise) waits for the next threshold
    /// instead of being retried in a loop. A request made since, while the
    /// checkpoint ran, is due on the log written after its first roll and
    /// stays: the checkpointer runs it next (clearing it too held it back
    /// until a later round or roll asked again, or, on a log gone quiet, for
    /// good; a checkpoint that took tens of milliseconds on a busy machine
    /// lost the next one that way).
    pub fn checkpoint_attempted(&self, request: u64) {
        let mut st = self.st.lock();
        if st.checkpoint_requests == request {
            st.checkpoint_requested = false;
            close_checkpoint_window(&mut st);
        }
    }

    /// Blocks the checkpointer until a checkpoint is due, the log has been
    /// quiet (under `quiet_bytes` appended) for a whole `idle_after` period
    /// after something was appended, or the store closes. Quiet, not silent:
    /// a trickle of writes (a few messages a second) would otherwise keep
    /// the disk of a drained backlog for hours, until the next size trigger.
    ///
    /// While the log since the last checkpoint is past the base triggers
    /// (`checkpoint_every`, `every_records`) but not past the ones scaled by
    /// the last index, it asks `live_messages` every `LIVE_RECHECK` how many
    /// messages are stored now: a drain shrinks the next index (and the
    /// checkpoint's cost), and the scaled triggers shrink with it, so
    /// restart does not replay a whole drain on top of the peak's index.
    pub fn wait_checkpoint_work(&self, idle_after: Option<Duration>, quiet_bytes: u64, live_messages: &dyn Fn() -> u64) -> CheckpointWork {
        let mut st = self.st.lock();
        let mut seen = self.counters.bytes.load(Ordering::Relaxed);
        let mut period_end = idle_after.map(|d| Instant::now() + d);
        loop {
            if st.closing {
                return CheckpointWork::Close;
            }
            let healthy = st.failed.is_none() && st.degraded.is_none();
            if st.checkpoint_requested && healthy {
                return CheckpointWork::Due { request: st.checkpoint_requests };
            }
            // The writer wakes this thread only when a checkpoint is due, so
            // it looks at the triggers itself every `LIVE_RECHECK`.
            let recheck_at = Instant::now() + LIVE_RECHECK;
            let deadline = period_end.map_or(recheck_at, |p| p.min(recheck_at));
            if !self.ckpt_cv.wait_until(&mut st, deadline).timed_out() {
                continue;
            }
            let base = self.past_base_triggers(&st);
            let may_be_stale = self.may_be_stale(&st);
            if base || may_be_stale {
                let n = parking_lot::MutexGuard::unlocked(&mut st, live_messages);
                let (live, of) = STALE_INDEX_LIVE;
                let stale = may_be_stale && n.saturating_mul(of) <= st.last_index_messages.saturating_mul(live);
                if base && n < st.last_index_messages {
                    let scaled = u128::from(st.last_index_bytes) * u128::from(n) / u128::from(st.last_index_messages);
                    st.last_index_bytes = scaled as u64;
                    st.last_index_messages = n;
                }
                if (stale || self.due_now(&st)) && healthy && !st.checkpoint_requested {
                    request_checkpoint(&mut st);
                    return CheckpointWork::Due { request: st.checkpoint_requests };
                }
            }
            if let (Some(p), Some(idle_after)) = (period_end, idle_after) {
                if Instant::now() >= p {
                    let bytes = self.counters.bytes.load(Ordering::Relaxed);
                    let quiet = bytes.saturating_sub(seen) < quiet_bytes;
                    if quiet && healthy && !st.closing && !st.checkpoint_requested && st.appended != st.idle_handled {
                        return CheckpointWork::Idle { appended: st.appended };
                    }
                    seen = bytes;
                    period_end = Some(Instant::now() + idle_after);
                }
            }
        }
    }

    /// Whether an automatic checkpoint is due: `checkpoint_every` bytes (at
    /// least `LOG_BYTES_PER_INDEX_BYTE` times the last index) or
    /// `every_records` records (at least the last index's messages /
    /// `INDEX_MESSAGES_PER_LOG_RECORD`) since the last one.
    fn due(&self, st: &PipeState) -> bool {
        let (bytes, records) = self.due_by(st);
        bytes || records
    }

    /// `due`, split: (by bytes, by records).
    fn due_by(&self, st: &PipeState) -> (bool, bool) {
        if self.checkpoint_every.is_none() {
            return (false, false);
        }
        let every = self.checkpoint_every.map(|n| n.max(st.last_index_bytes.saturating_mul(LOG_BYTES_PER_INDEX_BYTE)));
        let every_records = st.every_records.map(|n| n.max(st.last_index_messages / INDEX_MESSAGES_PER_LOG_RECORD));
        (every.is_some_and(|n| st.since_checkpoint >= n), every_records.is_some_and(|n| st.records_since_checkpoint >= n))
    }

    /// Whether to ask for an automatic checkpoint now. One due by bytes alone
    /// waits for the next natural roll while the open segment is a prepared
    /// file, at most a segment of log later (`append_at` asks for it there,
    /// before the next segment is opened, so that one is made empty; if the
    /// log goes quiet first, a restart replays up to that segment more): the
    /// checkpoint's first roll would otherwise seal the prepared file early
    /// and cut its unused zeros on the writer's path. A bytes count restarts
    /// at a checkpoint's first roll and segments are about full-sized, so the
    /// trigger came mostly just after a natural roll, and the cut was of a
    /// fresh segment: 11 – 14 ms of `ftruncate` (online discard) once per
    /// checkpoint under `sqs-roundtrip`.
    fn due_now(&self, st: &PipeState) -> bool {
        let (bytes, records) = self.due_by(st);
        records || (bytes && !(st.writer_preallocated && st.writer_segment == st.segment))
    }

    /// Whether the last index may have gone stale (`limits::STALE_INDEX_LIVE`):
    /// large enough, and enough logged since, to count the messages stored.
    fn may_be_stale(&self, st: &PipeState) -> bool {
        let Some(every) = st.every_records.filter(|_| self.checkpoint_every.is_some()) else { return false };
        !st.checkpoint_requested && st.last_index_messages >= every.saturating_mul(2) / 5 && st.records_since_checkpoint >= every / 25
    }

    /// Past a base trigger but not (yet) due: only the last index's size
    /// holds the checkpoint back.
    fn past_base_triggers(&self, st: &PipeState) -> bool {
        let bytes = self.checkpoint_every.is_some_and(|n| st.since_checkpoint >= n);
        let records = self.checkpoint_every.is_some() && st.every_records.is_some_and(|n| st.records_since_checkpoint >= n);
        (bytes || records) && !st.checkpoint_requested && st.last_index_messages > 0
    }

    /// A checkpoint wrote an index of `bytes`: the next one waits for at
    /// least `LOG_BYTES_PER_INDEX_BYTE` times as much log.
    pub fn set_last_index(&self, bytes: u64, messages: u64) {
        let mut st = self.st.lock();
        st.last_index_bytes = bytes;
        st.last_index_messages = messages;
    }

    /// What recovery replayed counts as logged since the last checkpoint:
    /// a restart would replay it again, and a server killed more often than
    /// the triggers fire would otherwise never checkpoint (the one-hour soak,
    /// killed every 2 min during drains, restarted in up to 18.8 s).
    pub fn carry_over(&self, bytes: u64, records: u64) {
        let mut st = self.st.lock();
        st.since_checkpoint += bytes;
        st.records_since_checkpoint += records;
    }

    /// Also checkpoint after this many records (see `PipeState::every_records`).
    pub fn set_checkpoint_every_records(&self, records: Option<u64>) {
        self.st.lock().every_records = records;
    }

    /// Records appended since open.
    pub fn appended(&self) -> u64 {
        self.st.lock().appended
    }

    /// Log bytes appended since the last checkpoint started.
    pub fn since_checkpoint(&self) -> u64 {
        self.st.lock().since_checkpoint
    }

    /// The idle period that ended at `appended` records was handled.
    pub fn idle_handled(&self, appended: u64) {
        self.st.lock().idle_handled = appended;
    }

    pub(crate) fn fail_stop(&self, why: String) {
        tracing::error!(target: "sluice_engine", "log fail-stop: {why}");
        let mut st = self.st.lock();
        if st.failed.is_none() {
            st.failed = Some(why);
        }
        let msg = st.failed.clone().unwrap_or_default();
        {
            let stm = &mut *st;
            for w in stm.waiters.drain(..).chain(stm.resume_waiters.drain(..)) {
                let _ = w.send(Err(StoreError::Unavailable(format!("log stopped after an I/O error: {msg}"))));
            }
            stm.batches.clear();
            stm.writing.clear();
            stm.pending_bytes = 0;
        }
        drop(st);
        self.ckpt_cv.notify_all();
    }
}

/// Empties `writing` after a successful round, keeping the buffers of the
/// written batches (nothing else holds them now: `read_unwritten` copies
/// under the lock) as spares for the next batches.
fn recycle_written(st: &mut PipeState) {
    let st = &mut *st;
    for b in st.writing.drain(..) {
        if st.spare.len() >= PIPE_SPARE_BUFFERS {
            break;
        }
        if let Ok(Batch { mut bytes, .. }) = Arc::try_unwrap(b) {
            if bytes.capacity() <= PIPE_SPARE_BUFFER_BYTES_MAX {
                bytes.clear();
                st.spare.push(bytes);
            }
        }
    }
    st.writing.clear();
}

/// The syncer thread's body (`FsyncPolicy::Always`): fsyncs the rounds the
/// writer has written, in order, and completes their tickets, while the
/// writer writes the next rounds.
///
/// Why: a round is a write and then an fsync, each a trip to the device (on
/// the development machine about 0.07 ms each under `sqs-send`), and a
/// request arriving during a round waited for both to end before its own
/// round began. An fsync issued after a write returned covers it, and the
/// next write may be on its way meanwhile (ext4 lets one direct write and
/// one fdatasync of the same file run side by side), so the two trips of
/// consecutive rounds overlap.
///
/// The rules are the writer's: a ticket completes only after an fsync that
/// began after its round's write returned; one fsync per segment covers
/// every job of that segment taken with it; an fsync error fails the log
/// (`Pipe::fail_stop`), and once the log has failed no ticket completes
/// with success.
fn sync_run(pipe: &Pipe) {
    loop {
        let (jobs, mut synced, failed) = {
            let mut st = pipe.st.lock();
            loop {
                if !st.sync_jobs.is_empty() {
                    st.syncing = true;
                    break (st.sync_jobs.drain(..).collect::<Vec<_>>(), st.synced, st.failed.is_some());
                }
                if st.syncer_stop {
                    return;
                }
                pipe.sync_cv.wait(&mut st);
            }
        };
        let mut error = None;
        // Once the log has failed nothing is fsynced again (fsyncgate): the
        // jobs fail below.
        for (i, job) in jobs.iter().enumerate().filter(|_| !failed) {
            let last_of_segment = jobs.get(i + 1).is_none_or(|next| next.segment != job.segment);
            let Some(file) = job.file.as_ref().filter(|_| last_of_segment) else { continue };
            if synced.segment == job.segment && synced.offset >= job.end {
                continue;
            }
            match file.fsync() {
                Ok(()) => {
                    pipe.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                    synced = Position { segment: job.segment, offset: job.end };
                }
                Err(e) => {
                    error = Some(format!("fsync {}: {e}", segment_name(job.segment)));
                    break;
                }
            }
        }
        if let Some(why) = error {
            pipe.fail_stop(why);
        }
        let mut st = pipe.st.lock();
        st.synced = synced;
        let failed = st.failed.clone();
        if failed.is_none() {
            let upto = jobs.iter().map(|j| j.taken_upto).max().unwrap_or(0);
            st.completed = st.completed.max(upto);
        }
        drop(st);
        for w in jobs.into_iter().flat_map(|j| j.waiters) {
            let _ = w.send(match &failed {
                None => Ok(()),
                Some(f) => Err(StoreError::Unavailable(format!("log stopped after an I/O error: {f}"))),
            });
        }
        // Idle only once its tickets are completed: until then the writer
        // hands rounds over rather than completing them out of order.
        pipe.st.lock().syncing = false;
    }
}

enum Work {
    /// `synced`: what the syncer has fsynced (`FsyncPolicy::Always`).
    Write { batches: VecDeque<Arc<Batch>>, waiters: Vec<Waiter>, taken_upto: u64, retry: bool, synced: Position },
    Sync,
    Close,
    Exit,
}

struct OpenSegment {
    no: u64,
    /// Shared with the syncer, which fsyncs it.
    file: Arc<dyn IoFile>,
    end: u64,
    /// The file's length may exceed `end` up to here (a prepared segment's
    /// zeros); the seal truncates them.
    alloc_len: u64,
    synced: u64,
    marked: u64,
    /// Ends with a `Seal`, written after the fsync of everything before it
    /// and fsynced itself.
    sealed: bool,
    /// Where the file system allows it, records go in by direct writes:
    /// see `DirectTail`.
    direct: Option<DirectTail>,
}

/// A segment written past the page cache (`O_DIRECT`).
///
/// Why: records written through the page cache are copied into it, and a
/// prepared segment's pages are allocated and zeroed by the preparer's
/// writes first; under `sqs-send` the preparer's copies alone were a fifth of
/// the server's CPU (docs/benchmarks.md). Written directly, the bytes go from
/// this buffer to the device, the preparer's zeros too, and the page cache
/// holds only what is read back (bodies the body cache no longer has).
///
/// A direct write covers whole aligned blocks, so the block the segment ends
/// in is written again, whole, by the next round: `buf` keeps the segment's
/// bytes from the start of that block (`base`), and a round stages its
/// batches after them and writes everything in one `pwrite`, padded with
/// zeros to the block's end. Rewriting a block with its old bytes unchanged
/// leaves them intact whatever part of the write a crash cuts off (devices
/// write sectors atomically); the zeros after the segment's end are what a
/// prepared segment holds there anyway, and what recovery cuts off in a
/// last segment. The seal is written through the ordinary handle, after
/// which the segment takes no more direct writes; so does a segment whose
/// direct write the file system refused (EINVAL), its batches written again
/// through the page cache.
struct DirectTail {
    file: Box<dyn IoFile>,
    /// File offset of `buf`'s first byte: a multiple of `DIRECT_BLOCK`.
    base: u64,
    /// The segment's bytes from `base` to its end, then the batches staged
    /// by the current round.
    buf: AlignedBuf,
}

struct WriteFail {
    no_space: bool,
    why: String,
    unwritten: VecDeque<Arc<Batch>>,
    written_bytes: usize,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pipe: Arc<Pipe>,
    io: Arc<dyn Io>,
    dir: PathBuf,
    seg: Option<OpenSegment>,
    last_sync: Instant,
    retry_at: Instant,
    /// Rounds left to hand over to the syncer even when nothing follows
    /// them (`limits::SYNC_HAND_OVER_ROUNDS`).
    hand_over_rounds: u32,
}

impl Writer {
    pub fn new(pipe: Arc<Pipe>, io: Arc<dyn Io>, log_dir: &Path) -> Writer {
        Writer { pipe, io, dir: log_dir.to_path_buf(), seg: None, last_sync: Instant::now(), retry_at: Instant::now(), hand_over_rounds: 0 }
    }

    fn next_work(&mut self) -> Work {
        let pipe = self.pipe.clone();
        let mut st = pipe.st.lock();
        loop {
            if st.failed.is_some() {
                if st.closing {
                    return Work::Exit;
                }
                pipe.writer_cv.wait(&mut st);
                continue;
            }
            if let Some(why) = st.degraded.clone() {
                for w in st.waiters.drain(..) {
                    let _ = w.send(Err(StoreError::Unavailable(format!("log out of space: {why}"))));
                }
                if st.closing {
                    return Work::Exit;
                }
                if st.resume_requested || Instant::now() >= self.retry_at {
                    st.resume_requested = false;
                    let batches = std::mem::take(&mut st.batches);
                    st.writing = batches.iter().cloned().collect();
                    let taken_upto = st.appended;
                    return Work::Write { batches, waiters: Vec::new(), taken_upto, retry: true, synced: st.synced };
                }
                let at = self.retry_at;
                pipe.writer_cv.wait_until(&mut st, at);
                continue;
            }
            if !st.batches.is_empty() || !st.waiters.is_empty() {
                let batches = std::mem::take(&mut st.batches);
                st.writing = batches.iter().cloned().collect();
                let waiters = std::mem::take(&mut st.waiters);
                let taken_upto = st.appended;
                return Work::Write { batches, waiters, taken_upto, retry: false, synced: st.synced };
            }
            if st.closing {
                return Work::Close;
            }
            if let (FsyncPolicy::Interval(d), Some(seg)) = (pipe.policy, &self.seg) {
                if seg.synced < seg.end {
                    let due = self.last_sync + d;
                    if Instant::now() >= due {
                        return Work::Sync;
                    }
                    pipe.writer_cv.wait_until(&mut st, due);
                    continue;
                }
            }
            pipe.writer_cv.wait(&mut st);
        }
    }

    /// The writer thread's body. Under `FsyncPolicy::Always` a syncer thread
    /// beside it fsyncs the rounds it has written (see `sync_run`).
    pub fn run(mut self) {
        let pipe = self.pipe.clone();
        std::thread::scope(|scope| {
            let syncer = if pipe.policy == FsyncPolicy::Always {
                let spawned = std::thread::Builder::new().name("sluice-log-sync".into()).spawn_scoped(scope, || sync_run(&pipe));
                match spawned {
                    Ok(h) => Some(h),
                    Err(e) => {
                        pipe.fail_stop(format!("spawn the log syncer: {e}"));
                        None
                    }
                }
            } else {
                None
            };
            self.writer_loop(syncer.is_some());
            pipe.st.lock().syncer_stop = true;
            pipe.sync_cv.notify_all();
        });
        let mut st = self.pipe.st.lock();
        st.writer_exited = true;
        for w in st.exit_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    fn writer_loop(&mut self, pipelined: bool) {
        loop {
            match self.next_work() {
                Work::Exit => break,
                Work::Close => {
                    self.close_segment();
                    break;
                }
                Work::Sync => {
                    if let Err(e) = self.sync() {
                        self.pipe.fail_stop(format!("fsync: {e}"));
                    }
                }
                Work::Write { batches, waiters, taken_upto, retry, synced } => {
                    if pipelined {
                        // The markers this round writes claim what the syncer has fsynced.
                        if let Some(seg) = self.seg.as_mut().filter(|s| s.no == synced.segment) {
                            seg.synced = seg.synced.max(synced.offset.min(seg.end));
                        }
                    }
                    self.round(batches, waiters, taken_upto, retry, pipelined)
                }
            }
        }
    }

    fn round(&mut self, batches: VecDeque<Arc<Batch>>, waiters: Vec<Waiter>, taken_upto: u64, retry: bool, pipelined: bool) {
        self.pipe.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let total: usize = batches.iter().map(|b| b.bytes.len()).sum();
        match self.write_batches(batches) {
            Ok(()) => {}
            Err(f) if f.no_space => {
                tracing::warn!(target: "sluice_engine", "log write out of space, retrying every {:?}: {}", self.pipe.enospc_retry, f.why);
                self.retry_at = Instant::now() + self.pipe.enospc_retry;
                let mut st = self.pipe.st.lock();
                st.pending_bytes = st.pending_bytes.saturating_sub(f.written_bytes);
                st.writing.clear();
                for b in f.unwritten.into_iter().rev() {
                    st.batches.push_front(b);
                }
                st.degraded = Some(f.why.clone());
                let msg = format!("log out of space: {}", f.why);
                let st = &mut *st;
                for w in waiters.into_iter().chain(st.waiters.drain(..)).chain(st.resume_waiters.drain(..)) {
                    let _ = w.send(Err(StoreError::Unavailable(msg.clone())));
                }
                return;
            }
            Err(f) => {
                self.pipe.fail_stop(f.why);
                for w in waiters {
                    let _ = w.send(Err(unavailable("log stopped after an I/O error")));
                }
                return;
            }
        }
        let mut st = self.pipe.st.lock();
        // The syncer fsyncs the round while this thread writes the next one
        // when there is a next one, the syncer is still at work (its tickets
        // complete in order), or requests lately waited for an fsync of this
        // thread's (`SYNC_HAND_OVER_ROUNDS`); otherwise this thread fsyncs it
        // itself (below), sparing a hand-over: at one request in flight it
        // cost 0.01 – 0.03 ms per request.
        let busy = st.syncing || !st.sync_jobs.is_empty();
        let follows = !st.batches.is_empty() || !st.waiters.is_empty();
        let hand_over = pipelined && !retry && (busy || follows || self.hand_over_rounds > 0);
        self.hand_over_rounds = self.hand_over_rounds.saturating_sub(1);
        if hand_over {
            let job = SyncJob {
                file: self.seg.as_ref().map(|s| s.file.clone()),
                segment: self.seg.as_ref().map_or(0, |s| s.no),
                end: self.seg.as_ref().map_or(0, |s| s.end),
                waiters,
                taken_upto,
            };
            let due = self.settle_written(&mut st, total);
            st.sync_jobs.push_back(job);
            drop(st);
            self.pipe.sync_cv.notify_one();
            if due {
                self.pipe.ckpt_cv.notify_all();
            }
            return;
        }
        drop(st);
        let must_sync = match self.pipe.policy {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(d) => retry || Instant::now() >= self.last_sync + d,
            FsyncPolicy::Never => retry,
        };
        if must_sync {
            if let Err(e) = self.sync() {
                self.pipe.fail_stop(format!("fsync: {e}"));
                for w in waiters {
                    let _ = w.send(Err(unavailable("log stopped after an fsync error")));
                }
                return;
            }
        }
        let mut st = self.pipe.st.lock();
        if pipelined && (!st.batches.is_empty() || !st.waiters.is_empty()) {
            // Requests waited for this fsync: overlap the next ones.
            self.hand_over_rounds = SYNC_HAND_OVER_ROUNDS;
        }
        let due = self.settle_written(&mut st, total);
        if let Some(seg) = self.seg.as_ref().filter(|_| pipelined) {
            // The syncer is idle (it had nothing, and only this thread gives
            // it work): what it skips and the markers claim.
            st.synced = Position { segment: seg.no, offset: seg.synced };
        }
        st.completed = st.completed.max(taken_upto);
        if retry {
            st.degraded = None;
            tracing::info!(target: "sluice_engine", "log writable again after running out of space");
            for w in st.resume_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
        }
        drop(st);
        if due {
            self.pipe.ckpt_cv.notify_all();
        }
        for w in waiters {
            let _ = w.send(Ok(()));
        }
    }

    /// The pipe's bookkeeping once a round of `total` bytes is written,
    /// whoever fsyncs it: its buffers go back as spares, the next segment's
    /// preparation may be asked for, the backlog shrinks. True when a
    /// checkpoint became due (the caller wakes the checkpointer).
    fn settle_written(&self, st: &mut PipeState, total: usize) -> bool {
        recycle_written(st);
        if let Some(seg) = &self.seg {
            self.pipe.maybe_ask_prep(st, seg.no, seg.end);
        }
        st.pending_bytes = st.pending_bytes.saturating_sub(total);
        let due = self.pipe.due_now(st) && !st.checkpoint_requested;
        if due {
            request_checkpoint(st);
        }
        due
    }

    fn write_batches(&mut self, mut batches: VecDeque<Arc<Batch>>) -> Result<(), WriteFail> {
        let mut written_bytes = 0usize;
        // Direct writes: batches staged in the segment's tail buffer, written
        // together by `flush_direct` (before a roll and at the end).
        let mut staged: VecDeque<Arc<Batch>> = VecDeque::new();
        while let Some(b) = batches.pop_front() {
            if self.seg.as_ref().map(|s| s.no) != Some(b.segment) {
                match self.flush_direct(&mut staged, &mut written_bytes) {
                    Ok(true) => {}
                    Ok(false) => {
                        // Refused: write them again, through the page cache.
                        batches.push_front(b);
                        while let Some(s) = staged.pop_back() {
                            batches.push_front(s);
                        }
                        continue;
                    }
                    Err((no_space, why)) => {
                        batches.push_front(b);
                        staged.extend(batches);
                        return Err(WriteFail { no_space, why, unwritten: staged, written_bytes });
                    }
                }
                if let Err((no_space, why)) = self.roll_to(b.segment) {
                    batches.push_front(b);
                    return Err(WriteFail { no_space, why, unwritten: batches, written_bytes });
                }
            }
            let seg = self.seg.as_mut().expect("segment open after roll");
            let start = seg.direct.as_ref().map_or(seg.end, |d| d.base + d.buf.len() as u64);
            // The pipe reserved this batch's place; the writer writes nothing
            // else into a segment but its seal, so the two never disagree.
            if start != b.start {
                let why = format!("batch of {} would be written at {start}, reserved at {}", segment_name(seg.no), b.start);
                batches.push_front(b);
                staged.extend(batches);
                return Err(WriteFail { no_space: false, why, unwritten: staged, written_bytes });
            }
            // Fill the marker slot: everything before `synced` was fsynced
            // (an unchanged offset repeats a claim already made, harmlessly).
            let mut buf = Vec::new();
            Record::SyncedThrough { offset: seg.synced }.encode(&mut buf);
            assert_eq!(buf.len() as u64, MARKER_BYTES);
            let rest = &b.bytes[buf.len()..];
            if let Some(d) = seg.direct.as_mut() {
                d.buf.extend_from_slice(&buf);
                d.buf.extend_from_slice(rest);
                staged.push_back(b);
                continue;
            }
            let res = write_all_at(seg.file.as_ref(), &buf, start).and_then(|()| {
                write_all_at(seg.file.as_ref(), rest, start + buf.len() as u64).map_err(|(e, n)| (e, n + buf.len() as u64))
            });
            match res {
                Ok(()) => {
                    seg.marked = seg.synced;
                    seg.sealed = false;
                    seg.end = start + b.bytes.len() as u64;
                    written_bytes += b.bytes.len();
                }
                Err((e, n)) => {
                    let no_space = is_no_space(&e);
                    let why = format!("write {} at {}: {e}", segment_name(seg.no), start);
                    if n > 0 {
                        // Never leave half a record behind: cut back to the
                        // last whole one. If even that fails, stop.
                        seg.alloc_len = start;
                        if let Err(te) = seg.file.truncate(start) {
                            return Err(WriteFail {
                                no_space: false,
                                why: format!("{why}; truncating back failed: {te}"),
                                unwritten: VecDeque::new(),
                                written_bytes,
                            });
                        }
                    }
                    batches.push_front(b);
                    return Err(WriteFail { no_space, why, unwritten: batches, written_bytes });
                }
            }
        }
        match self.flush_direct(&mut staged, &mut written_bytes) {
            Ok(true) => Ok(()),
            // Refused: the segment writes through the page cache from now on.
            Ok(false) => self.write_batches(staged).map_err(|f| WriteFail { written_bytes: written_bytes + f.written_bytes, ..f }),
            Err((no_space, why)) => Err(WriteFail { no_space, why, unwritten: staged, written_bytes }),
        }
    }

    /// Writes the batches staged in the open segment's tail buffer, with its
    /// last partial block before them, in one direct write. On success they
    /// are taken out of `staged` (`Ok(true)`); on failure they stay there
    /// (unwritten), the buffer and the segment are as before, and a partial
    /// write is cut back. `Ok(false)`: the file system refused the direct
    /// write itself (EINVAL: an alignment it does not take, which opening
    /// the file did not tell), so the segment stops writing directly and the
    /// caller writes `staged` through the page cache instead, rather than
    /// stopping the log.
    fn flush_direct(&mut self, staged: &mut VecDeque<Arc<Batch>>, written_bytes: &mut usize) -> Result<bool, (bool, String)> {
        let Some(seg) = self.seg.as_mut() else { return Ok(true) };
        let Some(d) = seg.direct.as_mut() else { return Ok(true) };
        if staged.is_empty() {
            return Ok(true);
        }
        let end = d.base + d.buf.len() as u64;
        let base = d.base;
        let bytes = d.buf.padded();
        let padded_end = base + bytes.len() as u64;
        match write_all_at(d.file.as_ref(), bytes, base) {
            Ok(()) => {
                seg.alloc_len = seg.alloc_len.max(padded_end);
                seg.marked = seg.synced;
                seg.sealed = false;
                seg.end = end;
                *written_bytes += staged.drain(..).map(|b| b.bytes.len()).sum::<usize>();
                // Keep the block the segment now ends in.
                let keep_from = end / DIRECT_BLOCK as u64 * DIRECT_BLOCK as u64;
                d.buf.drain_front((keep_from - base) as usize);
                d.base = keep_from;
                // A burst's round (up to a segment) does not keep its memory.
                d.buf.shrink_to(PIPE_BUFFER_BYTES_INITIAL);
                Ok(true)
            }
            Err((e, n)) if direct_write_refused(&e, n) => {
                tracing::warn!(target: "sluice_engine", "direct write to {} refused: {e}; writing it through the page cache", segment_name(seg.no));
                seg.direct = None;
                Ok(false)
            }
            Err((e, n)) => {
                d.buf.truncate((seg.end - base) as usize);
                let no_space = is_no_space(&e);
                let why = format!("write {} at {}: {e}", segment_name(seg.no), seg.end);
                if n > 0 {
                    // As for a buffered write: nothing after the last whole
                    // record stays; if that fails, stop.
                    seg.alloc_len = seg.end;
                    if let Err(te) = seg.file.truncate(seg.end) {
                        return Err((false, format!("{why}; truncating back failed: {te}")));
                    }
                }
                Err((no_space, why))
            }
        }
    }

    /// Finishes the open segment (fsync) and creates segment `no`: header
    /// written and fsynced, directory fsynced, before any record goes in, so
    /// a segment's header and entry are durable before anything acknowledged
    /// depends on them. Errors: (no_space, reason).
    fn roll_to(&mut self, no: u64) -> Result<(), (bool, String)> {
        if self.seg.is_some() {
            self.seal().map_err(|(no_space, e)| (no_space, format!("seal before roll: {e}")))?;
        }
        let name = segment_name(no);
        let path = self.dir.join(&name);
        let h = FILE_HEADER_BYTES as u64;
        let prepared = if self.pipe.take_prepared(no) { self.open_prepared(no, &path) } else { None };
        let (file, alloc_len) = match prepared {
            Some(f) => f,
            None => {
                let file = self.io.open(&path, true).map_err(|e| (is_no_space(&e), format!("create {name}: {e}")))?;
                let header = encode_file_header(SEGMENT_MAGIC, no);
                let res = file.truncate(0).map_err(|e| (e, 0)).and_then(|()| write_all_at(file.as_ref(), &header, 0));
                if let Err((e, _)) = res {
                    let no_space = is_no_space(&e);
                    if no_space {
                        let _ = file.truncate(0);
                    }
                    return Err((no_space, format!("write header of {name}: {e}")));
                }
                file.fsync().map_err(|e| (false, format!("fsync {name}: {e}")))?;
                (file, h)
            }
        };
        self.io.fsync_dir(&self.dir).map_err(|e| (false, format!("fsync log directory: {e}")))?;
        self.pipe.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.pipe.counters.segments_created.fetch_add(1, Ordering::Relaxed);
        let direct = self.open_direct(&path, no);
        self.seg = Some(OpenSegment { no, file: Arc::from(file), end: h, alloc_len, synced: h, marked: h, sealed: false, direct });
        let mut st = self.pipe.st.lock();
        st.writer_segment = no;
        st.writer_preallocated = alloc_len > h;
        Ok(())
    }

    /// Makes the prepared file segment `no`: header written and fsynced,
    /// then renamed (the caller fsyncs the directory). `None` if that fails
    /// before the rename (the file is removed; the segment is created empty
    /// instead): nothing depends on a prepared file.
    fn open_prepared(&mut self, no: u64, path: &Path) -> Option<(Box<dyn IoFile>, u64)> {
        let tmp = self.dir.join(PREPARED_NAME);
        let res = (|| -> std::io::Result<(Box<dyn IoFile>, u64)> {
            let file = self.io.open(&tmp, false)?;
            let len = file.len()?;
            write_all_at(file.as_ref(), &encode_file_header(SEGMENT_MAGIC, no), 0).map_err(|(e, _)| e)?;
            file.fsync()?;
            self.io.rename(&tmp, path)?;
            Ok((file, len.max(FILE_HEADER_BYTES as u64)))
        })();
        match res {
            Ok(f) => {
                self.pipe.counters.segments_preallocated.fetch_add(1, Ordering::Relaxed);
                Some(f)
            }
            Err(e) => {
                tracing::warn!(target: "sluice_engine", "using the prepared segment as {}: {e}; creating it empty", segment_name(no));
                let _ = self.io.remove(&tmp);
                None
            }
        }
    }

    /// The direct-write state of a segment just created as `path`, its
    /// header (already written and fsynced) as the start of its tail; `None`
    /// where direct writes are not available, and unless every round is
    /// fsynced (`FsyncPolicy::Always`): with the other policies a round is
    /// acknowledged once written, and a copy into the page cache is quicker
    /// than a wait for the device.
    fn open_direct(&mut self, path: &Path, no: u64) -> Option<DirectTail> {
        if self.pipe.policy != FsyncPolicy::Always {
            return None;
        }
        let file = open_direct_or_none(self.io.as_ref(), path)?;
        let mut buf = AlignedBuf::zeroed(PIPE_BUFFER_BYTES_INITIAL);
        buf.extend_from_slice(&encode_file_header(SEGMENT_MAGIC, no));
        Some(DirectTail { file, base: 0, buf })
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.last_sync = Instant::now();
        let Some(seg) = self.seg.as_mut() else { return Ok(()) };
        if seg.synced == seg.end {
            return Ok(());
        }
        // The syncer may have failed the log meanwhile: nothing is fsynced
        // again (fsyncgate).
        if self.pipe.is_failed() {
            return Err(std::io::Error::other("the log stopped after an I/O error"));
        }
        seg.file.fsync()?;
        self.pipe.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        seg.synced = seg.end;
        Ok(())
    }

    /// Seals the open segment: fsync, then a `Seal` record (which vouches for
    /// every byte before it), fsync again. Recovery
    /// requires every segment but the last to end with a seal, which catches
    /// a finished segment cut at a record boundary. Errors: (no_space, why).
    fn seal(&mut self) -> Result<(), (bool, String)> {
        self.sync().map_err(|e| (false, format!("fsync: {e}")))?;
        let Some(seg) = self.seg.as_mut() else { return Ok(()) };
        if seg.sealed {
            return Ok(());
        }
        // The seal goes through the ordinary handle, and so does anything
        // after it.
        seg.direct = None;
        if seg.alloc_len > seg.end {
            // A prepared segment: its unused zeros go before the seal.
            seg.file.truncate(seg.end).map_err(|e| (false, format!("truncate {} before its seal: {e}", segment_name(seg.no))))?;
            seg.alloc_len = seg.end;
        }
        let mut buf = Vec::new();
        Record::Seal { offset: seg.end }.encode(&mut buf);
        if let Err((e, n)) = write_all_at(seg.file.as_ref(), &buf, seg.end) {
            if n > 0 {
                seg.file.truncate(seg.end).map_err(|te| (false, format!("write seal: {e}; truncating back failed: {te}")))?;
            }
            return Err((is_no_space(&e), format!("write seal of {}: {e}", segment_name(seg.no))));
        }
        seg.end += buf.len() as u64;
        seg.marked = seg.end - buf.len() as u64;
        seg.sealed = true;
        self.sync().map_err(|e| (false, format!("fsync seal: {e}")))
    }

    /// Clean shutdown: everything written is fsynced and the segment sealed,
    /// so that at the next open every byte of it is vouched for.
    fn close_segment(&mut self) {
        if let Err((_, why)) = self.seal() {
            self.pipe.fail_stop(format!("at close: {why}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_appended_records_positions_are_fixed_and_unwritten_bytes_readable() {
        // No writer thread: everything stays in the pipe.
        let pipe = Pipe::new(FsyncPolicy::Always, 4096, None, Duration::from_secs(1), 7);
        let (_, a) = pipe.append_at(vec![1u8; 100]);
        // The next record goes exactly where `position` said (extending the
        // batch), never below it: a checkpoint range taken there covers it.
        let before_b = pipe.position();
        let (_, b) = pipe.append_at(vec![2u8; 50]);
        let b_at = b.map(|p| (p.segment, p.offset));
        assert_eq!(b_at, Some(before_b));
        let h = FILE_HEADER_BYTES as u64;
        assert_eq!(a, Some(Position { segment: 7, offset: h + MARKER_BYTES }));
        assert_eq!(b, Some(Position { segment: 7, offset: h + MARKER_BYTES + 100 }));
        assert_eq!(pipe.read_unwritten(7, h + MARKER_BYTES + 100, 50), Some(vec![2u8; 50]));
        assert_eq!(pipe.read_unwritten(7, h + MARKER_BYTES + 90, 20), Some([vec![1u8; 10], vec![2u8; 10]].concat()));
        assert_eq!(pipe.read_unwritten(8, h + MARKER_BYTES, 1), None);
        // A record that does not fit rolls to the next segment, at a new
        // batch: above the position too.
        let before_c = pipe.position();
        let (_, c) = pipe.append_at(vec![3u8; 4000]);
        assert!(c.map(|p| (p.segment, p.offset)) > Some(before_c));
        assert_eq!(c, Some(Position { segment: 8, offset: h + MARKER_BYTES }));
        assert_eq!(pipe.read_unwritten(8, h + MARKER_BYTES + 3990, 10), Some(vec![3u8; 10]));
    }

    #[test]
    fn given_a_written_round_its_buffers_are_reused_for_the_next_batches() {
        let pipe = Pipe::new(FsyncPolicy::Always, 1 << 20, None, Duration::from_secs(1), 1);
        let _ = pipe.append_at(vec![1u8; 100]);
        // What the writer does with a round: take the batches, write them
        // (dropping its references), then recycle under the lock.
        let capacity = {
            let mut st = pipe.st.lock();
            let taken = std::mem::take(&mut st.batches);
            st.writing = taken.iter().cloned().collect();
            drop(taken);
            recycle_written(&mut st);
            assert!(st.writing.is_empty());
            assert_eq!(st.spare.len(), 1);
            st.spare[0].capacity()
        };
        let (_, at) = pipe.append_at(vec![2u8; 10]);
        let h = FILE_HEADER_BYTES as u64;
        assert_eq!(at, Some(Position { segment: 1, offset: h + MARKER_BYTES + 100 + MARKER_BYTES }));
        let st = pipe.st.lock();
        assert!(st.spare.is_empty(), "the spare buffer was taken");
        let b = st.batches.back().expect("a batch");
        assert_eq!(b.bytes.capacity(), capacity);
        assert_eq!(&b.bytes[..MARKER_BYTES as usize], &[0u8; MARKER_BYTES as usize][..], "a fresh marker slot");
        assert_eq!(&b.bytes[MARKER_BYTES as usize..], &[2u8; 10][..], "no bytes of the earlier batch");
    }

    #[test]
    fn given_a_checkpoint_window_segments_begun_in_it_should_not_take_the_prepared_file_whenever_the_writer_opens_them() {
        let pipe = Pipe::new(FsyncPolicy::Always, 1 << 20, Some(1 << 30), Duration::from_secs(1), 7);
        pipe.st.lock().prep = Prep::Ready;
        pipe.append_at(vec![1u8; 100]);
        // Due, but the checkpointer has not rolled yet: a segment begun now
        // is made empty, so the first roll cuts no fresh zeros.
        request_checkpoint(&mut pipe.st.lock());
        assert!(!pipe.take_prepared(8), "a segment begun between the request and the first roll");
        assert_eq!(pipe.force_roll(), 8);
        pipe.append_at(vec![1u8; 100]);
        assert!(!pipe.take_prepared(8), "the segment between the two rolls");
        assert_eq!(pipe.roll(), 9);
        // A small index: the checkpoint is over before the writer, behind the
        // appender, opens the window's segment. It is still made empty.
        assert!(!pipe.take_prepared(8), "the window's segment, opened after the checkpoint ended");
        pipe.end_checkpoint_window();
        assert!(!pipe.take_prepared(8), "ending the window after its second roll keeps it");
        assert!(pipe.take_prepared(9), "the segment after the checkpoint");
        // A checkpoint that stops before its second roll ends the window
        // after the appender's current segment.
        pipe.st.lock().prep = Prep::Ready;
        pipe.append_at(vec![1u8; 100]);
        request_checkpoint(&mut pipe.st.lock());
        assert_eq!(pipe.force_roll(), 10);
        pipe.end_checkpoint_window();
        assert!(!pipe.take_prepared(10));
        assert!(pipe.take_prepared(11));
    }

    #[test]
    fn given_a_prepared_segment_a_bytes_trigger_should_wait_for_the_natural_roll_and_start_the_window_there() {
        let pipe = Pipe::new(FsyncPolicy::Always, 8192, Some(4096), Duration::from_secs(1), 7);
        {
            let mut st = pipe.st.lock();
            st.writer_segment = 7;
            st.writer_preallocated = true;
            st.prep = Prep::Ready;
        }
        for _ in 0..5 {
            pipe.append_at(vec![1u8; 1000]);
        }
        {
            let st = pipe.st.lock();
            assert_eq!(pipe.due_by(&st), (true, false));
            assert!(!pipe.due_now(&st), "held back while the open segment is a prepared file");
            assert!(!st.checkpoint_requested && st.prepared_from == 0);
        }
        // The next record does not fit: the natural roll asks for it, before
        // the writer opens segment 8, which is then made empty.
        let (_, at) = pipe.append_at(vec![2u8; 4000]);
        assert_eq!(at.map(|p| p.segment), Some(8));
        {
            let st = pipe.st.lock();
            assert!(st.checkpoint_requested && st.prepared_from == u64::MAX);
        }
        assert!(!pipe.take_prepared(8));
        // Where the open segment is not a prepared file there is nothing to
        // cut: a bytes trigger asks at once.
        let mut st = pipe.st.lock();
        st.writer_preallocated = false;
        assert!(pipe.due_now(&st));
        st.writer_preallocated = true;
        st.writer_segment = 6;
        assert!(pipe.due_now(&st), "the open segment is not the one a roll would seal");
    }

    #[test]
    fn given_a_request_made_while_a_checkpoint_runs_the_end_of_that_attempt_should_keep_it_and_its_window() {
        let pipe = Pipe::new(FsyncPolicy::Always, 8192, Some(4096), Duration::from_secs(1), 7);
        let next = |pipe: &Pipe| match pipe.wait_checkpoint_work(None, 0, &|| 0) {
            CheckpointWork::Due { request } => request,
            other => panic!("{other:?}"),
        };
        pipe.append_at(vec![1u8; 100]);
        request_checkpoint(&mut pipe.st.lock());
        let first = next(&pipe);
        // The checkpoint runs: its rolls, and meanwhile enough log for the
        // next one, asked for before this one ends.
        pipe.force_roll();
        pipe.append_at(vec![1u8; 100]);
        assert_eq!(pipe.roll(), 9);
        for _ in 0..5 {
            pipe.append_at(vec![1u8; 1000]);
        }
        let (_, at) = pipe.append_at(vec![1u8; 4000]);
        assert_eq!(at.map(|p| p.segment), Some(10), "a natural roll");
        assert!(pipe.st.lock().checkpoint_requested, "due by bytes at that roll");
        pipe.end_checkpoint_window();
        pipe.checkpoint_attempted(first);
        {
            let st = pipe.st.lock();
            assert!(st.checkpoint_requested, "the request made meanwhile stays");
            assert_eq!(st.prepared_from, u64::MAX, "and so does its window");
        }
        let second = next(&pipe);
        assert_ne!(second, first, "the checkpointer runs it next");
        // An attempt that fails before its first roll clears its own request
        // and window: the next threshold asks again, no retry loop.
        pipe.end_checkpoint_window();
        pipe.checkpoint_attempted(second);
        let st = pipe.st.lock();
        assert!(!st.checkpoint_requested);
        assert_eq!(st.prepared_from, 11, "the segments after the appender's may be prepared files");
    }
}
