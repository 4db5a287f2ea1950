//! The in-memory state of the durable engine — the same shape as
//! `MemoryStore` (a catalog behind one lock, each queue's `QueueCore` behind its
//! own) — and the replay of records into it.
//!
//! Replay is single-threaded and happens before the store is shared, so it
//! takes the same locks uncontended. It is lenient about effects on messages
//! that are gone (a salvaged log may lack the record that created them) and
//! strict about anything that would break an invariant (a sequence number used
//! twice, a queue id created twice): those are reported as corruption.

use crate::record::{Record, Transfer, TransferMode};
use parking_lot::{Mutex, RwLock};
use crate::bodies::{Bodies, CHECKPOINT_FILE_BIT};
use sluice_store::queue_core::{BodyRef, CoreMessage, DedupEntry, MessageState, Payload, QueueCore};
use sluice_store::{MoveTask, QueueId, QueueInfo, QueueName, StoredMessage};
use std::collections::{BTreeMap, HashMap};

/// What a message takes in a segment besides its body: the fixed part of its
/// encoding (68 bytes) and, roughly, its share of the frame and send record.
const MESSAGE_IN_SEGMENT_BYTES: u64 = 80;
use std::sync::Arc;
use tokio::sync::Notify;

/// One queue's messages and whether the queue was deleted (an operation that
/// found the slot before the deletion must not write after it).
pub(crate) struct SlotCore {
    pub q: QueueCore,
    pub deleted: bool,
}

/// One queue: metadata, messages, waiters.
pub(crate) struct Slot {
    pub info: RwLock<Arc<QueueInfo>>,
    pub core: Mutex<SlotCore>,
    pub notify: Arc<Notify>,
}

impl Slot {
    pub fn new(info: QueueInfo) -> Arc<Slot> {
        Arc::new(Slot {
            info: RwLock::new(Arc::new(info)),
            core: Mutex::new(SlotCore { q: QueueCore::new(), deleted: false }),
            notify: Arc::new(Notify::new()),
        })
    }
}

/// A record's place in the log: segment and byte offset.
pub(crate) type LogPos = (u64, u64);

/// What a fuzzy checkpoint says about the records logged while it was
/// taken (segments from its start up to `tail_segment`): each range of a
/// queue's sequence numbers was taken at a log position, and the tail (the
/// catalog, deduplication tables and every message outside the ranges) at
/// the start of `tail_segment`.
///
/// A record of that window applies to a message in a range only if the
/// record lies at or after the range's position: before it, the range
/// already shows its effect. Everything else of the window (sends, queue
/// and move-task changes, effects on messages outside the ranges) is in the
/// tail already and is skipped. A transfer (dead letter, move) is split: its
/// source side follows the source range, and its destination side, always a
/// new sequence number and so in the tail, is skipped; the tail was taken
/// after every range, so a message the source range no longer holds is in
/// the destination's tail.
#[derive(Default)]
pub(crate) struct Window {
    /// First segment not in the window (0 until the tail record is read).
    pub tail_segment: u64,
    /// Per queue: (from, to, position) in increasing sequence order.
    pub ranges: HashMap<QueueId, Vec<(u64, u64, LogPos)>>,
    /// Messages of ranges whose queue the tail has not declared yet; a
    /// queue the tail never declares was deleted while the checkpoint ran.
    pub pending: HashMap<QueueId, QueueCore>,
}

impl Window {
    /// Whether a window record at `at` applies to message `seq` of `queue`.
    fn covers(&self, queue: QueueId, seq: u64, at: LogPos) -> bool {
        let Some(rs) = self.ranges.get(&queue) else { return false };
        let i = rs.partition_point(|r| r.1 <= seq);
        rs.get(i).is_some_and(|&(from, _, pos)| from <= seq && pos <= at)
    }
}

/// Queue metadata and everything outside the queues.
pub(crate) struct Catalog {
    pub by_name: BTreeMap<QueueName, QueueId>,
    pub slots: HashMap<QueueId, Arc<Slot>>,
    pub deleted: HashMap<QueueName, u64>,
    pub move_tasks: Vec<MoveTask>,
    pub next_id: u64,
    /// The latest `Record::time_ms` applied: `Store::time_floor_ms` after recovery.
    pub time_floor_ms: u64,
    /// Set while a fuzzy checkpoint is loaded and its window replayed.
    pub window: Option<Window>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            by_name: BTreeMap::new(),
            slots: HashMap::new(),
            deleted: HashMap::new(),
            move_tasks: Vec::new(),
            next_id: 1,
            time_floor_ms: 0,
            window: None,
        }
    }
}

/// Sets a restored queue's next sequence number. `QueueCore` has no setter, so
/// a placeholder message is inserted at `next_seq - 1` (which raises the
/// counter) and removed again. FIXME(sluice-store): a `QueueCore::restore`.
pub(crate) fn set_next_seq(q: &mut QueueCore, next_seq: u64) {
    if next_seq == 0 || q.next_seq() >= next_seq || q.get(next_seq - 1).is_some() {
        return;
    }
    q.insert(CoreMessage {
        message_id: 0.into(),
        payload: Payload::Inline(Box::default()),
        sent_ms: 0,
        seq: next_seq - 1,
        receive_count: 0,
        first_receive_ms: 0,
        group_id: None,
        dedup_id: None,
        dead_letter_source: None,
        state: MessageState::Visible,
    });
    q.remove(next_seq - 1);
}

/// Inserts a replayed message, refusing a sequence number that is in use
/// (`QueueCore::insert` would panic on it).
fn insert_checked(q: &mut QueueCore, m: CoreMessage) -> Result<(), &'static str> {
    if q.get(m.seq).is_some() {
        return Err("sequence number used twice");
    }
    q.insert(m);
    Ok(())
}

/// Applies the changes a transfer mode makes to a message leaving `source`.
pub(crate) fn transform(mut m: CoreMessage, mode: TransferMode, source: QueueId, new_seq: u64) -> CoreMessage {
    m.seq = new_seq;
    m.state = MessageState::Visible;
    match mode {
        TransferMode::DeadLetter => m.dead_letter_source = std::num::NonZeroU64::new(source),
        TransferMode::Reset => {
            m.dead_letter_source = None;
            m.receive_count = 0;
            m.first_receive_ms = 0;
        }
        TransferMode::KeepSource => {}
    }
    m
}

impl Catalog {
    /// The files (`BodyRef::file`) live message bodies point into.
    pub fn referenced_files(&self) -> std::collections::HashSet<u32> {
        self.file_usage().into_keys().collect()
    }

    /// The files live message bodies point into, with the bytes each one's
    /// live messages take there: in a segment the body and the rest of its
    /// encoded message (`MESSAGE_MIN_BYTES` and its frame's share, which a
    /// segment of small live messages is mostly made of), in a bodies file
    /// the body alone.
    pub fn file_usage(&self) -> HashMap<u32, u64> {
        let mut files = HashMap::new();
        for slot in self.slots.values() {
            slot.core.lock().q.for_each_payload_mut(|p| {
                if let Payload::Stored(r) = p {
                    *files.entry(r.file).or_default() += usage_bytes(r);
                }
            });
        }
        files
    }

    /// Messages stored in all queues (one lock per queue, no pass over them).
    pub fn message_count(&self) -> u64 {
        self.slots.values().map(|s| s.core.lock().q.len() as u64).sum()
    }

    fn slot(&self, id: QueueId) -> Option<Arc<Slot>> {
        self.slots.get(&id).cloned()
    }

    /// Checks that a transfer can be applied without reusing a sequence
    /// number, so that a failing record changes nothing.
    fn check_transfer(&self, source: QueueId, t: &Transfer) -> Result<(), &'static str> {
        let Some(dst) = self.slot(t.dest) else { return Ok(()) };
        let c = dst.core.lock();
        let mut seen = std::collections::HashSet::new();
        for (old, new) in &t.pairs {
            let _ = old;
            if !seen.insert(*new) {
                return Err("sequence number used twice");
            }
            let freed = t.dest == source && t.pairs.iter().any(|(o, _)| o == new);
            if c.q.get(*new).is_some() && !freed {
                return Err("sequence number used twice");
            }
        }
        Ok(())
    }

    fn apply_transfer(&self, source: QueueId, t: &Transfer) -> Result<(), &'static str> {
        self.check_transfer(source, t)?;
        let Some(src) = self.slot(source) else { return Ok(()) };
        let taken: Vec<(CoreMessage, u64)> = {
            let mut c = src.core.lock();
            t.pairs.iter().filter_map(|(old, new)| c.q.remove(*old).map(|m| (m, *new))).collect()
        };
        let Some(dst) = self.slot(t.dest) else { return Ok(()) };
        let mut c = dst.core.lock();
        for (m, new) in taken {
            insert_checked(&mut c.q, transform(m, t.mode, source, new))?;
        }
        Ok(())
    }

    /// Applies one log or checkpoint record. Returns a reason when the record
    /// cannot be applied without breaking an invariant.
    pub fn apply(&mut self, rec: Record) -> Result<(), &'static str> {
        self.time_floor_ms = self.time_floor_ms.max(rec.time_ms());
        match rec {
            Record::QueueCreated(info) => {
                if self.slots.contains_key(&info.id) || self.by_name.contains_key(&info.name) {
                    return Err("queue created twice");
                }
                self.next_id = self.next_id.max(info.id + 1);
                self.deleted.remove(&info.name);
                self.by_name.insert(info.name.clone(), info.id);
                self.slots.insert(info.id, Slot::new(info));
            }
            Record::QueueDeleted { queue, now_ms } => {
                if let Some(slot) = self.slots.remove(&queue) {
                    let name = slot.info.read().name.clone();
                    self.by_name.remove(&name);
                    self.deleted.insert(name, now_ms);
                }
            }
            Record::QueueUpdated(info) => {
                if let Some(slot) = self.slot(info.id) {
                    if slot.info.read().name != info.name {
                        return Err("queue renamed by an update");
                    }
                    *slot.info.write() = Arc::new(info);
                }
            }
            Record::MessagesSent { queue, messages, dedup } => {
                self.apply(Record::CheckpointMessages { queue, messages })?;
                self.apply(Record::CheckpointDedup { queue, entries: dedup })?;
            }
            Record::CheckpointDedup { queue, entries } => {
                if let Some(slot) = self.slot(queue) {
                    let mut c = slot.core.lock();
                    for (k, e) in entries {
                        c.q.dedup_register(k, e);
                    }
                }
            }
            Record::CheckpointMessages { queue, messages } => {
                if let Some(slot) = self.slot(queue) {
                    let mut c = slot.core.lock();
                    // Writers emit each record's messages in increasing
                    // sequence order, which also rules out repeats within it.
                    if messages.windows(2).any(|w| w[0].seq >= w[1].seq) || messages.iter().any(|m| c.q.get(m.seq).is_some()) {
                        return Err("sequence numbers repeated or out of order");
                    }
                    for m in messages {
                        insert_checked(&mut c.q, m)?;
                    }
                }
            }
            Record::Received { queue, now_ms, until_ms, delivered, expired, dead_letter, retried, attempt_id: _ } => {
                if let Some(slot) = self.slot(queue) {
                    if let Some(t) = &dead_letter {
                        self.check_transfer(queue, t)?;
                    }
                    {
                        let mut c = slot.core.lock();
                        c.q.promote(now_ms);
                        for s in expired {
                            c.q.remove(s);
                        }
                        for s in delivered {
                            if c.q.get(s).is_none() {
                                continue;
                            }
                            if retried {
                                c.q.apply_inflight_until(s, until_ms);
                            } else {
                                c.q.apply_receive(s, until_ms, now_ms);
                            }
                        }
                    }
                    if let Some(t) = dead_letter {
                        self.apply_transfer(queue, &t)?;
                    }
                }
            }
            Record::Deleted { queue, seqs } | Record::Expired { queue, seqs } => {
                if let Some(slot) = self.slot(queue) {
                    let mut c = slot.core.lock();
                    for s in seqs {
                        c.q.remove(s);
                    }
                }
            }
            Record::VisibilityChanged { queue, now_ms, changes } => {
                if let Some(slot) = self.slot(queue) {
                    let mut c = slot.core.lock();
                    for (s, t) in changes {
                        if c.q.get(s).is_some() {
                            c.q.apply_visibility(s, t, now_ms);
                        }
                    }
                }
            }
            Record::Purged { queue } => {
                if let Some(slot) = self.slot(queue) {
                    slot.core.lock().q.purge();
                }
            }
            Record::Moved { source, now_ms, transfers } => {
                if let Some(slot) = self.slot(source) {
                    for t in &transfers {
                        self.check_transfer(source, t)?;
                    }
                    slot.core.lock().q.promote(now_ms);
                    for t in &transfers {
                        self.apply_transfer(source, t)?;
                    }
                }
            }
            Record::MoveTaskPut(task) | Record::CheckpointMoveTask(task) => self.put_move_task(task),
            // Clock moves only the time floor (`time_ms`, applied above).
            Record::SyncedThrough { .. } | Record::Seal { .. } | Record::Clock { .. } => {}
            Record::CheckpointBegin { next_queue_id, .. } => self.next_id = self.next_id.max(next_queue_id),
            Record::CheckpointQueue { info, next_seq } => {
                if self.slots.contains_key(&info.id) || self.by_name.contains_key(&info.name) {
                    return Err("queue listed twice");
                }
                self.next_id = self.next_id.max(info.id + 1);
                self.by_name.insert(info.name.clone(), info.id);
                let id = info.id;
                let slot = Slot::new(info);
                {
                    let mut c = slot.core.lock();
                    if let Some(q) = self.window.as_mut().and_then(|w| w.pending.remove(&id)) {
                        if q.next_seq() > next_seq {
                            return Err("range beyond the queue's next sequence number");
                        }
                        c.q = q;
                    }
                    set_next_seq(&mut c.q, next_seq);
                }
                self.slots.insert(id, slot);
            }
            Record::CheckpointRange { queue, from_seq, to_seq, segment, offset, messages } => {
                let w = self.window.get_or_insert_with(Window::default);
                if w.tail_segment != 0 {
                    return Err("range after the tail");
                }
                let rs = w.ranges.entry(queue).or_default();
                if from_seq >= to_seq || rs.last().is_some_and(|r| r.1 > from_seq) {
                    return Err("ranges overlap or out of order");
                }
                if messages.windows(2).any(|p| p[0].seq >= p[1].seq) || messages.iter().any(|m| m.seq < from_seq || m.seq >= to_seq) {
                    return Err("range message out of its range or order");
                }
                rs.push((from_seq, to_seq, (segment, offset)));
                let q = w.pending.entry(queue).or_default();
                for m in messages {
                    insert_checked(q, m)?;
                }
            }
            Record::CheckpointTail { segment, next_queue_id } => {
                let w = self.window.get_or_insert_with(Window::default);
                if w.tail_segment != 0 || segment == 0 {
                    return Err("second tail");
                }
                if w.ranges.values().flatten().any(|r| r.2 .0 > segment) {
                    return Err("range taken after the tail");
                }
                w.tail_segment = segment;
                self.next_id = self.next_id.max(next_queue_id);
            }
            Record::CheckpointDeletedName { name, at_ms } => {
                self.deleted.insert(name, at_ms);
            }
            Record::CheckpointEnd { .. } | Record::CheckpointClock { .. } => {}
        }
        Ok(())
    }

    /// The end of a checkpoint: drops the ranges of queues deleted while it
    /// was taken. A window without its tail is refused.
    pub fn end_checkpoint(&mut self) -> Result<(), &'static str> {
        if let Some(w) = &mut self.window {
            if w.tail_segment == 0 {
                return Err("ranges without a tail");
            }
            w.pending.clear();
        }
        Ok(())
    }

    /// Applies a log record found at `at`: as `apply`, unless it lies in the
    /// window of a fuzzy checkpoint (see `Window`).
    pub fn apply_at(&mut self, rec: Record, at: LogPos) -> Result<(), &'static str> {
        match &self.window {
            Some(w) if at.0 < w.tail_segment => self.apply_in_window(rec, at),
            _ => self.apply(rec),
        }
    }

    fn apply_in_window(&mut self, rec: Record, at: LogPos) -> Result<(), &'static str> {
        self.time_floor_ms = self.time_floor_ms.max(rec.time_ms());
        let Some(w) = self.window.take() else { return self.apply(rec) };
        let slot = |id: QueueId| self.slots.get(&id).cloned();
        // The source side of transfers: messages leave their range's queue
        // (the destination's tail holds them).
        let leave = |source: QueueId, t: &Transfer| {
            if let Some(s) = slot(source) {
                let mut c = s.core.lock();
                for (old, _) in &t.pairs {
                    if w.covers(source, *old, at) {
                        c.q.remove(*old);
                    }
                }
            }
        };
        match rec {
            Record::Received { queue, now_ms, until_ms, delivered, expired, dead_letter, retried, attempt_id: _ } => {
                if let Some(s) = slot(queue) {
                    let mut c = s.core.lock();
                    // Promotion only makes due messages visible: applied to a
                    // later state (a range or the tail) it changes nothing
                    // the live store had not also changed by then.
                    c.q.promote(now_ms);
                    for seq in expired {
                        if w.covers(queue, seq, at) {
                            c.q.remove(seq);
                        }
                    }
                    for seq in delivered {
                        if !w.covers(queue, seq, at) || c.q.get(seq).is_none() {
                            continue;
                        }
                        if retried {
                            c.q.apply_inflight_until(seq, until_ms);
                        } else {
                            c.q.apply_receive(seq, until_ms, now_ms);
                        }
                    }
                }
                if let Some(t) = &dead_letter {
                    leave(queue, t);
                }
            }
            Record::Deleted { queue, seqs } | Record::Expired { queue, seqs } => {
                if let Some(s) = slot(queue) {
                    let mut c = s.core.lock();
                    for seq in seqs {
                        if w.covers(queue, seq, at) {
                            c.q.remove(seq);
                        }
                    }
                }
            }
            Record::VisibilityChanged { queue, now_ms, changes } => {
                if let Some(s) = slot(queue) {
                    let mut c = s.core.lock();
                    for (seq, t) in changes {
                        if w.covers(queue, seq, at) && c.q.get(seq).is_some() {
                            c.q.apply_visibility(seq, t, now_ms);
                        }
                    }
                }
            }
            Record::Purged { queue } => {
                if let Some(s) = slot(queue) {
                    let mut c = s.core.lock();
                    let gone: Vec<u64> = c.q.messages().into_iter().map(|m| m.seq).filter(|&seq| w.covers(queue, seq, at)).collect();
                    for seq in gone {
                        c.q.remove(seq);
                    }
                }
            }
            Record::Moved { source, now_ms, transfers } => {
                if let Some(s) = slot(source) {
                    s.core.lock().q.promote(now_ms);
                }
                for t in &transfers {
                    leave(source, t);
                }
            }
            // In the tail already: sends (new sequence numbers), queue and
            // move-task changes. Markers and the clock change no state.
            Record::QueueCreated(_)
            | Record::QueueDeleted { .. }
            | Record::QueueUpdated(_)
            | Record::MessagesSent { .. }
            | Record::MoveTaskPut(_)
            | Record::SyncedThrough { .. }
            | Record::Seal { .. }
            | Record::Clock { .. } => {}
            Record::CheckpointBegin { .. }
            | Record::CheckpointQueue { .. }
            | Record::CheckpointMessages { .. }
            | Record::CheckpointClock { .. }
            | Record::CheckpointDeletedName { .. }
            | Record::CheckpointMoveTask(_)
            | Record::CheckpointDedup { .. }
            | Record::CheckpointRange { .. }
            | Record::CheckpointTail { .. }
            | Record::CheckpointEnd { .. } => {
                self.window = Some(w);
                return Err("checkpoint record in the log");
            }
        }
        self.window = Some(w);
        Ok(())
    }

    /// Inserts or replaces a move task by handle (insertion order is kept, as
    /// in `MemoryStore`).
    pub fn put_move_task(&mut self, task: MoveTask) {
        match self.move_tasks.iter_mut().find(|t| t.task_handle == task.task_handle) {
            Some(t) => *t = task,
            None => self.move_tasks.push(task),
        }
    }
}

/// A message and its delivery state, for `StateDump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDump {
    /// The message.
    pub message: StoredMessage,
    /// Visible, delayed or in flight.
    pub state: MessageState,
}

/// One queue in a `StateDump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDump {
    /// Metadata.
    pub info: QueueInfo,
    /// Next sequence number.
    pub next_seq: u64,
    /// Messages in sequence order.
    pub messages: Vec<MessageDump>,
    /// Live FIFO deduplication entries, by (expiry, key).
    pub dedup: Vec<(String, DedupEntry)>,
}

/// The whole logical state, for tests comparing a store before and after a
/// restart, and for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDump {
    /// Next queue id.
    pub next_queue_id: u64,
    /// Queues by id.
    pub queues: Vec<QueueDump>,
    /// Recently deleted names.
    pub deleted: BTreeMap<QueueName, u64>,
    /// Move tasks in insertion order.
    pub move_tasks: Vec<MoveTask>,
}

impl Catalog {
    /// Dumps the state; due messages are promoted at `now_ms` first so that a
    /// promotion done by a read (which is not logged) does not show up as a
    /// difference. Payloads are read through `bodies`; one that cannot be
    /// read shows as `<unreadable: why>` (a dump is for tests and diagnostics).
    pub fn dump(&self, now_ms: u64, bodies: &Bodies) -> StateDump {
        let mut ids: Vec<QueueId> = self.slots.keys().copied().collect();
        ids.sort_unstable();
        let queues = ids
            .into_iter()
            .map(|id| {
                let slot = &self.slots[&id];
                let info = (**slot.info.read()).clone();
                let mut c = slot.core.lock();
                c.q.promote(now_ms);
                let messages = c
                    .q
                    .messages()
                    .into_iter()
                    .map(|m| {
                        let payload = bodies.get(&m.payload).unwrap_or_else(|e| bytes::Bytes::from(format!("<unreadable: {e}>")));
                        MessageDump { message: m.to_stored_with(payload), state: m.state }
                    })
                    .collect();
                let mut dedup: Vec<(String, DedupEntry)> = c.q.dedup_entries().into_iter().filter(|(_, e)| e.expires_ms > now_ms).collect();
                dedup.sort_by(|a, b| (a.1.expires_ms, &a.0).cmp(&(b.1.expires_ms, &b.0)));
                QueueDump { info, next_seq: c.q.next_seq(), messages, dedup }
            })
            .collect();
        StateDump {
            next_queue_id: self.next_id,
            queues,
            deleted: self.deleted.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            move_tasks: self.move_tasks.clone(),
        }
    }
}

/// What a live message counts in its file for `Catalog::file_usage`.
pub(crate) fn usage_bytes(r: &BodyRef) -> u64 {
    let rest = if r.file & CHECKPOINT_FILE_BIT == 0 { MESSAGE_IN_SEGMENT_BYTES } else { 0 };
    u64::from(r.len) + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ranges_a_window_record_applies_to_their_messages_from_the_position_each_was_taken_at() {
        let mut w = Window::default();
        w.ranges.insert(7, vec![(10, 20, (5, 100)), (20, 40, (6, 64))]);
        // At the very position a range was taken: the record came after it.
        assert!(w.covers(7, 10, (5, 100)));
        assert!(w.covers(7, 19, (6, 0)));
        assert!(!w.covers(7, 10, (5, 99)), "before the range: it shows the effect");
        assert!(!w.covers(7, 20, (5, 200)));
        assert!(w.covers(7, 39, (6, 64)));
        assert!(!w.covers(7, 40, (9, 0)), "above the ranges: the tail's");
        assert!(!w.covers(7, 5, (9, 0)), "below them: no message");
        assert!(!w.covers(8, 10, (9, 0)), "another queue");
    }

    #[test]
    fn set_next_seq_raises_the_counter_without_leaving_a_message() {
        let mut q = QueueCore::new();
        set_next_seq(&mut q, 42);
        assert_eq!(q.next_seq(), 42);
        assert!(q.is_empty());
        set_next_seq(&mut q, 7);
        assert_eq!(q.next_seq(), 42);
    }
}
