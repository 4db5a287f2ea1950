//! Every size and count the engine bounds, in one place (STYLE: "every queue,
//! buffer, batch, waiter list and cache has a named limit").
//!
//! The decoder checks each length it reads against these caps *and* against the
//! bytes that remain before it allocates, so a damaged or hostile file can never
//! make recovery allocate more than the file holds.

use std::time::Duration;

/// Largest payload of one log or checkpoint record (frame header excluded).
/// A SendMessageBatch is at most 1 MiB of bodies on AWS; 64 MiB leaves room for
/// attributes and for services that store more per record, and is what the
/// decoder accepts before it even looks at the bytes.
pub const RECORD_BYTES_MAX: usize = 64 << 20;

/// Default size at which the writer starts a new segment.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

/// Smallest segment size accepted by `LogOptions` (tests use tiny segments to
/// exercise rolling; below this the header would dominate).
pub const SEGMENT_BYTES_MIN: u64 = 4 << 10;

/// Default amount of log written between automatic checkpoints.
pub const CHECKPOINT_EVERY_BYTES_DEFAULT: u64 = 256 << 20;

/// An automatic checkpoint waits for at least this many times the size of
/// the last index in new log (and at least `CHECKPOINT_EVERY_BYTES_DEFAULT`
/// or what is configured): with a large backlog an index is large (about 84
/// bytes per message: 840 MB at 10 M messages) and writing one per 256 MiB
/// of log would write several times more index than log, with the writers
/// paused for each freeze. Restart replays at most that much log more.
pub const LOG_BYTES_PER_INDEX_BYTE: u64 = 2;

/// Default number of log records between automatic checkpoints (also
/// `LogOptions::checkpoint_every_records`). Restart replays every record
/// after the checkpoint, and a receive or delete record is small (about 150
/// bytes for ten messages): 256 MiB of them is ~18 M message updates, over
/// ten seconds of replay. 250,000 records keep replay to a few seconds.
pub const CHECKPOINT_EVERY_RECORDS_DEFAULT: u64 = 250_000;

/// With a large backlog the records trigger waits for the last index's
/// messages divided by this: loading an index entry and replaying a record
/// (up to ten message updates) cost restart time alike, so replay stays
/// within a few times the index's load time and the index is not rewritten
/// for a few records each.
pub const INDEX_MESSAGES_PER_LOG_RECORD: u64 = 4;

/// A stale index: once the messages stored have fallen to this fraction
/// (numerator / denominator) of the last index's, a restart would load the
/// index's messages and then replay their deletion, so a checkpoint is due
/// (a drain checkpoints as it goes, each index a quarter smaller). Only for
/// an index of at least `checkpoint_every_records × 2 / 5` messages (100,000
/// by default) and after `checkpoint_every_records / 25` records (10,000):
/// below that a restart is fast anyway.
pub const STALE_INDEX_LIVE: (u64, u64) = (3, 4);

/// While only the last index's size holds an automatic checkpoint back, the
/// checkpointer counts the messages stored this often: a drain shrinks the
/// next index, so the triggers scaled by the last one shrink with it.
pub const LIVE_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the log must have taken no append before the checkpointer
/// checks whether an idle-time checkpoint would give disk space back (R20:
/// disk returns to within 2× live data after load stops).
pub const IDLE_CHECKPOINT_AFTER_DEFAULT: Duration = Duration::from_secs(10);

/// A period of `idle_checkpoint_after` counts as quiet when less than this
/// much log was appended in it (1 MiB per 10 s: about 100 one-KiB
/// messages a second), `LogOptions::quiet_log_bytes`.
pub const QUIET_LOG_BYTES_DEFAULT: u64 = 1 << 20;

/// Live bytes assumed per stored message when no checkpoint has counted
/// any yet (quiet-time estimate only).
pub const ESTIMATED_MESSAGE_BYTES: u64 = 1 << 10;

/// Checkpoints one idle period may write: the first covers the log, the
/// second lets the older generation's files go, the third those the first
/// compacted away.
pub const IDLE_CHECKPOINTS_MAX: usize = 3;

/// An idle-time checkpoint runs only while the data directory holds more
/// than twice the live data (bodies still referenced plus the newest
/// checkpoint index) plus this much. Small on purpose: after the idle
/// checkpoints all that is left beyond live data is the older index and a
/// segment holding one `Clock` record, and a checkpoint costs in proportion
/// to the live data, so with little live data it is cheap too.
pub const IDLE_RECLAIM_SLACK_BYTES: u64 = 64 << 10;

/// Compaction: a checkpoint moves the live bodies out of a file whose live
/// bytes are under 1/this of its size, so the file can be deleted; a file
/// fuller than that keeps its bodies where they are. Disk use stays under
/// about this many times the live data, and no body is copied again until
/// most of its neighbours are gone.
pub const COMPACT_BELOW_LIVE_DIVISOR: u64 = 2;

/// Messages per checkpoint record; bounds one record to roughly this many
/// payloads so that no checkpoint record comes near `RECORD_BYTES_MAX`.
pub const CHECKPOINT_MESSAGES_PER_RECORD: usize = 1024;

/// Payload bytes per checkpoint record before the chunk is closed early.
pub const CHECKPOINT_RECORD_BYTES_TARGET: usize = 8 << 20;

/// Records appended but not yet written by the writer, in bytes. Past this new
/// writes are refused with `Unavailable` instead of growing memory without
/// bound (it can only be reached when the disk is far slower than the callers).
pub const PENDING_BYTES_MAX: usize = 512 << 20;

/// Spare batch buffers the pipe keeps for reuse, and the largest capacity it
/// keeps one at. Reusing the writer's written buffers spares each round a
/// fresh allocation that grows by doubling (and whose pages the allocator
/// hands back to the kernel and faults in, zeroed, again); a buffer grown
/// past the cap by one large record is freed instead of pinned.
pub const PIPE_SPARE_BUFFERS: usize = 4;
/// See `PIPE_SPARE_BUFFERS`.
pub const PIPE_SPARE_BUFFER_BYTES_MAX: usize = 4 << 20;
/// Capacity a new batch buffer starts with when no spare is at hand.
pub const PIPE_BUFFER_BYTES_INITIAL: usize = 256 << 10;

/// Messages one `move_messages` call moves at most; the caller loops. Keeps a
/// move record far below `RECORD_BYTES_MAX` (16 bytes per message).
pub const MOVE_BATCH_MAX: usize = 100_000;

/// Messages one `send` call may carry.
pub const SEND_BATCH_MAX: usize = 100_000;

/// Default pause between attempts to write again after ENOSPC. RELIABILITY R12
/// asks for writes to resume within 5 s of space returning.
pub const ENOSPC_RETRY_DEFAULT: Duration = Duration::from_secs(1);

/// Checkpoint generations kept on disk. With two, a checkpoint that fails its
/// checksum falls back to the previous one plus the log written since.
pub const CHECKPOINTS_KEPT: usize = 2;

/// Largest timestamp (ms) accepted from a record: the year 36 812. Bigger values
/// can only come from damage and would overflow deadline arithmetic.
pub const TIME_MS_MAX: u64 = 1 << 60;

/// Largest body offset a checkpoint's handle may name (1 PiB).
pub const BODY_OFFSET_MAX: u64 = 1 << 50;

/// Largest sequence number accepted from a record (same reason as `TIME_MS_MAX`).
pub const SEQ_MAX: u64 = 1 << 62;

/// Largest queue id accepted from a record.
pub const QUEUE_ID_MAX: u64 = 1 << 62;

/// Messages one `receive` call returns at most (AWS allows 10; the cap only
/// keeps a store-level caller from building an oversized record).
pub const RECEIVE_MAX: usize = 100_000;

/// Receipts or visibility changes one call may carry.
pub const BATCH_ENTRIES_MAX: usize = 1_000_000;

/// Default byte cap of the message body cache (`LogOptions::body_cache_bytes`):
/// recently sent and recently read bodies, so that a receive soon after a
/// send reads no file. Entries larger than the cap are not cached.
pub const BODY_CACHE_BYTES_DEFAULT: usize = 64 << 20;

/// Bytes of a checkpoint read at a time by recovery (a window grows only to
/// hold one frame larger than this). Checkpoints hold the bodies, so they are
/// as large as the live data and are never read whole.
pub const CHECKPOINT_READ_WINDOW_BYTES: usize = 32 << 20;

/// The writer asks for the next segment to be prepared (zero-filled to
/// `segment_bytes` and fsynced, see `prealloc`) once the current one holds
/// this fraction (1 / n) of `segment_bytes`, or `PREPARE_NEXT_AT_BYTES_MAX`
/// if less: a log that stays small never prepares one, a busy one has the
/// next ready before it rolls.
pub const PREPARE_NEXT_AT_DIVISOR: u64 = 4;

/// See `PREPARE_NEXT_AT_DIVISOR`. When the writer's segment was created
/// empty (the first after open, or one rolled to while nothing was ready),
/// it rolls to the prepared one as soon as that is ready, so a busy log
/// writes into preallocated segments after its first MiB.
pub const PREPARE_NEXT_AT_BYTES_MAX: u64 = 1 << 20;

/// Zeros written, and written back to the device, per step while preparing
/// a segment through the page cache (one fsync at the end). The writer's
/// fsync (what acknowledgements wait for) queues behind the preparer's
/// writes in flight, so this bounds what a prepared segment adds to an
/// acknowledgement: at `sqs-roundtrip --rate 38000` (half the durable
/// maximum) 1 MiB steps gave an end-to-end p99 of 25–39 ms, 64 KiB steps
/// 2.9–4.2 ms (docs/benchmarks.md).
pub const PREPARE_CHUNK_BYTES: usize = 1 << 16;

/// Zeros per direct write while preparing a segment (`O_DIRECT`, each
/// write synchronous). The cost of a direct write is mostly per call, so
/// larger steps cut the preparer's CPU: 256 KiB took 0.23–0.25 s per 8 s
/// of `sqs-send` where 64 KiB took 0.59–0.73 s, with the same end-to-end
/// p99 at `sqs-roundtrip --rate 38000` (1.89–1.93 ms against 1.47–2.20).
pub const PREPARE_DIRECT_CHUNK_BYTES: usize = 1 << 18;

/// Bytes per direct write of a checkpoint's files (index and compacted
/// bodies). The device serves about one command at a time, so the log's
/// writes and fsyncs wait behind whatever the checkpoint has in flight: one
/// 8 MiB write held them for 7 – 9 ms (`perf trace` under `sqs-send`).
pub const CHECKPOINT_DIRECT_CHUNK_BYTES: usize = 1 << 18;

/// With `fsync always`, the writer hands each round to the syncer (which
/// fsyncs it while the next round is written) when another round follows
/// or the syncer is at work, and for this many rounds after requests
/// waited for an fsync the writer made itself; otherwise it fsyncs the
/// round itself, sparing the hand-over's thread wake-up (0.01 – 0.03 ms per
/// request with one request in flight). Under load about one round in this
/// many is fsynced by the writer and renews the count; a log that falls
/// back to one request at a time stops handing over after as many rounds.
pub const SYNC_HAND_OVER_ROUNDS: u32 = 64;
