//! The records of the log and of checkpoints: semantic effects, replayed
//! through `QueueCore` on recovery.
//!
//! A record says *what happened* (these sequence numbers were delivered until
//! this deadline; this message now lives in that queue under that number), never
//! *what was asked* (a receive of up to ten): replay needs no decisions, no
//! configuration and no clock, so it arrives at exactly the state the live
//! engine had. Payload fields are little-endian; queue metadata and move tasks
//! are serde_json (rare, small, and free to grow new fields).
//!
//! Type tags (one byte in the frame header):
//!
//! | tag | record | payload |
//! |---|---|---|
//! | 1 | QueueCreated | QueueInfo json |
//! | 2 | QueueDeleted | queue u64, now_ms u64 |
//! | 3 | QueueUpdated | QueueInfo json |
//! | 4 | MessagesSent | queue, n × message, m × dedup entry (FIFO) |
//! | 5 | Received | queue, now_ms, until_ms, delivered seqs, expired seqs, opt transfer, flags u8 (bit 0: retried attempt), opt attempt id |
//! | 6 | Deleted | queue, seqs |
//! | 7 | VisibilityChanged | queue, now_ms, n × (seq u64, timeout_secs u32) |
//! | 8 | Purged | queue |
//! | 9 | Moved | source, now_ms, transfers |
//! | 10 | Expired | queue, seqs |
//! | 11 | MoveTaskPut | MoveTask json |
//! | 12 | SyncedThrough | offset u64: every byte of this segment before it was fsynced |
//! | 13 | Seal | offset u64 = the seal's own offset: the segment is finished and every byte before was fsynced first |
//! | 14 | Clock | now_ms u64: the engine's clock had reached it (written by an idle-time checkpoint so that it starts a new segment) |
//! | 15–31 | reserved for more SQS records |
//! | 32–38 | checkpoint: Begin, Queue, (34 retired: messages with inline bodies), DeletedName, MoveTask, End, Dedup |
//! | 39 | checkpoint: Messages — queue, n × message with a body handle instead of the payload |
//! | 40 | checkpoint: Clock — time_floor_ms u64, the latest now the engine had reached (R15) |
//! | 41–63 | reserved for checkpoint sections (SNS, Kinesis state) |
//! | 64–95 | reserved for SNS: topics, subscriptions, the delivery outbox |
//! | 96–127 | reserved for Kinesis: streams, shards, records, sequence counters |
//! | 128–255 | reserved |
//!
//! A message is `seq u64 | message_id u128 | sent_ms u64 | receive_count u32 |
//! first_receive_ms u64 | state u8 (0 visible, 1 delayed, 2 in flight) | until_ms u64 |
//! dl_source u8 + u64 | group_id opt str | dedup_id opt str | payload u32 len + bytes`
//! (68 bytes + strings + payload); in a checkpoint the payload is replaced by
//! its handle, `file u32 | offset u64 | len u32 | crc32c u32`. A dedup entry is `key str | message_id u128 |
//! seq u64 | expires_ms u64`. A transfer (dead-letter or move) is
//! `dest u64 | mode u8 | n × (old_seq u64, new_seq u64)`: one record removes the
//! messages from the source and inserts them into the destination, so a crash
//! can never leave a message in both queues or in neither.

use crate::codec::{begin_frame, end_frame, DecodeError, PutExt, Reader};
use crate::limits::{BODY_OFFSET_MAX, QUEUE_ID_MAX, RECORD_BYTES_MAX, SEQ_MAX, TIME_MS_MAX};
use crate::bodies::UNLOCATED;
use sluice_store::queue_core::{BodyRef, CoreMessage, DedupEntry, MessageState, Payload, DEDUP_WINDOW_MS};
use sluice_store::{MoveTask, QueueId, QueueInfo, QueueName};

/// Record type tags; see the module table.
pub mod tag {
    #![allow(missing_docs)]
    pub const QUEUE_CREATED: u8 = 1;
    pub const QUEUE_DELETED: u8 = 2;
    pub const QUEUE_UPDATED: u8 = 3;
    pub const MESSAGES_SENT: u8 = 4;
    pub const RECEIVED: u8 = 5;
    pub const DELETED: u8 = 6;
    pub const VISIBILITY_CHANGED: u8 = 7;
    pub const PURGED: u8 = 8;
    pub const MOVED: u8 = 9;
    pub const EXPIRED: u8 = 10;
    pub const MOVE_TASK_PUT: u8 = 11;
    pub const SYNCED_THROUGH: u8 = 12;
    pub const SEAL: u8 = 13;
    pub const CLOCK: u8 = 14;
    pub const CHECKPOINT_BEGIN: u8 = 32;
    pub const CHECKPOINT_QUEUE: u8 = 33;
    /// Retired: checkpoint messages with their bodies inline (format of
    /// sluice before bodies stayed in place); an old checkpoint holding it
    /// is rejected and recovery falls back as for a damaged one.
    pub const CHECKPOINT_MESSAGES_INLINE_RETIRED: u8 = 34;
    pub const CHECKPOINT_DELETED_NAME: u8 = 35;
    pub const CHECKPOINT_MOVE_TASK: u8 = 36;
    pub const CHECKPOINT_END: u8 = 37;
    pub const CHECKPOINT_DEDUP: u8 = 38;
    pub const CHECKPOINT_MESSAGES: u8 = 39;
    pub const CHECKPOINT_CLOCK: u8 = 40;
    pub const CHECKPOINT_RANGE: u8 = 41;
    pub const CHECKPOINT_TAIL: u8 = 42;
    /// Last checkpoint tag.
    pub const CHECKPOINT_LAST: u8 = 42;
    /// First tag reserved for SNS records.
    pub const SNS_FIRST: u8 = 64;
    /// First tag reserved for Kinesis records.
    pub const KINESIS_FIRST: u8 = 96;
}

/// How a transferred message changes on its way into the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// Dead-lettered by a receive: keeps its receive count; remembers the source.
    DeadLetter,
    /// Moved by a move task or redrive: receive count and first receive reset,
    /// dead-letter source cleared.
    Reset,
    /// Renumbered in place (redrive whose source queue is gone): unchanged but
    /// for the new sequence number.
    KeepSource,
}

/// Messages leaving the record's source queue for `dest`, renumbered there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Destination queue (may equal the source).
    pub dest: QueueId,
    /// What changes on the way.
    pub mode: TransferMode,
    /// (sequence number in the source, sequence number in the destination).
    pub pairs: Vec<(u64, u64)>,
}

/// One log or checkpoint record.
#[derive(Debug, Clone)]
pub enum Record {
    /// A queue was created (full metadata, id included).
    QueueCreated(QueueInfo),
    /// A queue and its messages were deleted.
    QueueDeleted {
        /// The queue.
        queue: QueueId,
        /// Deletion time (for the 60-second re-create rule).
        now_ms: u64,
    },
    /// A queue's metadata was replaced.
    QueueUpdated(QueueInfo),
    /// Messages were enqueued with these sequence numbers and states.
    MessagesSent {
        /// The queue.
        queue: QueueId,
        /// The messages as stored.
        messages: Vec<CoreMessage>,
        /// FIFO deduplication entries registered by the send, in order.
        dedup: Vec<(String, DedupEntry)>,
    },
    /// A receive: what it delivered, expired and dead-lettered.
    Received {
        /// The queue.
        queue: QueueId,
        /// Receive time.
        now_ms: u64,
        /// Visibility deadline of the delivered messages.
        until_ms: u64,
        /// Delivered sequence numbers.
        delivered: Vec<u64>,
        /// Sequence numbers dropped for retention.
        expired: Vec<u64>,
        /// Messages moved to the dead-letter queue.
        dead_letter: Option<Transfer>,
        /// A retried ReceiveRequestAttemptId: `delivered` only had their
        /// deadline reset, no receive was counted.
        retried: bool,
        /// The ReceiveRequestAttemptId, kept so that a future `QueueCore` API
        /// can restore the attempt table on replay (today it is not restored).
        attempt_id: Option<String>,
    },
    /// Messages deleted by receipt.
    Deleted {
        /// The queue.
        queue: QueueId,
        /// Deleted sequence numbers.
        seqs: Vec<u64>,
    },
    /// Visibility timeouts changed.
    VisibilityChanged {
        /// The queue.
        queue: QueueId,
        /// Change time.
        now_ms: u64,
        /// (sequence number, new timeout in seconds).
        changes: Vec<(u64, u32)>,
    },
    /// Every message removed.
    Purged {
        /// The queue.
        queue: QueueId,
    },
    /// Messages moved out of `source` (move task, redrive).
    Moved {
        /// The source queue.
        source: QueueId,
        /// Move time (the source promotes due messages first).
        now_ms: u64,
        /// Where they went.
        transfers: Vec<Transfer>,
    },
    /// Messages dropped for retention by the expiry sweep.
    Expired {
        /// The queue.
        queue: QueueId,
        /// Dropped sequence numbers.
        seqs: Vec<u64>,
    },
    /// A move task was saved.
    MoveTaskPut(MoveTask),
    /// Writer bookkeeping: every byte of this segment before `offset` was
    /// fsynced before this record was written. Recovery treats damage below the
    /// highest such offset as corruption, never as a torn tail.
    SyncedThrough {
        /// Byte offset in the segment.
        offset: u64,
    },
    /// The last record of a finished segment, written after everything
    /// before it was fsynced, then fsynced itself. A segment other than the
    /// last that does not end with its seal was cut short.
    Seal {
        /// The seal's own offset in the segment.
        offset: u64,
    },
    /// The engine's clock had reached `now_ms`. Written when the log is idle,
    /// before an idle-time checkpoint, so that checkpoint starts a new segment
    /// (a checkpoint is named by the first segment it does not cover) and the
    /// older generation's files can be pruned.
    Clock {
        /// Milliseconds since the epoch.
        now_ms: u64,
    },
    /// Checkpoint start.
    CheckpointBegin {
        /// The first segment the checkpoint does not cover.
        start_segment: u64,
        /// The next queue id to assign.
        next_queue_id: u64,
    },
    /// One queue in a checkpoint.
    CheckpointQueue {
        /// Metadata.
        info: QueueInfo,
        /// The queue's next sequence number.
        next_seq: u64,
    },
    /// Some of a queue's messages in a checkpoint, each with a handle to
    /// where its body is (a segment or a checkpoint's bodies file), not the
    /// body itself.
    CheckpointMessages {
        /// The queue.
        queue: QueueId,
        /// Messages with their full state and `Payload::Stored` handles.
        messages: Vec<CoreMessage>,
    },
    /// The latest "now" the engine had reached when the checkpoint was taken
    /// (its clock restarts no lower: RELIABILITY R15).
    CheckpointClock {
        /// Milliseconds since the epoch.
        time_floor_ms: u64,
    },
    /// A recently deleted queue name in a checkpoint.
    CheckpointDeletedName {
        /// The name.
        name: QueueName,
        /// When it was deleted.
        at_ms: u64,
    },
    /// A move task in a checkpoint.
    CheckpointMoveTask(MoveTask),
    /// A queue's FIFO deduplication table in a checkpoint.
    CheckpointDedup {
        /// The queue.
        queue: QueueId,
        /// (key, entry) in expiry order.
        entries: Vec<(String, DedupEntry)>,
    },
    /// The messages of one queue whose sequence numbers lie in
    /// `from_seq..to_seq`, as they were when the log's next record was to
    /// go at (`segment`, `offset`): a fuzzy checkpoint takes them while the
    /// queue keeps working, and recovery applies a record of the window
    /// (below `CheckpointTail::segment`) to one of these messages only if
    /// the record lies at or after that position.
    CheckpointRange {
        /// The queue.
        queue: QueueId,
        /// First sequence number of the range.
        from_seq: u64,
        /// End of the range (exclusive).
        to_seq: u64,
        /// Log position the range was taken at: segment…
        segment: u64,
        /// …and byte offset in it.
        offset: u64,
        /// Messages with their full state and `Payload::Stored` handles.
        messages: Vec<CoreMessage>,
    },
    /// Start of a fuzzy checkpoint's tail, taken with writers paused when
    /// the log was rolled to `segment`: what follows (queues, their messages
    /// outside the ranges, deduplication tables, names, move tasks) is the
    /// state with every record below `segment` applied.
    CheckpointTail {
        /// The segment the tail was taken at the start of.
        segment: u64,
        /// The next queue id to assign.
        next_queue_id: u64,
    },
    /// Checkpoint end: the number of records before it, so a checkpoint cut
    /// short anywhere is rejected.
    CheckpointEnd {
        /// Records from Begin up to (not including) End.
        records: u64,
    },
}

/// Minimum encoded size of one message (no strings, empty payload).
const MESSAGE_MIN_BYTES: usize = 68;

fn put_seqs(out: &mut Vec<u8>, seqs: &[u64]) {
    out.put_count(seqs.len());
    for s in seqs {
        out.put_u64(*s);
    }
}

fn get_seqs(r: &mut Reader<'_>) -> Result<Vec<u64>, DecodeError> {
    let n = r.count(8)?;
    (0..n).map(|_| r.u64_max(SEQ_MAX, "sequence number out of range")).collect()
}

fn get_queue(r: &mut Reader<'_>) -> Result<QueueId, DecodeError> {
    r.u64_max(QUEUE_ID_MAX, "queue id out of range")
}

fn get_time(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    r.u64_max(TIME_MS_MAX, "time out of range")
}

/// Encodes one message with its full state. Its payload must be in memory
/// (`Payload::Inline`): writers resolve handles before encoding. When
/// `bodies` is given, the offset in `out` of the payload bytes is pushed.
pub fn put_message(out: &mut Vec<u8>, m: &CoreMessage, bodies: Option<&mut Vec<usize>>) {
    put_message_head(out, m);
    let payload = m.payload.inline().expect("a message is encoded with its payload in memory");
    // `put_blob` writes a u32 length, then the bytes.
    if let Some(b) = bodies {
        b.push(out.len() + 4);
    }
    out.put_blob(payload);
}

/// Encodes one message of a checkpoint: its state and the handle `r` of its
/// body (`file u32 | offset u64 | len u32 | crc u32`) in place of the body.
pub fn put_message_ref(out: &mut Vec<u8>, m: &CoreMessage, r: &BodyRef) {
    put_message_head(out, m);
    out.put_u32(r.file);
    out.put_u64(r.offset);
    out.put_u32(r.len);
    out.put_u32(r.crc);
}

/// Appends one whole `CheckpointMessages` frame for `messages` of `queue`,
/// each with the body handle given beside it (the message's own, or where a
/// checkpoint moves its body), encoding straight from the live messages.
pub fn encode_checkpoint_messages(out: &mut Vec<u8>, queue: QueueId, messages: &[(&CoreMessage, BodyRef)]) {
    let start = begin_frame(out);
    out.put_u64(queue);
    out.put_count(messages.len());
    for (m, r) in messages {
        put_message_ref(out, m, r);
    }
    end_frame(out, start, tag::CHECKPOINT_MESSAGES);
}

fn put_range_head(out: &mut Vec<u8>, queue: QueueId, from_seq: u64, to_seq: u64, segment: u64, offset: u64) {
    out.put_u64(queue);
    out.put_u64(from_seq);
    out.put_u64(to_seq);
    out.put_u64(segment);
    out.put_u64(offset);
}

/// Appends one whole `CheckpointRange` frame, encoding straight from the
/// live messages as `encode_checkpoint_messages` does.
pub fn encode_checkpoint_range(out: &mut Vec<u8>, queue: QueueId, seqs: std::ops::Range<u64>, at: (u64, u64), messages: &[(&CoreMessage, BodyRef)]) {
    let start = begin_frame(out);
    put_range_head(out, queue, seqs.start, seqs.end, at.0, at.1);
    out.put_count(messages.len());
    for (m, r) in messages {
        put_message_ref(out, m, r);
    }
    end_frame(out, start, tag::CHECKPOINT_RANGE);
}

fn put_message_head(out: &mut Vec<u8>, m: &CoreMessage) {
    out.put_u64(m.seq);
    out.put_u128(m.message_id.get());
    out.put_u64(m.sent_ms);
    out.put_u32(m.receive_count);
    out.put_u64(m.first_receive_ms);
    let (state, until) = match m.state {
        MessageState::Visible => (0, 0),
        MessageState::Delayed { until_ms } => (1, until_ms),
        MessageState::Inflight { until_ms } => (2, until_ms),
    };
    out.put_u8(state);
    out.put_u64(until);
    match m.dead_letter_source {
        None => {
            out.put_u8(0);
            out.put_u64(0);
        }
        Some(q) => {
            out.put_u8(1);
            out.put_u64(q.get());
        }
    }
    out.put_opt_string(m.group_id.as_deref());
    out.put_opt_string(m.dedup_id.as_deref().map(String::as_str));
}

/// Decodes one message. The payload is not copied: it becomes a
/// `Payload::Stored` handle whose `file` is `UNLOCATED` and whose `offset`
/// is relative to the start of the record's payload, with the CRC32C of the
/// bytes; `Record::locate_bodies` turns it into a file position.
pub fn get_message(r: &mut Reader<'_>) -> Result<CoreMessage, DecodeError> {
    let mut m = get_message_head(r)?;
    let body_at = r.pos() + 4;
    let body = r.blob()?;
    let len = u32::try_from(body.len()).map_err(|_| DecodeError("payload too long"))?;
    m.payload = Payload::Stored(BodyRef { file: UNLOCATED, offset: body_at as u64, len, crc: crc32c::crc32c(body) });
    Ok(m)
}

/// Decodes one message written by `put_message_ref`.
pub fn get_message_ref(r: &mut Reader<'_>) -> Result<CoreMessage, DecodeError> {
    let mut m = get_message_head(r)?;
    let file = r.u32()?;
    if file == UNLOCATED {
        return Err(DecodeError("body handle without a file"));
    }
    let offset = r.u64_max(BODY_OFFSET_MAX, "body offset out of range")?;
    let len = r.u32()?;
    if len as usize > RECORD_BYTES_MAX {
        return Err(DecodeError("body length out of range"));
    }
    let crc = r.u32()?;
    m.payload = Payload::Stored(BodyRef { file, offset, len, crc });
    Ok(m)
}

fn get_message_head(r: &mut Reader<'_>) -> Result<CoreMessage, DecodeError> {
    let seq = r.u64_max(SEQ_MAX, "sequence number out of range")?;
    let message_id = r.u128()?;
    let sent_ms = get_time(r)?;
    let receive_count = r.u32()?;
    let first_receive_ms = get_time(r)?;
    let state_tag = r.u8()?;
    let until_ms = get_time(r)?;
    let state = match state_tag {
        0 => MessageState::Visible,
        1 => MessageState::Delayed { until_ms },
        2 => MessageState::Inflight { until_ms },
        _ => return Err(DecodeError("bad message state")),
    };
    let dl_tag = r.u8()?;
    let dl = get_queue(r)?;
    let dead_letter_source = match dl_tag {
        0 => None,
        1 => Some(std::num::NonZeroU64::new(dl).ok_or(DecodeError("queue id out of range"))?),
        _ => return Err(DecodeError("bad option tag")),
    };
    let group_id = r.opt_string()?.map(std::sync::Arc::<str>::from);
    let dedup_id = r.opt_string()?.map(Box::new);
    Ok(CoreMessage {
        message_id: message_id.into(),
        payload: Payload::Stored(BodyRef { file: UNLOCATED, offset: 0, len: 0, crc: 0 }),
        sent_ms,
        seq,
        receive_count,
        first_receive_ms,
        group_id,
        dedup_id,
        dead_letter_source,
        state,
    })
}

/// Encoded size of one message, for checking the record cap before applying.
pub fn message_bytes(payload: usize, group: Option<&str>, dedup: Option<&str>) -> usize {
    MESSAGE_MIN_BYTES + group.map_or(0, |s| s.len() + 4) + dedup.map_or(0, |s| s.len() + 4) + payload
}

fn put_messages(out: &mut Vec<u8>, ms: &[CoreMessage], mut bodies: Option<&mut Vec<usize>>) {
    out.put_count(ms.len());
    for m in ms {
        put_message(out, m, bodies.as_deref_mut());
    }
}

fn get_messages(r: &mut Reader<'_>) -> Result<Vec<CoreMessage>, DecodeError> {
    let n = r.count(MESSAGE_MIN_BYTES)?;
    (0..n).map(|_| get_message(r)).collect()
}

fn put_message_refs(out: &mut Vec<u8>, ms: &[CoreMessage]) {
    out.put_count(ms.len());
    for m in ms {
        let Payload::Stored(r) = &m.payload else { unreachable!("checkpoints encode body handles only") };
        put_message_ref(out, m, r);
    }
}

fn get_message_refs(r: &mut Reader<'_>) -> Result<Vec<CoreMessage>, DecodeError> {
    let n = r.count(MESSAGE_MIN_BYTES)?;
    (0..n).map(|_| get_message_ref(r)).collect()
}

fn put_dedup(out: &mut Vec<u8>, entries: &[(String, DedupEntry)]) {
    out.put_count(entries.len());
    for (k, e) in entries {
        out.put_blob(k.as_bytes());
        out.put_u128(e.message_id);
        out.put_u64(e.seq);
        out.put_u64(e.expires_ms);
    }
}

fn get_dedup(r: &mut Reader<'_>) -> Result<Vec<(String, DedupEntry)>, DecodeError> {
    let n = r.count(36)?;
    (0..n)
        .map(|_| {
            let k = r.string()?;
            let message_id = r.u128()?;
            let seq = r.u64_max(SEQ_MAX, "sequence number out of range")?;
            let expires_ms = get_time(r)?;
            Ok((k, DedupEntry { message_id, seq, expires_ms }))
        })
        .collect()
}

fn put_transfer(out: &mut Vec<u8>, t: &Transfer) {
    out.put_u64(t.dest);
    out.put_u8(match t.mode {
        TransferMode::DeadLetter => 0,
        TransferMode::Reset => 1,
        TransferMode::KeepSource => 2,
    });
    out.put_count(t.pairs.len());
    for (a, b) in &t.pairs {
        out.put_u64(*a);
        out.put_u64(*b);
    }
}

fn get_transfer(r: &mut Reader<'_>) -> Result<Transfer, DecodeError> {
    let dest = get_queue(r)?;
    let mode = match r.u8()? {
        0 => TransferMode::DeadLetter,
        1 => TransferMode::Reset,
        2 => TransferMode::KeepSource,
        _ => return Err(DecodeError("bad transfer mode")),
    };
    let n = r.count(16)?;
    let pairs = (0..n)
        .map(|_| Ok((r.u64_max(SEQ_MAX, "sequence number out of range")?, r.u64_max(SEQ_MAX, "sequence number out of range")?)))
        .collect::<Result<_, DecodeError>>()?;
    Ok(Transfer { dest, mode, pairs })
}

fn put_json<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) {
    // Serialising plain data structs to a Vec cannot fail.
    serde_json::to_writer(out, v).expect("serialising queue metadata");
}

fn get_json<T: serde::de::DeserializeOwned>(r: &mut Reader<'_>) -> Result<T, DecodeError> {
    let rest = r.bytes(r.remaining())?;
    serde_json::from_slice(rest).map_err(|_| DecodeError("bad json"))
}

fn get_info(r: &mut Reader<'_>) -> Result<QueueInfo, DecodeError> {
    let info: QueueInfo = get_json(r)?;
    if info.id > QUEUE_ID_MAX || info.id == 0 {
        return Err(DecodeError("queue id out of range"));
    }
    Ok(info)
}

impl Record {
    /// The record's type tag.
    pub fn tag(&self) -> u8 {
        use tag::*;
        match self {
            Record::QueueCreated(_) => QUEUE_CREATED,
            Record::QueueDeleted { .. } => QUEUE_DELETED,
            Record::QueueUpdated(_) => QUEUE_UPDATED,
            Record::MessagesSent { .. } => MESSAGES_SENT,
            Record::Received { .. } => RECEIVED,
            Record::Deleted { .. } => DELETED,
            Record::VisibilityChanged { .. } => VISIBILITY_CHANGED,
            Record::Purged { .. } => PURGED,
            Record::Moved { .. } => MOVED,
            Record::Expired { .. } => EXPIRED,
            Record::MoveTaskPut(_) => MOVE_TASK_PUT,
            Record::SyncedThrough { .. } => SYNCED_THROUGH,
            Record::Seal { .. } => SEAL,
            Record::Clock { .. } => CLOCK,
            Record::CheckpointBegin { .. } => CHECKPOINT_BEGIN,
            Record::CheckpointQueue { .. } => CHECKPOINT_QUEUE,
            Record::CheckpointMessages { .. } => CHECKPOINT_MESSAGES,
            Record::CheckpointDeletedName { .. } => CHECKPOINT_DELETED_NAME,
            Record::CheckpointMoveTask(_) => CHECKPOINT_MOVE_TASK,
            Record::CheckpointEnd { .. } => CHECKPOINT_END,
            Record::CheckpointDedup { .. } => CHECKPOINT_DEDUP,
            Record::CheckpointClock { .. } => CHECKPOINT_CLOCK,
            Record::CheckpointRange { .. } => CHECKPOINT_RANGE,
            Record::CheckpointTail { .. } => CHECKPOINT_TAIL,
        }
    }

    /// Appends the record as one frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with(out, None);
    }

    /// Appends the record as one frame to `out`; when `bodies` is given,
    /// pushes the offset in `out` of each message payload (in message order)
    /// so that the caller can locate them in the file.
    pub fn encode_with(&self, out: &mut Vec<u8>, bodies: Option<&mut Vec<usize>>) {
        let start = begin_frame(out);
        match self {
            Record::QueueCreated(info) | Record::QueueUpdated(info) => put_json(out, info),
            Record::QueueDeleted { queue, now_ms } => {
                out.put_u64(*queue);
                out.put_u64(*now_ms);
            }
            Record::MessagesSent { queue, messages, dedup } => {
                out.put_u64(*queue);
                put_messages(out, messages, bodies);
                put_dedup(out, dedup);
            }
            Record::CheckpointMessages { queue, messages } => {
                out.put_u64(*queue);
                put_message_refs(out, messages);
            }
            Record::CheckpointDedup { queue, entries } => {
                out.put_u64(*queue);
                put_dedup(out, entries);
            }
            Record::CheckpointRange { queue, from_seq, to_seq, segment, offset, messages } => {
                put_range_head(out, *queue, *from_seq, *to_seq, *segment, *offset);
                put_message_refs(out, messages);
            }
            Record::CheckpointTail { segment, next_queue_id } => {
                out.put_u64(*segment);
                out.put_u64(*next_queue_id);
            }
            Record::Received { queue, now_ms, until_ms, delivered, expired, dead_letter, retried, attempt_id } => {
                out.put_u64(*queue);
                out.put_u64(*now_ms);
                out.put_u64(*until_ms);
                put_seqs(out, delivered);
                put_seqs(out, expired);
                match dead_letter {
                    None => out.put_u8(0),
                    Some(t) => {
                        out.put_u8(1);
                        put_transfer(out, t);
                    }
                }
                out.put_u8(u8::from(*retried));
                out.put_opt_string(attempt_id.as_deref());
            }
            Record::Deleted { queue, seqs } | Record::Expired { queue, seqs } => {
                out.put_u64(*queue);
                put_seqs(out, seqs);
            }
            Record::VisibilityChanged { queue, now_ms, changes } => {
                out.put_u64(*queue);
                out.put_u64(*now_ms);
                out.put_count(changes.len());
                for (s, t) in changes {
                    out.put_u64(*s);
                    out.put_u32(*t);
                }
            }
            Record::Purged { queue } => out.put_u64(*queue),
            Record::Moved { source, now_ms, transfers } => {
                out.put_u64(*source);
                out.put_u64(*now_ms);
                out.put_count(transfers.len());
                for t in transfers {
                    put_transfer(out, t);
                }
            }
            Record::MoveTaskPut(t) | Record::CheckpointMoveTask(t) => put_json(out, t),
            Record::SyncedThrough { offset } | Record::Seal { offset } => out.put_u64(*offset),
            Record::Clock { now_ms } => out.put_u64(*now_ms),
            Record::CheckpointBegin { start_segment, next_queue_id } => {
                out.put_u64(*start_segment);
                out.put_u64(*next_queue_id);
            }
            Record::CheckpointQueue { info, next_seq } => {
                out.put_u64(*next_seq);
                put_json(out, info);
            }
            Record::CheckpointDeletedName { name, at_ms } => {
                out.put_u64(*at_ms);
                put_json(out, name);
            }
            Record::CheckpointEnd { records } => out.put_u64(*records),
            Record::CheckpointClock { time_floor_ms } => out.put_u64(*time_floor_ms),
        }
        end_frame(out, start, self.tag());
    }

    /// Decodes a record from its tag and payload (both already checksummed).
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
        use tag::*;
        let mut r = Reader::new(payload);
        let rec = match kind {
            QUEUE_CREATED => Record::QueueCreated(get_info(&mut r)?),
            QUEUE_UPDATED => Record::QueueUpdated(get_info(&mut r)?),
            QUEUE_DELETED => Record::QueueDeleted { queue: get_queue(&mut r)?, now_ms: get_time(&mut r)? },
            MESSAGES_SENT => {
                Record::MessagesSent { queue: get_queue(&mut r)?, messages: get_messages(&mut r)?, dedup: get_dedup(&mut r)? }
            }
            CHECKPOINT_DEDUP => Record::CheckpointDedup { queue: get_queue(&mut r)?, entries: get_dedup(&mut r)? },
            CHECKPOINT_MESSAGES => Record::CheckpointMessages { queue: get_queue(&mut r)?, messages: get_message_refs(&mut r)? },
            CHECKPOINT_RANGE => {
                let queue = get_queue(&mut r)?;
                let from_seq = r.u64_max(SEQ_MAX, "sequence number out of range")?;
                let to_seq = r.u64_max(SEQ_MAX, "sequence number out of range")?;
                let segment = r.u64_max(SEQ_MAX, "segment number out of range")?;
                let offset = r.u64()?;
                Record::CheckpointRange { queue, from_seq, to_seq, segment, offset, messages: get_message_refs(&mut r)? }
            }
            CHECKPOINT_TAIL => Record::CheckpointTail {
                segment: r.u64_max(SEQ_MAX, "segment number out of range")?,
                next_queue_id: get_queue(&mut r)?,
            },
            RECEIVED => {
                let queue = get_queue(&mut r)?;
                let now_ms = get_time(&mut r)?;
                let until_ms = get_time(&mut r)?;
                let delivered = get_seqs(&mut r)?;
                let expired = get_seqs(&mut r)?;
                let dead_letter = match r.u8()? {
                    0 => None,
                    1 => Some(get_transfer(&mut r)?),
                    _ => return Err(DecodeError("bad option tag")),
                };
                let retried = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError("bad receive flags")),
                };
                let attempt_id = r.opt_string()?;
                Record::Received { queue, now_ms, until_ms, delivered, expired, dead_letter, retried, attempt_id }
            }
            DELETED => Record::Deleted { queue: get_queue(&mut r)?, seqs: get_seqs(&mut r)? },
            EXPIRED => Record::Expired { queue: get_queue(&mut r)?, seqs: get_seqs(&mut r)? },
            VISIBILITY_CHANGED => {
                let queue = get_queue(&mut r)?;
                let now_ms = get_time(&mut r)?;
                let n = r.count(12)?;
                let changes = (0..n)
                    .map(|_| Ok((r.u64_max(SEQ_MAX, "sequence number out of range")?, r.u32()?)))
                    .collect::<Result<_, DecodeError>>()?;
                Record::VisibilityChanged { queue, now_ms, changes }
            }
            PURGED => Record::Purged { queue: get_queue(&mut r)? },
            MOVED => {
                let source = get_queue(&mut r)?;
                let now_ms = get_time(&mut r)?;
                let n = r.count(13)?;
                let transfers = (0..n).map(|_| get_transfer(&mut r)).collect::<Result<_, _>>()?;
                Record::Moved { source, now_ms, transfers }
            }
            MOVE_TASK_PUT => Record::MoveTaskPut(get_json(&mut r)?),
            CHECKPOINT_MOVE_TASK => Record::CheckpointMoveTask(get_json(&mut r)?),
            SYNCED_THROUGH => Record::SyncedThrough { offset: r.u64()? },
            SEAL => Record::Seal { offset: r.u64()? },
            CLOCK => Record::Clock { now_ms: get_time(&mut r)? },
            CHECKPOINT_BEGIN => Record::CheckpointBegin {
                start_segment: r.u64_max(SEQ_MAX, "segment number out of range")?,
                next_queue_id: get_queue(&mut r)?,
            },
            CHECKPOINT_QUEUE => {
                let next_seq = r.u64_max(SEQ_MAX, "sequence number out of range")?;
                Record::CheckpointQueue { next_seq, info: get_info(&mut r)? }
            }
            CHECKPOINT_DELETED_NAME => {
                let at_ms = get_time(&mut r)?;
                Record::CheckpointDeletedName { at_ms, name: get_json(&mut r)? }
            }
            CHECKPOINT_END => Record::CheckpointEnd { records: r.u64()? },
            CHECKPOINT_CLOCK => Record::CheckpointClock { time_floor_ms: get_time(&mut r)? },
            _ => return Err(DecodeError("unknown record type (written by a newer version?)")),
        };
        r.finish()?;
        Ok(rec)
    }

    /// The latest moment the record shows the engine's clock had reached:
    /// every "now" it carries (send, receive, change, move, deletion and
    /// queue times; a FIFO deduplication entry's send time), never a deadline
    /// (visibility, delay and deduplication expiry lie ahead of their now).
    /// Recovery keeps the maximum as `Store::time_floor_ms`. 0 when the record
    /// carries no time.
    pub fn time_ms(&self) -> u64 {
        fn info_ms(i: &QueueInfo) -> u64 {
            i.created_ms.max(i.last_modified_ms).max(i.last_purge_ms.unwrap_or(0))
        }
        fn messages_ms(ms: &[CoreMessage]) -> u64 {
            ms.iter().map(|m| m.sent_ms.max(m.first_receive_ms)).max().unwrap_or(0)
        }
        fn dedup_ms(entries: &[(String, DedupEntry)]) -> u64 {
            // Engines register an entry at its send time plus the window.
            entries.iter().map(|(_, e)| e.expires_ms.saturating_sub(DEDUP_WINDOW_MS)).max().unwrap_or(0)
        }
        match self {
            Record::QueueCreated(info) | Record::QueueUpdated(info) | Record::CheckpointQueue { info, .. } => info_ms(info),
            Record::QueueDeleted { now_ms, .. }
            | Record::Received { now_ms, .. }
            | Record::VisibilityChanged { now_ms, .. }
            | Record::Moved { now_ms, .. }
            | Record::Clock { now_ms } => *now_ms,
            Record::MessagesSent { messages, dedup, .. } => messages_ms(messages).max(dedup_ms(dedup)),
            Record::CheckpointMessages { messages, .. } | Record::CheckpointRange { messages, .. } => messages_ms(messages),
            Record::CheckpointDedup { entries, .. } => dedup_ms(entries),
            Record::CheckpointDeletedName { at_ms, .. } => *at_ms,
            Record::CheckpointClock { time_floor_ms } => *time_floor_ms,
            Record::MoveTaskPut(t) | Record::CheckpointMoveTask(t) => t.started_ms,
            Record::Deleted { .. }
            | Record::Purged { .. }
            | Record::Expired { .. }
            | Record::SyncedThrough { .. }
            | Record::Seal { .. }
            | Record::CheckpointBegin { .. }
            | Record::CheckpointTail { .. }
            | Record::CheckpointEnd { .. } => 0,
        }
    }

    /// The messages a record carries with their payloads (sends and
    /// checkpoint chunks), for locating or resolving bodies.
    pub fn messages_mut(&mut self) -> Option<&mut Vec<CoreMessage>> {
        match self {
            Record::MessagesSent { messages, .. } | Record::CheckpointMessages { messages, .. } | Record::CheckpointRange { messages, .. } => {
                Some(messages)
            }
            _ => None,
        }
    }

    /// Turns the handles `decode` left relative to the record's payload into
    /// positions in `file`, whose record payload starts at `payload_offset`.
    pub fn locate_bodies(&mut self, file: u32, payload_offset: u64) {
        if let Some(ms) = self.messages_mut() {
            for m in ms {
                if let Payload::Stored(r) = &mut m.payload {
                    if r.file == UNLOCATED {
                        r.file = file;
                        r.offset += payload_offset;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use crate::codec::decode_frame;
    use std::collections::BTreeMap;

    fn msg(seq: u64) -> CoreMessage {
        CoreMessage {
            message_id: (0xdead_beef_u128 << 64 | u128::from(seq)).into(),
            payload: Payload::Inline(Box::new(Bytes::from(format!("payload-{seq}")))),
            sent_ms: 1_700_000_000_000,
            seq,
            receive_count: 3,
            first_receive_ms: 1_700_000_000_005,
            group_id: Some("g".into()),
            dedup_id: None,
            dead_letter_source: std::num::NonZeroU64::new(9),
            state: MessageState::Inflight { until_ms: 1_700_000_030_000 },
        }
    }

    fn info() -> QueueInfo {
        QueueInfo {
            id: 4,
            name: QueueName::new("000000000000", "q"),
            region: "us-east-1".into(),
            attributes: BTreeMap::from([("VisibilityTimeout".to_string(), "5".to_string())]),
            config: Default::default(),
            tags: BTreeMap::new(),
            created_ms: 1,
            last_modified_ms: 2,
            last_purge_ms: Some(3),
        }
    }

    fn all() -> Vec<Record> {
        let t = Transfer { dest: 2, mode: TransferMode::DeadLetter, pairs: vec![(1, 10), (2, 11)] };
        let task = MoveTask {
            task_handle: "h".into(),
            source_arn: "arn".into(),
            destination_arn: None,
            max_per_second: Some(5),
            status: "RUNNING".into(),
            moved: 1,
            to_move: 2,
            started_ms: 3,
            failure_reason: None,
        };
        vec![
            Record::QueueCreated(info()),
            Record::QueueDeleted { queue: 4, now_ms: 5 },
            Record::QueueUpdated(info()),
            Record::MessagesSent {
                queue: 4,
                messages: vec![msg(1), msg(2)],
                dedup: vec![("k".into(), DedupEntry { message_id: 5, seq: 1, expires_ms: 300_000 })],
            },
            Record::Received {
                queue: 4,
                now_ms: 6,
                until_ms: 7,
                delivered: vec![1],
                expired: vec![2],
                dead_letter: Some(t.clone()),
                retried: false,
                attempt_id: Some("a".into()),
            },
            Record::Received {
                queue: 4,
                now_ms: 6,
                until_ms: 7,
                delivered: vec![],
                expired: vec![],
                dead_letter: None,
                retried: true,
                attempt_id: None,
            },
            Record::CheckpointDedup { queue: 4, entries: vec![("g\u{0}d".into(), DedupEntry { message_id: 1, seq: 2, expires_ms: 3 })] },
            Record::Deleted { queue: 4, seqs: vec![1, 2, 3] },
            Record::VisibilityChanged { queue: 4, now_ms: 8, changes: vec![(1, 30)] },
            Record::Purged { queue: 4 },
            Record::Moved { source: 4, now_ms: 9, transfers: vec![t.clone(), Transfer { mode: TransferMode::Reset, ..t.clone() }] },
            Record::Expired { queue: 4, seqs: vec![5] },
            Record::MoveTaskPut(task.clone()),
            Record::SyncedThrough { offset: 1234 },
            Record::Seal { offset: 99 },
            Record::Clock { now_ms: 1_700_000_000_456 },
            Record::CheckpointBegin { start_segment: 3, next_queue_id: 5 },
            Record::CheckpointClock { time_floor_ms: 1_700_000_000_123 },
            Record::CheckpointQueue { info: info(), next_seq: 77 },
            Record::CheckpointMessages {
                queue: 4,
                messages: vec![CoreMessage { payload: Payload::Stored(BodyRef { file: 7, offset: 1 << 40, len: 9, crc: 0xabcd_ef01 }), ..msg(3) }],
            },
            Record::CheckpointDeletedName { name: QueueName::new("1", "x"), at_ms: 10 },
            Record::CheckpointMoveTask(task),
            Record::CheckpointRange {
                queue: 4,
                from_seq: 1024,
                to_seq: 2048,
                segment: 12,
                offset: 4096,
                messages: vec![CoreMessage { payload: Payload::Stored(BodyRef { file: 7, offset: 1 << 40, len: 9, crc: 0xabcd_ef01 }), ..msg(1500) }],
            },
            Record::CheckpointTail { segment: 13, next_queue_id: 9 },
            Record::CheckpointEnd { records: 6 },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        for rec in all() {
            let mut out = Vec::new();
            rec.encode(&mut out);
            let f = decode_frame(&out).unwrap();
            assert_eq!(f.size, out.len());
            let mut back = Record::decode(f.kind, f.payload).unwrap();
            // Decoding leaves payloads on disk: read them back from the
            // frame, checking the handle's CRC, to compare with the original.
            if let (Some(ms), false) = (back.messages_mut(), matches!(rec, Record::CheckpointMessages { .. } | Record::CheckpointRange { .. })) {
                for m in ms {
                    let Payload::Stored(r) = m.payload else { panic!("decoded payload not a handle") };
                    assert_eq!(r.file, UNLOCATED);
                    let bytes = &f.payload[r.offset as usize..r.offset as usize + r.len as usize];
                    assert_eq!(crc32c::crc32c(bytes), r.crc);
                    m.payload = Payload::Inline(Box::new(Bytes::copy_from_slice(bytes)));
                }
            }
            assert_eq!(format!("{rec:?}"), format!("{back:?}"));
        }
    }

    #[test]
    fn checkpoint_messages_encoded_from_references_equal_the_record_encoding() {
        let r = BodyRef { file: 3 | crate::bodies::CHECKPOINT_FILE_BIT, offset: 77, len: 5, crc: 1234 };
        let (a, b) = (msg(1), CoreMessage { dedup_id: Some(Box::new("d".into())), ..msg(2) });
        let mut direct = Vec::new();
        encode_checkpoint_messages(&mut direct, 4, &[(&a, r), (&b, r)]);
        let owned = |m: &CoreMessage| CoreMessage { payload: Payload::Stored(r), ..m.clone() };
        let mut via_record = Vec::new();
        Record::CheckpointMessages { queue: 4, messages: vec![owned(&a), owned(&b)] }.encode(&mut via_record);
        assert_eq!(direct, via_record);
    }

    #[test]
    fn given_truncated_or_extended_payload_decode_should_fail_cleanly() {
        for rec in all() {
            let mut out = Vec::new();
            rec.encode(&mut out);
            let f = decode_frame(&out).unwrap();
            for n in 0..f.payload.len() {
                // Json payloads may parse from a prefix only when the prefix is
                // itself valid json, which a strict prefix of an object never is.
                assert!(Record::decode(f.kind, &f.payload[..n]).is_err(), "{rec:?} decoded from {n} bytes");
            }
            let mut longer = f.payload.to_vec();
            longer.push(0);
            assert!(Record::decode(f.kind, &longer).is_err());
        }
    }

    #[test]
    fn time_ms_is_the_latest_now_a_record_carries_never_a_deadline() {
        let msg_ms = 1_700_000_000_005; // first_receive_ms; in flight until 1_700_000_030_000
        let want = [3, 5, 3, msg_ms, 6, 6, 0, 0, 8, 0, 9, 0, 3, 0, 0, 1_700_000_000_456, 0, 1_700_000_000_123, 3, msg_ms, 10, 3, msg_ms, 0, 0];
        let got: Vec<u64> = all().iter().map(Record::time_ms).collect();
        assert_eq!(got, want);
        let sent_at = 1_800_000_000_000;
        let dedup = vec![("k".to_string(), DedupEntry { message_id: 1, seq: 1, expires_ms: sent_at + DEDUP_WINDOW_MS })];
        assert_eq!(Record::CheckpointDedup { queue: 1, entries: dedup.clone() }.time_ms(), sent_at);
        assert_eq!(Record::MessagesSent { queue: 1, messages: vec![msg(1)], dedup }.time_ms(), sent_at);
    }

    #[test]
    fn given_unknown_tag_decode_should_fail() {
        assert!(Record::decode(tag::SNS_FIRST, &[]).is_err());
        assert!(Record::decode(tag::KINESIS_FIRST, &[]).is_err());
    }
}
