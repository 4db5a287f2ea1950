//! `sluice-engine`: the embedded durable engine — a segmented, checksummed,
//! append-only log of semantic effects, replayed through
//! `sluice_store::queue_core::QueueCore`, with group commit, checkpoints,
//! recovery and salvage. It implements `sluice_store::Store` as `LogStore`.
//! It owns the data directory and every byte in it; queue semantics stay in
//! `QueueCore`, AWS semantics in the service crates. All file access goes
//! through the `Io` trait (`StdIo` for real, `FaultIo` for crash tests).
//!
//! # Data directory
//! `log/<20-digit n>.seg` segments, `checkpoint/<20-digit n>.ckpt` checkpoint
//! indexes (n = first segment the checkpoint does not cover),
//! `checkpoint/<n>.bodies` bodies a checkpoint moved out of mostly dead files
//! (a 32-byte header, magic "SLUICBOD", then raw bodies), `*.tmp` while a
//! checkpoint is written, `*.rejected` for checkpoints that failed validation,
//! and `log/next-segment.tmp`, the next segment being prepared.
//!
//! # Preallocated segments
//! A busy log writes into segments prepared ahead of time by their own
//! thread: zero-filled to the segment size and fsynced before use, then given
//! their header and renamed into place at the roll (`prealloc.rs`). Writes
//! then overwrite allocated blocks inside the file, so an fdatasync writes the
//! data and flushes, without also writing the inode for a new size and new
//! extents. A segment is truncated to its records before its seal, so only
//! the last segment can end in zeros; recovery cuts them
//! (`RecoveryReport::preallocated_bytes_cut`), which is not a torn tail. An
//! idle log gives the space back (the writer rolls to an empty segment and
//! the prepared file is removed). `LogOptions::preallocate_segments`, with
//! `FsyncPolicy::Always` only (the other policies do not fsync per write).
//! A checkpoint's rolls seal segments early, and sealing a prepared file
//! early would cut its unused zeros on the writer's path, so segments begun
//! from a checkpoint's request or first roll to its second roll are made
//! empty (counted by segment number, `PipeState::prepared_from`), and a
//! checkpoint due by bytes alone while the open segment is a prepared file
//! waits for the next natural roll (`Pipe::due_now`).
//!
//! # Record format (all integers little-endian)
//! Files start with a 32-byte header: `magic[8] ("SLUICSEG"/"SLUICCKP") |
//! version u32 = 1 | reserved u32 | number u64 | crc32c(bytes 0..24) u32 | 0 u32`.
//! Then frames: `magic u32 "SLR1" | len u32 | crc u32 | version u8 = 1 | type u8 |
//! reserved u16 = 0 | payload[len]`, `crc = crc32c(len ‖ version ‖ type ‖
//! reserved ‖ payload)`. The decoder checks `len` against `RECORD_BYTES_MAX`
//! and the bytes left before anything else, and every count inside a payload
//! against the bytes left, so no input makes it allocate more than the file
//! holds or panic. Record types and payloads: `record.rs` (table); tags 64–95
//! are reserved for SNS, 96–127 for Kinesis, 13–31 and 38–63 for more SQS
//! and checkpoint records; an unknown tag fails recovery as corruption rather
//! than being skipped.
//!
//! Records are *effects*, not requests: `MessagesSent` carries whole messages
//! with their sequence numbers and delay deadlines; `Received` the delivered
//! sequence numbers, their deadline, the expired ones and the dead-lettered
//! ones (as a transfer); moves and dead-lettering are one record that removes
//! from the source and inserts into the destination under new numbers, so
//! replay never decides anything and a crash never splits a move.
//!
//! # Write path and durability promise
//! Each mutating operation, under its queue lock(s), applies its effect to
//! memory and appends its record to the pipe (log order = apply order per
//! queue, and one total order overall), then awaits durability outside the
//! lock. One writer thread takes everything appended since its last round,
//! writes it, fsyncs once and completes the round's tickets (group commit).
//! * `FsyncPolicy::Always` (default): an operation returns Ok only after the
//!   fsync covering its record returned; so does one that changed nothing
//!   (it waits for a barrier), because its answer may rest on another
//!   client's effect that is applied but not durable yet. Acknowledged sends,
//!   deletes and visibility changes survive power loss.
//! * `Interval(d)`: acknowledged after `write(2)`; fsync at most `d` later.
//!   Survives kill -9; a power cut may lose the last `d` of acknowledged writes.
//! * `Never`: acknowledged after `write(2)`; fsync only when a segment is
//!   finished, at checkpoints and at close. Survives kill -9 only.
//!
//! Reads (`counts`, `get_queue`, `list_queues`) may see effects that are not
//! durable yet; no acknowledgement depends on them. A receive that was not
//! durable when the power went is simply lost (the message becomes visible
//! again, at-least-once); a receive is never answered before its record is
//! durable, so a client never holds a receipt, sequence number or message
//! that recovery does not know.
//!
//! # Failures
//! fsync errors, write EIO, a failed write that cannot be cut back:
//! fail-stop (writes get `Unavailable` until the store is reopened; reads
//! work; no fsync is retried — fsyncgate). ENOSPC: the log degrades (writes
//! refused with `Unavailable`, partial writes cut back, held records kept in
//! order) and resumes by itself once a retry (every `enospc_retry`, or
//! `LogStore::resume`) writes and fsyncs them. See `pipe.rs`.
//!
//! # Recovery
//! Newest valid checkpoint (else the previous one, else the whole log), then
//! the segments after it, checking every frame's CRC. Evidence of what was
//! durable is written into the log itself:
//! * each segment's header is fsynced (and the directory) before any record;
//! * each writer batch starts with `SyncedThrough { offset }`: everything
//!   before `offset` was fsynced before this record was written (the pipe
//!   reserves its fixed-size slot when the batch starts, so a batch written
//!   when nothing new was fsynced repeats the last offset, harmlessly);
//! * a finished segment ends with a `Seal`, written after the fsync of
//!   everything before it and fsynced itself (on roll, on clean close, and
//!   by recovery for the segment a crash left open).
//!
//! So a segment other than the last that does not end with its seal, any
//! damage in one, damage below a `SyncedThrough`, or damage followed by an
//! intact marker vouching for it, is `StoreError::Corrupt { file, offset }`
//! (open fails; nothing is served) — never "end of data". Only damage past
//! everything vouched for at the end of the last segment is cut off as a
//! torn tail (`RecoveryReport::torn_tail`); the bytes that remain but were
//! never vouched for are rewritten and fsynced before the store opens (after
//! a failed fsync the kernel may hold them "clean" in the page cache only).
//! The limit, inherent to a log without an external length record: damage
//! that destroys the last segment's final seal *and* every marker after the
//! damage (a truncation, a zeroed last page) looks like a crash; it is not
//! silent — `RecoveryReport::clean_shutdown` is false and the cut reported —
//! but it cannot be refused (R10 test: 4 772 of 5 000 random damages
//! refused as `Corrupt`, the other 228 all such end-of-last-segment cases).
//! `salvage(io, dir, out)` copies every intact record before and after a
//! damaged range into a fresh directory and proves it opens.
//!
//! # Message bodies on disk
//! `QueueCore` holds, per message, a `Payload::Stored(BodyRef)` handle —
//! file, offset, length and the CRC32C of the bytes (20 bytes) — instead of
//! the bytes; `MemoryStore` keeps `Payload::Inline`. The place of a body is
//! fixed when its `MessagesSent` record is appended: the pipe decides the
//! segment (rolls included) and the offset of every record
//! (`Pipe::append_at`), and each batch starts with a fixed-size slot for the
//! writer's `SyncedThrough` marker, so the writer writes exactly where the
//! pipe said (it fail-stops if it ever would not). Moves and dead-lettering
//! move handles, never bytes. Recovery copies no body: the decoder leaves a
//! handle relative to its record and recovery adds the frame's file offset
//! (`Record::locate_bodies`). File numbers: segment n is n, the bodies file
//! of checkpoint n is n | 2^31 (`bodies.rs`).
//!
//! `bodies.rs` resolves a handle from, in order: a byte-capped cache (second-chance LRU)
//! (`LogOptions::body_cache_bytes`, default 64 MiB; bodies enter it when sent
//! and when read), the pipe's batches not yet written (a receive racing the
//! send's write: the file is never read before the writer wrote it), then
//! `read_at` through `Io`. Every byte read from a file or the pipe is checked
//! against the handle's CRC32C. A mismatch or an I/O error answers
//! `Unavailable` naming file and offset (R13). A receive leaves such a
//! message out of its answer and serves the others (it fails only if none
//! could be read); the receive was already applied and logged, so the
//! message reappears after its visibility timeout, like any receive whose
//! answer was lost. A body that fails its CRC again when read once more
//! from the file is damaged for good: the message is *quarantined*, deleted
//! by its receipt (a logged delete) and reported at error level with its id,
//! queue, file and offset (`LogStats::quarantined`), so it cannot hold back
//! the messages received with it on every receive. (In a segment, the
//! damaged record also stops the next restart, R10, until salvage drops it.)
//! Receives read bodies after releasing the queue locks but under the epoch
//! lock, so no checkpoint repoints handles and prunes files meanwhile.
//!
//! Why a CRC in the handle rather than reading the whole record to check
//! its frame CRC: a receive reads exactly the bytes it serves (a send
//! record may carry ten bodies), and the on-disk format is unchanged. The
//! cost is the CRC of each body computed once when sent and once per
//! recovery.
//!
//! # Checkpoints, compaction and disk use
//! Every `checkpoint_every_bytes` of log, or twice the size of the last
//! index if that is more (`limits::LOG_BYTES_PER_INDEX_BYTE`: at 10 M
//! messages an index is 840 MB, and a fixed 256 MiB would write more index
//! than log); every `checkpoint_every_records` records (250,000, or a
//! quarter of the last index's messages if more: restart replays each
//! record, and 256 MiB of small receive and delete records took over 10 s to
//! replay in the soak test). The "if more" terms follow the backlog down:
//! once the base trigger is passed, the checkpointer counts the messages
//! stored every `limits::LIVE_RECHECK` (2 s) and scales the last index's
//! figures to them, so a drain is not replayed on top of the peak's index
//! (the one-hour soak restarted in 6 s with 0.8 M messages left of 3.4 M).
//! And an index goes stale: once the messages stored fall to three
//! quarters of the last index's (`limits::STALE_INDEX_LIVE`, for an index of
//! 100,000 messages or more and after 10,000 records), a checkpoint is due,
//! so a restart during a drain loads what is left rather than the peak and
//! its deletion (the soak restarted in 6.3 s with 2.0 M of 3.3 M messages
//! left before this trigger).
//! What recovery replayed counts toward the triggers after a restart
//! (`Pipe::carry_over`), and the loaded index is the "last index": a
//! server killed more often than the triggers fire still checkpoints.
//! A checkpoint also runs on `LogStore::checkpoint`. It writes an *index* of
//! the live state, every queue, message state and body *handle*, encoded
//! straight into `checkpoint/N.ckpt.tmp` (nothing is cloned: no memory in
//! proportion to the backlog). It is *fuzzy*: writers pause twice, briefly,
//! not for the backlog. Under the epoch lock the pipe rolls to segment N
//! and each queue's next sequence number is noted; then each queue's
//! messages below it are written in ranges of 1,024 sequence numbers, each
//! under that queue's lock alone, with the log position it was taken at
//! (`Record::CheckpointRange`), while requests go on, and in a second pass
//! the messages that arrived during the first; then, under the epoch lock
//! again, the pipe rolls to segment M and the *tail* is written: the
//! catalog, the messages sent or moved in since the second pass, the FIFO
//! deduplication tables, names and move tasks (`Record::CheckpointTail`
//! first). Recovery loads the index and replays segments from N; a record of
//! the window (segments N..M-1) applies to a range's message only if it lies
//! at or after the range's position, and is otherwise already in the index
//! (`state::Window`: sends and catalog changes are in the tail; a
//! dead-letter or move record applies its source side by the source range,
//! and its destination side is always in the tail, which was taken after
//! every range). Ranges probe sequence numbers from the lowest one the last
//! checkpoint found; a queue too sparse for that is listed once under its
//! lock and sorted outside it.
//! Bodies stay where they are, except in files whose live
//! bytes were under half their size (`limits::COMPACT_BELOW_LIVE_DIVISOR`)
//! when the previous checkpoint counted them (its index pass counts the
//! bytes each file holds for live messages, reused so the freeze makes one
//! pass less):
//! those bodies get a place in `checkpoint/N.bodies` and are copied there
//! after the second freeze (read through their handles, CRC checked). Before
//! the index may become visible, everything appended before the second
//! freeze is written (a pipe barrier), and every segment it points into and
//! every segment of its window is fsynced (a failure is fail-stop, as for
//! the writer's own fsyncs); then the bodies
//! file is fsynced and renamed, then the index (directory fsynced after
//! each), so a visible index always has its bodies. Then, if bodies were
//! moved, under the epoch lock again, every live handle that was moved is
//! repointed (found by queue and sequence number, and only if it is still
//! the handle moved; `checkpoint::Relocation`, 40 bytes per moved body; the
//! file of one not repointed, moved to another queue meanwhile, stays
//! referenced). Nothing else changes a handle, so the files live handles
//! point into are the index's plus those, with no second pass over every
//! message under the freeze. Then old files are
//! pruned: checkpoints beyond the two newest, segments below the older
//! kept checkpoint, and bodies files — but never a segment or bodies file a
//! live handle or a kept checkpoint points into (the store remembers each
//! kept checkpoint's files; a kept one it does not know, after a restart,
//! keeps everything until it is replaced). No live message is reclaimed (R5)
//! and the older checkpoint always still opens (fallback, R11).
//!
//! So a body is written once to the log and copied again only when most of
//! its neighbours are gone; a checkpoint costs the index (about 80 bytes per
//! message) plus those few bodies, not a copy of the backlog. Disk use stays
//! under about twice the live bodies plus two indexes plus the log since the
//! older kept checkpoint.
//!
//! That last term would stay after load stops (little logged, no
//! checkpoint due for hours), so the checkpointer also acts when a period of
//! `LogOptions::idle_checkpoint_after` (10 s) after an append was quiet (less
//! than `quiet_log_bytes`, 1 MiB, appended: a trickle of writes counts as
//! quiet): while the data directory holds more than twice the live data
//! (bodies live handles point at, estimated from the last checkpoint's
//! count scaled by the messages stored now, plus the newest index) plus
//! `limits::IDLE_RECLAIM_SLACK_BYTES`, it checkpoints, up to three times (the
//! first covers the log, the second lets the older generation's files go,
//! the third what the first compacted away). A checkpoint is named by the
//! first segment it does not cover, so one after another with nothing logged
//! between would have the same name: a `Clock` record (the engine's latest
//! time) is logged first to start a new segment. A busy log (another
//! `quiet_log_bytes` appended) ends the idle work; the next quiet period
//! looks again. A trickle of writes on a
//! large backlog causes no checkpoint storm: the disk test fails while disk
//! is within twice the live data. Recovery reads an index in 32 MiB windows
//! (`limits::CHECKPOINT_READ_WINDOW_BYTES`) and refuses one whose handles
//! point outside the files it covers; after recovery every file a live
//! handle points into must exist, or open fails with `Corrupt` naming it.
//!
//! # Restart time (measured, release, 1 KiB messages, one queue)
//! 1 M messages: from the checkpoint 0.51–0.59 s reopened in the same
//! process and 0.66–0.69 s in a fresh process (the figure a restarted
//! server sees; target < 2 s: met; 0.84–0.91 s before the checkpoint's
//! files were gathered while parsing it), from the log alone 1.5–1.7 s
//! (R11: < 10 s). The checkpoint is an 84 MB index (bodies stay in their
//! segments). 2 M: fresh process 1.08–1.46 s (was 1.94–2.35 s). 10 M messages:
//! 14.1 s from the checkpoint in a fresh process (an 840 MB index; 16–19 s
//! before), 17.7 s from the log alone. Writers pause for a checkpoint only
//! while the log rolls and the tail is written: 31–36 µs at 1 M messages
//! with no other load (0.46–0.57 s in the same session while the whole index
//! was written under the freeze; that freeze was 6.0 s at 10 M). Recovery decodes and checksums frames on a helper
//! thread while the main thread rebuilds the index (`recovery::with_frames`),
//! reusing one read buffer.
//!
//! # Memory per message
//! Index cost per stored message, bodies on disk: the boxed `CoreMessage`
//! (`size_of` = 120 bytes, a 128-byte chunk in glibc and mimalloc), its slot
//! in the queue's `hashbrown::HashTable` (an 8-byte pointer + 1 control byte,
//! with 1/8–1/2 of slots empty: 9–18 bytes) and one `BTreeSet<u64>` entry in
//! a state index (about 10–20 bytes). Group ids are shared `Arc<str>` (one
//! allocation per group), deduplication ids thin boxes (FIFO only).
//! Measured RSS after restart in a fresh process: 1 M messages of 1 KiB 164
//! MiB in all, 168 bytes per message (R16: < 300 MiB); 10 M messages 1,595
//! MiB, 166 bytes per message (goal: well under 2 GiB), plus the body cache
//! (at most `body_cache_bytes`). A checkpoint adds no memory in proportion to
//! the backlog (the index is encoded from the live state; 40 bytes per body
//! it moves).
//!
//! # Tests
//! `tests/suite.rs` (behavioural suite + reopen/checkpoint equality),
//! `tests/bodies.rs` (bodies with no cache across restarts and pruning
//! checkpoints, a flipped bit and read EIO refused, never served),
//! `tests/crash.rs` (R3 power-loss loop, R4 group commit, R5 crash during a
//! checkpoint), `tests/faults.rs` (R7–R13), `tests/model.rs` (R6 proptest
//! against `MemoryStore`), `tests/restart.rs` (figures). `SLUICE_LONG_TESTS=1`
//! runs the long versions (100 000 power-loss seeds, 10 000 model cases,
//! 20 000 damage seeds, 1 M-message restart and sends/s on the real disk —
//! run that one with `--release -- --nocapture`); `SLUICE_SEEDS=n` sets the
//! count of any loop; `SLUICE_SEED_FROM=s` and `SLUICE_DEBUG=1` replay and
//! explain one power-loss seed.

mod bodies;
mod checkpoint;
mod codec;
mod fault;
mod io;
pub mod limits;
mod pipe;
mod prealloc;
mod record;
mod recovery;
mod salvage;
mod state;
mod store;

pub use checkpoint::CheckpointReport;
pub use fault::{CutMode, FaultIo};
pub use io::{is_no_space, Io, IoFile, StdIo};
pub use pipe::Health;
pub use recovery::{RecoveryReport, TornTail};
pub use salvage::{salvage, DamagedRange, SalvageReport};
pub use state::{MessageDump, QueueDump, StateDump};
pub use store::LogStore;

/// Internals exposed for fuzzing and format tests; not a stable API.
pub mod format {
    pub use crate::codec::{decode_file_header, decode_frame, encode_frame, find_next_frame, Frame, FrameError, FILE_HEADER_BYTES, FRAME_HEADER_BYTES};
    pub use crate::pipe::segment_name;

    /// The 32-byte header of segment `n`.
    pub fn segment_header(n: u64) -> [u8; 32] {
        crate::codec::encode_file_header(crate::codec::SEGMENT_MAGIC, n)
    }
    pub use crate::record::{tag, Record, Transfer, TransferMode};
    pub use crate::recovery::{checkpoint_name, CHECKPOINT_DIR, LOG_DIR};
}

use std::sync::Arc;
use std::time::Duration;

/// When the writer fsyncs, and so what an acknowledgement promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before acknowledging (group commit): survives power loss.
    Always,
    /// Acknowledge after write; fsync at most this long after. Survives kill
    /// -9; a power cut may lose acknowledged writes of the last interval.
    Interval(Duration),
    /// Acknowledge after write; fsync only at segment ends, checkpoints and
    /// close. Survives kill -9 only.
    Never,
}

/// Settings of `LogStore::open`.
#[derive(Clone)]
pub struct LogOptions {
    /// Durability policy.
    pub fsync: FsyncPolicy,
    /// Size at which a new segment is started (one round may overshoot it).
    pub segment_bytes: u64,
    /// Log bytes between automatic checkpoints; `None` only on demand.
    pub checkpoint_every_bytes: Option<u64>,
    /// Also checkpoint after this many log records (or the last index's
    /// messages / `INDEX_MESSAGES_PER_LOG_RECORD`, if more), so that restart
    /// does not replay millions of small receive and delete records; `None`
    /// bytes only. Needs `checkpoint_every_bytes`.
    pub checkpoint_every_records: Option<u64>,
    /// After the log has been idle this long, checkpoint (up to
    /// `IDLE_CHECKPOINTS_MAX` times) while the data directory holds more
    /// than twice the live data; `None` never. Needs
    /// `checkpoint_every_bytes` (the checkpointer thread).
    pub idle_checkpoint_after: Option<Duration>,
    /// A period of `idle_checkpoint_after` with less log than this appended
    /// counts as quiet (idle), so a trickle of writes does not keep the disk
    /// of a drained backlog.
    pub quiet_log_bytes: u64,
    /// Pause between write attempts after ENOSPC.
    pub enospc_retry: Duration,
    /// Byte cap of the message body cache.
    pub body_cache_bytes: usize,
    /// The file system.
    pub io: Arc<dyn Io>,
    /// Test hook: runs on the checkpointing thread after each range of a
    /// checkpoint is written, with no lock held (tests change the state
    /// there, as concurrent requests would).
    pub checkpoint_range_hook: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Sequence numbers per range of a checkpoint (each range is written
    /// under its queue's lock): `limits::CHECKPOINT_MESSAGES_PER_RECORD`;
    /// tests make it small.
    pub checkpoint_range_seqs: usize,
    /// Prepare each next segment ahead of time, zero-filled and fsynced, so
    /// that an fsync does not also write the inode (see `prealloc`). Only
    /// with `FsyncPolicy::Always`: the other policies do not fsync per
    /// write, and would only write the zeros too.
    pub preallocate_segments: bool,
}

impl LogOptions {
    /// Defaults (`Always`, 64 MiB segments, checkpoint every 256 MiB and
    /// after 10 s idle when that gives space back, retry after ENOSPC every
    /// second) over `io`.
    pub fn new(io: Arc<dyn Io>) -> Self {
        Self {
            fsync: FsyncPolicy::Always,
            segment_bytes: limits::SEGMENT_BYTES_DEFAULT,
            checkpoint_every_bytes: Some(limits::CHECKPOINT_EVERY_BYTES_DEFAULT),
            checkpoint_every_records: Some(limits::CHECKPOINT_EVERY_RECORDS_DEFAULT),
            idle_checkpoint_after: Some(limits::IDLE_CHECKPOINT_AFTER_DEFAULT),
            quiet_log_bytes: limits::QUIET_LOG_BYTES_DEFAULT,
            enospc_retry: limits::ENOSPC_RETRY_DEFAULT,
            body_cache_bytes: limits::BODY_CACHE_BYTES_DEFAULT,
            io,
            checkpoint_range_hook: None,
            checkpoint_range_seqs: limits::CHECKPOINT_MESSAGES_PER_RECORD,
            preallocate_segments: true,
        }
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        Self::new(Arc::new(StdIo))
    }
}

impl std::fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogOptions")
            .field("fsync", &self.fsync)
            .field("segment_bytes", &self.segment_bytes)
            .field("checkpoint_every_bytes", &self.checkpoint_every_bytes)
            .field("checkpoint_every_records", &self.checkpoint_every_records)
            .field("idle_checkpoint_after", &self.idle_checkpoint_after)
            .field("quiet_log_bytes", &self.quiet_log_bytes)
            .field("enospc_retry", &self.enospc_retry)
            .field("body_cache_bytes", &self.body_cache_bytes)
            .field("checkpoint_range_seqs", &self.checkpoint_range_seqs)
            .field("preallocate_segments", &self.preallocate_segments)
            .finish_non_exhaustive()
    }
}

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended.
    pub records: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// Writer rounds (one write, at most one fsync each).
    pub rounds: u64,
    /// File fsyncs done by the writer (segment creation included).
    pub fsyncs: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Of those, segments made from a prepared (preallocated) file.
    pub segments_preallocated: u64,
    /// Files the preparer made ready to become segments.
    pub segments_prepared: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Idle periods the checkpointer handled (each looked at the disk use
    /// and wrote up to `IDLE_CHECKPOINTS_MAX` checkpoints).
    pub idle_periods: u64,
    /// Checkpoints written in idle periods (also in `checkpoints`).
    pub idle_checkpoints: u64,
    /// Messages taken out of their queue because their bodies failed the
    /// checksum twice on receive (damaged on disk; each logged at error).
    pub quarantined: u64,
    /// Sent bodies put into the body cache.
    pub bodies_cached: u64,
    /// Sent bodies not put into the body cache: behind more of their queue
    /// than the cache holds, they would be evicted before being received.
    pub bodies_not_cached: u64,
}
