//! The state machine of one queue: which messages exist, which are visible,
//! delayed or in flight, and the effect of every queue operation on them.
//!
//! It is pure (no locks, no I/O, time passed in) and deterministic, so that the
//! in-memory engine uses it directly and the durable engine replays its log
//! through the same methods and arrives at the same state.
//!
//! Cost: every operation is O(log n) in the number of stored messages; nothing
//! scans the backlog on the request path.

use crate::types::*;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Visible: can be received now.
    Visible,
    /// Not yet delivered, waiting for its delay to pass.
    Delayed {
        /// When it becomes visible.
        until_ms: u64,
    },
    /// Received and not deleted; invisible until the visibility timeout passes.
    Inflight {
        /// When it becomes visible again.
        until_ms: u64,
    },
}

/// Where a message's payload (encoded body and attributes) lives on disk:
/// `len` bytes at `offset` of an engine-chosen file, whose CRC32C is `crc`.
///
/// Only engines interpret `file` (the durable engine numbers segments and
/// checkpoints in it); `QueueCore` just carries the handle. 20 bytes of data.
///
/// Packed to 4-byte alignment so that it takes 20 bytes, not 24, inside every
/// stored message; read its fields by value (`let off = r.offset;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, packed(4))]
pub struct BodyRef {
    /// Byte offset of the payload in the file.
    pub offset: u64,
    /// The file, in the engine's numbering.
    pub file: u32,
    /// Payload length in bytes.
    pub len: u32,
    /// CRC32C of the payload bytes, checked on every read from disk.
    pub crc: u32,
}

/// A message's payload: in memory (the in-memory engine), or a handle to
/// bytes on disk that the engine resolves when a receive needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The bytes themselves (boxed: the in-memory engine pays one small
    /// allocation so that every engine's message stays small).
    Inline(Box<Bytes>),
    /// Where the bytes are.
    Stored(BodyRef),
}

impl Payload {
    /// The bytes, when held in memory.
    pub fn inline(&self) -> Option<&Bytes> {
        match self {
            Payload::Inline(b) => Some(&**b),
            Payload::Stored(_) => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Inline(b) => b.len(),
            Payload::Stored(r) => r.len as usize,
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `u128` kept as two `u64`s: a bare `u128` would align every message
/// to 16 bytes and make it 8 bytes larger.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Id128([u64; 2]);

impl Id128 {
    /// The value.
    pub fn get(self) -> u128 {
        u128::from(self.0[0]) | u128::from(self.0[1]) << 64
    }
}

impl From<u128> for Id128 {
    fn from(v: u128) -> Self {
        Id128([v as u64, (v >> 64) as u64])
    }
}

impl std::fmt::Debug for Id128 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A stored message with its delivery state.
///
/// This is the per-message index entry of every engine, so it is kept small:
/// the payload is a handle in the durable engine, the group id is shared with
/// the group index (`Arc<str>`), and the rare deduplication id is boxed.
#[derive(Debug, Clone)]
pub struct CoreMessage {
    /// MessageId.
    pub message_id: Id128,
    /// Encoded body and attributes, or where they are.
    pub payload: Payload,
    /// Enqueue time.
    pub sent_ms: u64,
    /// Sequence number in this queue.
    pub seq: u64,
    /// Times received.
    pub receive_count: u32,
    /// First receive time, 0 when never received.
    pub first_receive_ms: u64,
    /// FIFO group.
    pub group_id: Option<Arc<str>>,
    /// FIFO deduplication id (a thin box: rare, and 8 bytes when absent).
    pub dedup_id: Option<Box<String>>,
    /// Dead-letter source queue (queue ids start at 1).
    pub dead_letter_source: Option<NonZeroU64>,
    /// Delivery state.
    pub state: MessageState,
}

impl CoreMessage {
    /// The interface view of this message, with its payload bytes (resolved
    /// by the engine when the message holds a `Payload::Stored` handle).
    pub fn to_stored_with(&self, payload: Bytes) -> StoredMessage {
        StoredMessage {
            message_id: self.message_id.get(),
            payload,
            sent_ms: self.sent_ms,
            receive_count: self.receive_count,
            first_receive_ms: self.first_receive_ms,
            sequence_number: self.seq,
            group_id: self.group_id.as_deref().map(str::to_string),
            dedup_id: self.dedup_id.as_deref().cloned(),
            dead_letter_source: self.dead_letter_source.map(NonZeroU64::get),
        }
    }

    /// The interface view of a message whose payload is in memory.
    ///
    /// Panics on a `Payload::Stored` handle: engines that store payloads
    /// elsewhere resolve them and call `to_stored_with` (a programmer error).
    pub fn to_stored(&self) -> StoredMessage {
        let payload = self.payload.inline().expect("to_stored on a payload stored on disk: resolve it and use to_stored_with");
        self.to_stored_with(payload.clone())
    }
}

/// The rules one receive applies, from the queue's configuration and the request.
#[derive(Debug, Clone)]
pub struct ReceiveRules<'a> {
    /// Messages wanted (1 to 10).
    pub max: usize,
    /// Visibility timeout for the delivered messages.
    pub visibility_timeout_secs: u32,
    /// Dead-letter after this many receives (None: no redrive).
    pub max_receive_count: Option<u32>,
    /// Drop messages older than this.
    pub retention_secs: u32,
    /// Stop when this many messages are in flight.
    pub inflight_limit: usize,
    /// FIFO rules: a group with a message in flight is blocked.
    pub fifo: bool,
    /// FIFO: ReceiveRequestAttemptId.
    pub attempt_id: Option<&'a str>,
}

/// What one receive decided; the durable engine logs exactly these effects.
#[derive(Debug, Default)]
pub struct CoreReceive {
    /// Sequence numbers delivered, in order, each now in flight.
    pub delivered: Vec<u64>,
    /// The visibility deadline given to the delivered messages.
    pub until_ms: u64,
    /// True when `delivered` repeats an earlier receive with the same attempt
    /// id: no receive count changed, only the visibility deadline was reset.
    pub retried: bool,
    /// Messages removed because they reached maxReceiveCount (to be put into the dead-letter queue).
    pub dead_lettered: Vec<CoreMessage>,
    /// Sequence numbers dropped because their retention period passed.
    pub expired: Vec<u64>,
    /// The in-flight limit stopped the receive.
    pub over_limit: bool,
}

/// The deduplication window of FIFO queues (5 minutes).
pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;
/// How long a ReceiveRequestAttemptId can be retried (5 minutes).
pub const ATTEMPT_WINDOW_MS: u64 = 5 * 60 * 1000;

/// A message group (FIFO) or tenant (fair standard queue).
#[derive(Debug, Default)]
struct Group {
    /// Visible messages of the group, in order.
    visible: BTreeSet<u64>,
    /// Messages of the group in flight.
    inflight: BTreeSet<u64>,
    /// Its key in `tenants` (in the queue's `Extra`) while it has visible messages.
    key: Option<(u32, u64)>,
    /// Its key in `fifo_ready` (in the queue's `Extra`) while its oldest visible message
    /// precedes every message of the group in flight.
    ready: Option<u64>,
}

/// An entry of the deduplication table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupEntry {
    /// The MessageId of the first send.
    pub message_id: u128,
    /// Its sequence number.
    pub seq: u64,
    /// When the entry stops deduplicating.
    pub expires_ms: u64,
}

/// One queue's messages.
///
/// Visible messages are indexed by group: messages without a group id sit in
/// `ungrouped` (sequence order); each group keeps its own ordered set, and
/// `tenants` orders the groups that have visible messages by (messages in
/// flight, oldest visible sequence number), and `fifo_ready` holds the groups
/// whose oldest visible message precedes all their in-flight ones. FIFO
/// receives take from `fifo_ready`, oldest first, never delivering a message
/// after an in-flight one of its group; standard receives take the tenant
/// with the fewest messages in flight, so one flooding tenant cannot starve
/// the others (fair queues), and ungrouped messages count as tenants of their own.
#[derive(Debug, Default)]
pub struct QueueCore {
    next_seq: u64,
    messages: MessageTable,
    ungrouped: BTreeSet<u64>,
    visible_count: usize,
    delayed: BTreeSet<(u64, u64)>,
    inflight: BTreeSet<(u64, u64)>,
    /// Message groups, deduplication and receive attempts: allocated on
    /// first use, so a standard queue without groups carries 8 bytes for
    /// them, not six empty collections (224 bytes; RELIABILITY.md R17).
    x: Option<Box<Extra>>,
}

/// The parts of a `QueueCore` only FIFO queues and grouped messages use.
#[derive(Debug, Default)]
struct Extra {
    groups: HashMap<Arc<str>, Group>,
    tenants: BTreeSet<(u32, u64, Arc<str>)>,
    fifo_ready: BTreeSet<(u64, Arc<str>)>,
    dedup: HashMap<String, DedupEntry>,
    dedup_expiry: VecDeque<(u64, String)>,
    attempts: HashMap<String, (Vec<Receipt>, u64)>,
}

impl Extra {
    /// Re-files a group in `tenants` and `fifo_ready` after its visible set
    /// or its in-flight set changed.
    fn refile(&mut self, g: &str) {
        let Some((name, group)) = self.groups.get_key_value(g) else { return };
        let name = name.clone();
        let (old_key, old_ready) = (group.key, group.ready);
        let head = group.visible.first().copied();
        let new_key = head.map(|h| (group.inflight.len() as u32, h));
        // AWS blocks only the messages that come after one in flight: a
        // group's head is deliverable when it precedes all its in-flight ones.
        let new_ready = head.filter(|h| group.inflight.first().is_none_or(|f| h < f));
        let empty = group.visible.is_empty() && group.inflight.is_empty();
        if old_key != new_key {
            if let Some((i, h)) = old_key {
                self.tenants.remove(&(i, h, name.clone()));
            }
            if let Some((i, h)) = new_key {
                self.tenants.insert((i, h, name.clone()));
            }
        }
        if old_ready != new_ready {
            if let Some(h) = old_ready {
                self.fifo_ready.remove(&(h, name.clone()));
            }
            if let Some(h) = new_ready {
                self.fifo_ready.insert((h, name.clone()));
            }
        }
        if empty {
            self.groups.remove(g);
        } else if let Some(gr) = self.groups.get_mut(g) {
            gr.key = new_key;
            gr.ready = new_ready;
        }
    }

}

/// The messages of a queue by sequence number: hash tables of boxes keyed
/// by the sequence number inside each message, so a slot is one pointer
/// (8 bytes + 1 control byte; a table keeps 1/8 to 1/2 of its slots empty,
/// and an empty slot costs a pointer instead of a whole message).
///
/// One table while the queue is small; from `SHARD_AT` messages on,
/// `SHARDS` tables, each taking every 256th run of 256 numbers. A table
/// grows by rehashing every entry at once, under the queue's lock, reading
/// each through its pointer: one table of 7.3 M messages stalled a send for
/// 1.56 s (0.73 s at 3.7 M, 77 ms at 0.9 M; release build). Sharded, each
/// growth moves 1/256 of them. A shard also shrinks when mostly empty, so a
/// drained backlog gives its table memory back.
///
/// The buckets keep the numbers' order (see `ordered_hash`): a queue is
/// written, received and checkpointed oldest first, so each of those walks
/// its table's memory in order instead of missing the CPU's caches once per
/// message.
#[derive(Debug)]
enum MessageTable {
    One(hashbrown::HashTable<Box<CoreMessage>>),
    Sharded { shards: Box<[hashbrown::HashTable<Box<CoreMessage>>]>, len: usize },
}

impl Default for MessageTable {
    fn default() -> Self {
        MessageTable::One(hashbrown::HashTable::new())
    }
}

/// Messages at which a queue's table is split into shards.
const SHARD_AT: usize = 1 << 16;
/// log2 of the shards of a large queue's table.
const SHARD_BITS: u32 = 8;
/// Shards of a large queue's table.
const SHARDS: usize = 1 << SHARD_BITS;
/// log2 of the run of consecutive numbers that goes to one shard.
const SHARD_RUN_BITS: u32 = 8;
/// A shard with room for at least this many shrinks once under 1/8 full.
const SHRINK_FROM: usize = 1024;

/// The golden ratio in 64 bits, for Fibonacci hashing.
const FIB: u64 = 0x9E37_79B9_7F4A_7C15;
/// The hash bits a table reads its 7-bit control byte from.
const TAG: u64 = !0 << 57;
/// log2 of the run of keys laid out in order in a table.
const ORDERED_RUN_BITS: u32 = 16;

/// The hash of a message numbered `seq`, filed in its table under `key`
/// (`seq` itself, or its number within its shard).
///
/// The bucket (the low bits) is `key` plus an offset drawn from `key`'s
/// run of 2^16: within a run, consecutive keys take consecutive buckets,
/// so a table of a dense queue reads like an array; the offsets spread the
/// runs, so keys that differ only above the run (a queue left with every
/// 2^20th message, say) do not pile into one bucket. Within one run at most
/// 2^16 / buckets keys share a bucket. The control byte (the top 7 bits)
/// is a Fibonacci hash of the whole number, so neighbours' bytes differ and
/// a probe compares about one key.
fn ordered_hash(seq: u64, key: u64) -> u64 {
    // The product's high bits depend on every bit of the run's number
    // (its low bits keep the number's trailing zeros).
    let offset = (key >> ORDERED_RUN_BITS).wrapping_mul(FIB) >> 24;
    let bucket = key.wrapping_add(offset);
    (bucket & !TAG) | (seq.wrapping_mul(FIB) & TAG)
}

/// The hash of `seq` in an unsharded table.
fn one_hash(seq: u64) -> u64 {
    ordered_hash(seq, seq)
}

/// The shard of `seq`: runs of 2^`SHARD_RUN_BITS` numbers go to the shards
/// in turn.
fn shard_of(seq: u64) -> usize {
    ((seq >> SHARD_RUN_BITS) as usize) & (SHARDS - 1)
}

/// The hash of `seq` in its shard, keyed by its number within the shard
/// (the shard's bits taken out), so a shard of a dense queue is dense too.
fn shard_hash(seq: u64) -> u64 {
    let low = seq & ((1 << SHARD_RUN_BITS) - 1);
    let key = ((seq >> (SHARD_RUN_BITS + SHARD_BITS)) << SHARD_RUN_BITS) | low;
    ordered_hash(seq, key)
}

type Table = hashbrown::HashTable<Box<CoreMessage>>;

impl MessageTable {
    fn len(&self) -> usize {
        match self {
            MessageTable::One(t) => t.len(),
            MessageTable::Sharded { len, .. } => *len,
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table `seq` belongs in, and its hash there.
    fn table(&self, seq: u64) -> (&Table, u64) {
        match self {
            MessageTable::One(t) => (t, one_hash(seq)),
            MessageTable::Sharded { shards, .. } => (&shards[shard_of(seq)], shard_hash(seq)),
        }
    }

    fn table_mut(&mut self, seq: u64) -> (&mut Table, u64, fn(u64) -> u64) {
        match self {
            MessageTable::One(t) => (t, one_hash(seq), one_hash),
            MessageTable::Sharded { shards, .. } => (&mut shards[shard_of(seq)], shard_hash(seq), shard_hash),
        }
    }

    fn tables(&self) -> &[Table] {
        match self {
            MessageTable::One(t) => std::slice::from_ref(t),
            MessageTable::Sharded { shards, .. } => shards,
        }
    }

    fn tables_mut(&mut self) -> &mut [Table] {
        match self {
            MessageTable::One(t) => std::slice::from_mut(t),
            MessageTable::Sharded { shards, .. } => shards,
        }
    }

    fn get(&self, seq: &u64) -> Option<&CoreMessage> {
        let (t, hash) = self.table(*seq);
        t.find(hash, |m| m.seq == *seq).map(|m| &**m)
    }

    fn get_mut(&mut self, seq: &u64) -> Option<&mut Box<CoreMessage>> {
        let (t, hash, _) = self.table_mut(*seq);
        t.find_mut(hash, |m| m.seq == *seq)
    }

    /// Inserts `m` under its own sequence number; false (and nothing
    /// changed) if that number is taken. One probe of the table.
    fn insert(&mut self, m: Box<CoreMessage>) -> bool {
        if let MessageTable::One(t) = self {
            if t.len() >= SHARD_AT {
                let mut shards: Box<[Table]> = (0..SHARDS).map(|_| Table::with_capacity(2 * SHARD_AT / SHARDS)).collect();
                let len = t.len();
                for m in std::mem::take(t) {
                    shards[shard_of(m.seq)].insert_unique(shard_hash(m.seq), m, |m| shard_hash(m.seq));
                }
                *self = MessageTable::Sharded { shards, len };
            }
        }
        let seq = m.seq;
        let (t, hash, rehash) = self.table_mut(seq);
        match t.entry(hash, |x| x.seq == seq, |x| rehash(x.seq)) {
            hashbrown::hash_table::Entry::Occupied(_) => return false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(m);
            }
        }
        if let MessageTable::Sharded { len, .. } = self {
            *len += 1;
        }
        true
    }

    fn remove(&mut self, seq: &u64) -> Option<Box<CoreMessage>> {
        let (t, hash, _) = self.table_mut(*seq);
        let m = t.find_entry(hash, |m| m.seq == *seq).ok().map(|e| e.remove().0)?;
        if let MessageTable::Sharded { shards, len } = self {
            *len -= 1;
            let t = &mut shards[shard_of(*seq)];
            if t.capacity() >= SHRINK_FROM && t.len() * 8 < t.capacity() {
                t.shrink_to(t.len() * 2, |m| shard_hash(m.seq));
            }
        }
        Some(m)
    }

    fn clear(&mut self) {
        *self = MessageTable::default();
    }

    fn values(&self) -> impl Iterator<Item = &Box<CoreMessage>> {
        self.tables().iter().flat_map(|t| t.iter())
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Box<CoreMessage>> {
        self.tables_mut().iter_mut().flat_map(|t| t.iter_mut())
    }
}

impl QueueCore {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence number the next inserted message gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is stored.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// A stored message.
    pub fn get(&self, seq: u64) -> Option<&CoreMessage> {
        self.messages.get(&seq)
    }

    /// Builds a new message with the next sequence number (not yet inserted).
    pub fn prepare(&mut self, m: &NewMessage, delay_secs: u32, now_ms: u64) -> CoreMessage {
        let seq = self.next_seq;
        self.next_seq += 1;
        let state = if delay_secs > 0 {
            MessageState::Delayed { until_ms: now_ms + u64::from(delay_secs) * 1000 }
        } else {
            MessageState::Visible
        };
        CoreMessage {
            message_id: Id128::from(m.message_id),
            payload: Payload::Inline(Box::new(m.payload.clone())),
            sent_ms: now_ms,
            seq,
            receive_count: 0,
            first_receive_ms: 0,
            group_id: m.group_id.as_deref().map(|g| self.intern_group(g)),
            dedup_id: m.dedup_id.clone().map(Box::new),
            dead_letter_source: None,
            state,
        }
    }

    /// The shared name of group `g`: the group index's key when the group
    /// exists, so that its messages share one allocation.
    pub fn intern_group(&self, g: &str) -> Arc<str> {
        match self.x.as_ref().and_then(|x| x.groups.get_key_value(g)) {
            Some((k, _)) => k.clone(),
            None => Arc::from(g),
        }
    }

    /// Replaces the payload of a stored message (the durable engine swaps
    /// in-memory bytes for a handle once it knows where they are written,
    /// and repoints handles after a checkpoint). Returns false when no
    /// message has that sequence number.
    pub fn set_payload(&mut self, seq: u64, payload: Payload) -> bool {
        match self.messages.get_mut(&seq) {
            Some(m) => {
                m.payload = payload;
                true
            }
            None => false,
        }
    }

    /// Visits every message's payload, in no particular order (the durable
    /// engine repoints handles after a checkpoint).
    pub fn for_each_payload_mut(&mut self, mut f: impl FnMut(&mut Payload)) {
        for m in self.messages.values_mut() {
            f(&mut m.payload);
        }
    }

    /// Inserts a message (new, moved in, or replayed); its `seq` must be unused.
    pub fn insert(&mut self, m: CoreMessage) {
        let (seq, state, group) = (m.seq, m.state, m.group_id.clone());
        let inserted = self.messages.insert(Box::new(m));
        assert!(inserted, "sequence number {seq} reused");
        if seq >= self.next_seq {
            self.next_seq = seq + 1;
        }
        self.index(seq, state, group.as_ref());
    }

    /// Gives a message moved in from another queue a fresh sequence number here.
    pub fn renumber(&mut self, mut m: CoreMessage) -> CoreMessage {
        m.seq = self.next_seq;
        self.next_seq += 1;
        m.state = MessageState::Visible;
        m
    }

    fn group_mut(&mut self, g: &Arc<str>) -> &mut Group {
        self.x.get_or_insert_with(Box::default).groups.entry(g.clone()).or_default()
    }

    fn refile(&mut self, g: &str) {
        if let Some(x) = self.x.as_mut() {
            x.refile(g);
        }
    }

    fn index(&mut self, seq: u64, state: MessageState, group: Option<&Arc<str>>) {
        match state {
            MessageState::Visible => {
                self.visible_count += 1;
                match group {
                    None => {
                        self.ungrouped.insert(seq);
                    }
                    Some(g) => {
                        self.group_mut(g).visible.insert(seq);
                        self.refile(g);
                    }
                }
            }
            MessageState::Delayed { until_ms } => {
                self.delayed.insert((until_ms, seq));
            }
            MessageState::Inflight { until_ms } => {
                self.inflight.insert((until_ms, seq));
                if let Some(g) = group {
                    self.group_mut(g).inflight.insert(seq);
                    self.refile(g);
                }
            }
        }
    }

    fn unindex(&mut self, seq: u64, state: MessageState, group: Option<&str>) {
        match state {
            MessageState::Visible => {
                let removed = match group {
                    None => self.ungrouped.remove(&seq),
                    Some(g) => {
                        let r = self.x.as_mut().and_then(|x| x.groups.get_mut(g)).is_some_and(|gr| gr.visible.remove(&seq));
                        self.refile(g);
                        r
                    }
                };
                if removed {
                    self.visible_count -= 1;
                }
            }
            MessageState::Delayed { until_ms } => {
                self.delayed.remove(&(until_ms, seq));
            }
            MessageState::Inflight { until_ms } => {
                if self.inflight.remove(&(until_ms, seq)) {
                    if let Some(g) = group {
                        if let Some(gr) = self.x.as_mut().and_then(|x| x.groups.get_mut(g)) {
                            gr.inflight.remove(&seq);
                        }
                        self.refile(g);
                    }
                }
            }
        }
    }

    fn set_state(&mut self, seq: u64, state: MessageState) {
        let Some((old, group)) = self.messages.get(&seq).map(|m| (m.state, m.group_id.clone())) else { return };
        self.unindex(seq, old, group.as_deref());
        if let Some(m) = self.messages.get_mut(&seq) {
            m.state = state;
        }
        self.index(seq, state, group.as_ref());
    }

    /// Makes every delayed or in-flight message whose time has come visible.
    pub fn promote(&mut self, now_ms: u64) {
        while let Some(&(until, seq)) = self.delayed.first() {
            if until > now_ms {
                break;
            }
            self.set_state(seq, MessageState::Visible);
        }
        while let Some(&(until, seq)) = self.inflight.first() {
            if until > now_ms {
                break;
            }
            self.set_state(seq, MessageState::Visible);
        }
    }

    /// Removes a message, whatever its state.
    pub fn remove(&mut self, seq: u64) -> Option<CoreMessage> {
        let m = *self.messages.remove(&seq)?;
        self.unindex(seq, m.state, m.group_id.as_deref());
        Some(m)
    }

    /// The next visible message to hand out: FIFO takes the oldest head of a
    /// group with nothing in flight; standard takes the tenant with the fewest
    /// messages in flight (ungrouped messages count as tenants with none).
    fn pick(&self, fifo: bool) -> Option<u64> {
        let ungrouped = self.ungrouped.first().map(|&s| (0u32, s));
        if fifo {
            let t = self.x.as_ref().and_then(|x| x.fifo_ready.first()).map(|(h, _)| *h);
            return match (t, ungrouped.map(|(_, s)| s)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let tenant = self.x.as_ref().and_then(|x| x.tenants.first()).map(|(i, h, _)| (*i, *h));
        match (ungrouped, tenant) {
            (Some(a), Some(b)) => Some(a.min(b).1),
            (a, b) => a.or(b).map(|x| x.1),
        }
    }

    /// FIFO: the next message of `group` within the batch, if it still
    /// precedes `limit` (the group's oldest message in flight before the batch).
    fn next_in_group(&self, group: &str, limit: u64) -> Option<u64> {
        self.x.as_ref()?.groups.get(group)?.visible.first().copied().filter(|s| *s < limit)
    }

    /// FIFO: the group's oldest in-flight sequence number (u64::MAX if none).
    fn inflight_floor(&self, group: Option<&str>) -> u64 {
        group.and_then(|g| self.x.as_ref()?.groups.get(g)).and_then(|g| g.inflight.first().copied()).unwrap_or(u64::MAX)
    }

    /// Receives up to `rules.max` visible messages.
    ///
    /// A message that has already been received `max_receive_count` times is
    /// dead-lettered instead of delivered (AWS: "when the ReceiveCount for a
    /// message exceeds the maxReceiveCount"), and one older than the retention
    /// period is dropped. On FIFO queues a batch takes consecutive messages of
    /// one group before moving to the next group, and a retried attempt id
    /// returns the same messages (AWS ReceiveRequestAttemptId documentation).
    pub fn receive(&mut self, rules: &ReceiveRules<'_>, now_ms: u64) -> CoreReceive {
        self.promote(now_ms);
        let until_ms = now_ms + u64::from(rules.visibility_timeout_secs) * 1000;
        let mut out = CoreReceive { until_ms, ..Default::default() };
        if rules.fifo {
            if let Some(x) = self.x.as_mut() {
                x.attempts.retain(|_, (_, exp)| *exp > now_ms);
            }
            if let Some(id) = rules.attempt_id {
                if let Some((receipts, _)) = self.x.as_ref().and_then(|x| x.attempts.get(id).cloned()) {
                    let intact = receipts.iter().all(|r| {
                        self.messages.get(&r.sequence_number).is_some_and(|m| {
                            m.receive_count == r.generation && matches!(m.state, MessageState::Inflight { .. })
                        })
                    });
                    if intact {
                        for r in &receipts {
                            self.set_state(r.sequence_number, MessageState::Inflight { until_ms });
                        }
                        out.delivered = receipts.iter().map(|r| r.sequence_number).collect();
                        out.retried = true;
                        return out;
                    }
                    if let Some(x) = self.x.as_mut() {
                        x.attempts.remove(id);
                    }
                }
            }
        }
        let retention_ms = u64::from(rules.retention_secs) * 1000;
        // FIFO: the group being taken and the in-flight floor it had before.
        let mut current: Option<(Arc<str>, u64)> = None;
        while out.delivered.len() < rules.max {
            if self.inflight.len() >= rules.inflight_limit {
                out.over_limit = true;
                break;
            }
            // FIFO: keep taking the group we started on, in order.
            let next = current.as_ref().and_then(|(g, limit)| self.next_in_group(g, *limit)).or_else(|| {
                current = None;
                self.pick(rules.fifo)
            });
            let Some(seq) = next else { break };
            let Some(m) = self.messages.get(&seq) else {
                // The index and the map disagree: a programmer error. Repair
                // the index rather than loop forever.
                self.ungrouped.remove(&seq);
                continue;
            };
            if rules.fifo && current.is_none() {
                if let Some(g) = m.group_id.clone() {
                    let floor = self.inflight_floor(Some(&g));
                    current = Some((g, floor));
                }
            }
            if m.sent_ms + retention_ms <= now_ms {
                self.remove(seq);
                out.expired.push(seq);
                continue;
            }
            if let Some(limit) = rules.max_receive_count {
                if m.receive_count >= limit {
                    if let Some(m) = self.remove(seq) {
                        out.dead_lettered.push(m);
                    }
                    continue;
                }
            }
            self.apply_receive(seq, until_ms, now_ms);
            out.delivered.push(seq);
        }
        if rules.fifo && !out.delivered.is_empty() {
            if let Some(id) = rules.attempt_id {
                let receipts = out
                    .delivered
                    .iter()
                    .filter_map(|s| self.messages.get(s))
                    .map(|m| Receipt { sequence_number: m.seq, generation: m.receive_count })
                    .collect();
                self.x.get_or_insert_with(Box::default).attempts.insert(id.to_string(), (receipts, now_ms + ATTEMPT_WINDOW_MS));
            }
        }
        out
    }

    /// Marks one message received now, invisible until `until_ms`.
    pub fn apply_receive(&mut self, seq: u64, until_ms: u64, now_ms: u64) {
        if let Some(m) = self.messages.get_mut(&seq) {
            // Saturating: a count replayed from a damaged or hostile data
            // directory may already be at the top (the recovery fuzzer).
            m.receive_count = m.receive_count.saturating_add(1);
            if m.first_receive_ms == 0 {
                m.first_receive_ms = now_ms;
            }
        }
        self.set_state(seq, MessageState::Inflight { until_ms });
    }

    /// Sets an in-flight deadline without counting a receive (replay of a
    /// retried attempt).
    pub fn apply_inflight_until(&mut self, seq: u64, until_ms: u64) {
        self.set_state(seq, MessageState::Inflight { until_ms });
    }

    /// Checks a receipt against the message it names.
    pub fn check_receipt(&self, r: Receipt) -> Result<&CoreMessage, DeleteOutcome> {
        let m = self.messages.get(&r.sequence_number).ok_or(DeleteOutcome::Gone)?;
        if m.receive_count != r.generation {
            return Err(DeleteOutcome::Stale);
        }
        Ok(m)
    }

    /// Deletes by receipt. The latest receipt deletes even after the visibility
    /// timeout expired, as long as nobody received the message since.
    pub fn delete(&mut self, r: Receipt) -> DeleteOutcome {
        match self.check_receipt(r) {
            Ok(_) => {
                self.remove(r.sequence_number);
                DeleteOutcome::Deleted
            }
            Err(o) => o,
        }
    }

    /// Deletes by receipt with the queue type's rules: on FIFO queues a
    /// receipt whose message is no longer in flight has expired and deletes
    /// nothing (AWS: "The receipt handle has expired.").
    pub fn delete_checked(&mut self, r: Receipt, fifo: bool, now_ms: u64) -> DeleteOutcome {
        if fifo {
            match self.check_receipt(r) {
                Ok(m) => match m.state {
                    MessageState::Inflight { until_ms } if until_ms > now_ms => {}
                    _ => return DeleteOutcome::Expired,
                },
                Err(o) => return o,
            }
        }
        self.delete(r)
    }

    /// Changes the visibility timeout of an in-flight message; 0 makes it visible now.
    pub fn change_visibility(&mut self, r: Receipt, timeout_secs: u32, now_ms: u64) -> VisibilityOutcome {
        let m = match self.check_receipt(r) {
            Ok(m) => m,
            Err(DeleteOutcome::Stale) => return VisibilityOutcome::Stale,
            Err(_) => return VisibilityOutcome::Gone,
        };
        match m.state {
            MessageState::Inflight { until_ms } if until_ms > now_ms => {}
            _ => return VisibilityOutcome::NotInflight,
        }
        self.apply_visibility(r.sequence_number, timeout_secs, now_ms);
        VisibilityOutcome::Changed
    }

    /// Sets a message's visibility deadline (replay and `change_visibility`).
    pub fn apply_visibility(&mut self, seq: u64, timeout_secs: u32, now_ms: u64) {
        let state = if timeout_secs == 0 {
            MessageState::Visible
        } else {
            MessageState::Inflight { until_ms: now_ms + u64::from(timeout_secs) * 1000 }
        };
        self.set_state(seq, state);
    }

    /// Removes every message and forgets the deduplication history, as AWS
    /// does on PurgeQueue.
    pub fn purge(&mut self) -> usize {
        self.x = None;
        let n = self.messages.len();
        self.messages.clear();
        self.ungrouped.clear();
        self.visible_count = 0;
        self.delayed.clear();
        self.inflight.clear();
        n
    }

    /// Counts by state.
    pub fn counts(&mut self, now_ms: u64) -> QueueCounts {
        self.promote(now_ms);
        QueueCounts {
            visible: self.visible_count as u64,
            inflight: self.inflight.len() as u64,
            delayed: self.delayed.len() as u64,
        }
    }

    /// The earliest moment a delayed or in-flight message becomes visible.
    pub fn next_visible_ms(&self) -> Option<u64> {
        let a = self.delayed.first().map(|x| x.0);
        let b = self.inflight.first().map(|x| x.0);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes up to `max` visible messages for a move, in delivery order
    /// (FIFO: whole groups in order, skipping groups with a message in flight).
    pub fn take_visible(&mut self, max: usize, fifo: bool, now_ms: u64) -> Vec<CoreMessage> {
        self.promote(now_ms);
        let mut out = Vec::new();
        let mut current: Option<(Arc<str>, u64)> = None;
        while out.len() < max {
            let next = current.as_ref().and_then(|(g, limit)| self.next_in_group(g, *limit)).or_else(|| {
                current = None;
                self.pick(fifo)
            });
            let Some(seq) = next else { break };
            if fifo && current.is_none() {
                let g = self.messages.get(&seq).and_then(|m| m.group_id.clone());
                if let Some(g) = g {
                    let floor = self.inflight_floor(Some(&g));
                    current = Some((g, floor));
                }
            }
            match self.remove(seq) {
                Some(m) => {
                    out.push(m);
                }
                None => {
                    self.ungrouped.remove(&seq);
                }
            }
        }
        out
    }

    /// Sequence numbers of messages past retention (any state), oldest first.
    pub fn expired(&self, retention_secs: u32, now_ms: u64) -> Vec<u64> {
        let retention_ms = u64::from(retention_secs) * 1000;
        let mut seqs: Vec<u64> = self
            .messages
            .values()
            .filter(|m| m.sent_ms + retention_ms <= now_ms)
            .map(|m| m.seq)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Every message's sequence number, unsorted: one pass over the table
    /// (checkpoints sort the copy outside the queue's lock).
    pub fn seqs_unsorted(&self) -> Vec<u64> {
        self.messages.values().map(|m| m.seq).collect()
    }

    /// Every message (for checkpoints and tests), in sequence order.
    pub fn messages(&self) -> Vec<&CoreMessage> {
        // Sorted on a copy of the key: comparing through the pointers would
        // take a cache miss per comparison (seconds for millions).
        let mut v: Vec<(u64, &CoreMessage)> = self.messages.values().map(|m| (m.seq, &**m)).collect();
        v.sort_unstable_by_key(|p| p.0);
        v.into_iter().map(|p| p.1).collect()
    }

    /// Looks a deduplication key up (FIFO), forgetting expired entries first.
    pub fn dedup_lookup(&mut self, key: &str, now_ms: u64) -> Option<DedupEntry> {
        self.forget_expired_dedup(now_ms);
        self.x.as_ref()?.dedup.get(key).copied().filter(|e| e.expires_ms > now_ms)
    }

    /// Forgets the deduplication entries expired at `now_ms` (they can never
    /// deduplicate again). Sends do it first; the engines' expiry sweep does
    /// it too, so a FIFO queue that stops receiving sends gives their memory
    /// back. Changes nothing observable, so it is not logged.
    pub fn forget_expired_dedup(&mut self, now_ms: u64) {
        let Some(x) = self.x.as_mut() else { return };
        while let Some((exp, _)) = x.dedup_expiry.front() {
            if *exp > now_ms {
                break;
            }
            if let Some((exp, k)) = x.dedup_expiry.pop_front() {
                if x.dedup.get(&k).is_some_and(|e| e.expires_ms == exp) {
                    x.dedup.remove(&k);
                }
            }
        }
        if x.dedup.is_empty() {
            x.dedup.shrink_to_fit();
            x.dedup_expiry.shrink_to_fit();
        }
    }

    /// Deduplication entries held (live or expired but not forgotten yet).
    pub fn dedup_len(&self) -> usize {
        self.x.as_ref().map_or(0, |x| x.dedup.len())
    }

    /// Records a deduplication key (FIFO send, or its replay).
    pub fn dedup_register(&mut self, key: String, entry: DedupEntry) {
        let x = self.x.get_or_insert_with(Box::default);
        x.dedup_expiry.push_back((entry.expires_ms, key.clone()));
        x.dedup.insert(key, entry);
    }

    /// The live deduplication table (for checkpoints).
    pub fn dedup_entries(&self) -> Vec<(String, DedupEntry)> {
        let Some(x) = self.x.as_ref() else { return Vec::new() };
        let mut v: Vec<_> = x.dedup.iter().map(|(k, e)| (k.clone(), *e)).collect();
        v.sort_by_key(|(_, e)| e.expires_ms);
        v
    }
}

/// The deduplication key of a FIFO message: its deduplication id, scoped to
/// its group when the queue's DeduplicationScope is messageGroup.
pub fn dedup_key(dedup_id: &str, group_id: Option<&str>, scope_group: bool) -> String {
    if scope_group {
        format!("{}\u{0}{}", group_id.unwrap_or(""), dedup_id)
    } else {
        dedup_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn given_more_messages_than_one_table_holds_the_sharded_table_should_find_count_and_list_them_all() {
        let mut c = QueueCore::new();
        let m = NewMessage { message_id: 1, payload: Bytes::from_static(b"x"), delay_secs: 0, group_id: None, dedup_id: None };
        let n = (SHARD_AT * 3) as u64;
        for _ in 0..n {
            let cm = c.prepare(&m, 0, 1);
            c.insert(cm);
        }
        assert!(matches!(c.messages, MessageTable::Sharded { .. }));
        assert_eq!(c.len() as u64, n);
        // Remove every message but one in eight (shards shrink as they empty).
        for seq in (0..n).filter(|s| s % 8 != 0) {
            assert!(c.remove(seq).is_some(), "{seq} present");
        }
        assert!(c.remove(1).is_none());
        let left: Vec<u64> = c.messages().iter().map(|m| m.seq).collect();
        assert_eq!(left, (0..n).step_by(8).collect::<Vec<_>>());
        assert_eq!(c.len(), left.len());
        assert!(left.iter().all(|s| c.get(*s).is_some_and(|m| m.seq == *s)));
        let mut unsorted = c.seqs_unsorted();
        unsorted.sort_unstable();
        assert_eq!(unsorted, left);
        // A taken number is refused, in one table or in shards, and the
        // message there stays.
        let template = QueueCore::new().prepare(&m, 0, 1);
        for table in [&mut MessageTable::default(), &mut c.messages] {
            let seq = 8;
            let _ = table.insert(Box::new(CoreMessage { seq, ..template.clone() }));
            let len = table.len();
            assert!(!table.insert(Box::new(CoreMessage { seq, message_id: Id128::from(99), ..template.clone() })));
            assert_eq!(table.len(), len);
            assert_ne!(table.get(&seq).map(|m| m.message_id), Some(Id128::from(99)));
        }
        assert_eq!(c.purge(), left.len());
        assert!(c.is_empty() && c.messages().is_empty());
        let cm = c.prepare(&m, 0, 1);
        let seq = cm.seq;
        c.insert(cm);
        assert_eq!(c.get(seq).map(|m| m.seq), Some(seq));
    }

    /// The most keys of `hashes` that share a bucket of a table of `buckets`.
    fn most_in_one_bucket(hashes: impl Iterator<Item = u64>, buckets: u64) -> usize {
        let mut count: HashMap<u64, usize> = HashMap::new();
        for h in hashes {
            *count.entry(h & (buckets - 1)).or_default() += 1;
        }
        count.values().copied().max().unwrap_or(0)
    }

    #[test]
    fn given_consecutive_numbers_their_buckets_should_follow_one_another_and_their_control_bytes_differ() {
        // Unsharded: a dense queue fills its buckets in order, like an array.
        for start in [0u64, 1_000, (1 << 16) - 100, 123_456_789] {
            let buckets = 1u64 << 12;
            let hashes: Vec<u64> = (start..start + buckets).map(one_hash).collect();
            let in_run = (start..start + buckets).take_while(|s| s >> ORDERED_RUN_BITS == start >> ORDERED_RUN_BITS);
            for s in in_run.skip(1) {
                assert_eq!(one_hash(s).wrapping_sub(one_hash(s - 1)) & !TAG & (buckets - 1), 1, "{s}");
            }
            assert_eq!(most_in_one_bucket(hashes.iter().copied(), buckets), if start % (1 << 16) + buckets <= 1 << 16 { 1 } else { 2 });
            let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            assert_eq!(tags.len(), 128, "every control byte in use");
            let same_as_next = hashes.windows(2).filter(|w| w[0] >> 57 == w[1] >> 57).count();
            assert!(same_as_next < hashes.len() / 32, "{same_as_next} neighbours share a control byte");
        }
        // Sharded: runs of 256 go to the shards in turn, and within a shard
        // a dense queue's numbers are dense again.
        let first: Vec<u64> = (0u64..1 << 20).filter(|s| shard_of(*s) == 3).collect();
        assert_eq!(first.len(), (1 << 20) / SHARDS);
        assert!(first.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == w[0] + 1 + 255 * 256));
        let buckets = (first.len() as u64).next_power_of_two();
        assert_eq!(most_in_one_bucket(first.iter().map(|s| shard_hash(*s)), buckets), 1);
        for w in first.windows(2) {
            assert_eq!(shard_hash(w[1]).wrapping_sub(shard_hash(w[0])) & !TAG & (buckets - 1), 1, "{w:?}");
        }
    }

    #[test]
    fn given_numbers_spaced_by_a_power_of_two_they_should_not_pile_into_one_bucket() {
        // A queue left with one message in every 2^k (its consumers
        // deleted the rest): without the runs' offsets all 10,000 would
        // share a bucket from k = 14 on (625 each in 16 buckets at k = 10).
        // Within one run of 2^16 keys at most 2^16 / buckets can; runs
        // overlap as randomly placed ones do.
        let bound = |buckets: u64| 4 * ((1u64 << 16) / buckets).max(4) as usize;
        let buckets_for = |n: u64| (n * 8 / 7).next_power_of_two();
        for k in [10u32, 12, 14, 16, 20, 24, 32] {
            let n = 10_000u64;
            let seqs: Vec<u64> = (0..n).map(|i| 7 + (i << k)).collect();
            let buckets = buckets_for(n);
            let most = most_in_one_bucket(seqs.iter().map(|s| one_hash(*s)), buckets);
            assert!(most <= bound(buckets), "stride 2^{k}: {most} keys in one bucket of {buckets}");
            for shard in 0..SHARDS {
                let in_shard: Vec<u64> = seqs.iter().copied().filter(|s| shard_of(*s) == shard).collect();
                let buckets = buckets_for(in_shard.len() as u64).max(4 * SHARD_AT as u64 / SHARDS as u64);
                let most = most_in_one_bucket(in_shard.iter().map(|s| shard_hash(*s)), buckets);
                assert!(most <= bound(buckets), "stride 2^{k}, shard {shard}: {most} keys in one bucket of {buckets}");
            }
        }
    }

    #[test]
    fn given_a_receive_count_at_the_top_a_replayed_receive_should_keep_it_there() {
        // Found by the recovery fuzzer: a data directory whose message had
        // been received u32::MAX times, then once more.
        let mut c = QueueCore::new();
        let m = NewMessage { message_id: 1, payload: Bytes::from_static(b"x"), delay_secs: 0, group_id: None, dedup_id: None };
        let cm = CoreMessage { receive_count: u32::MAX, ..c.prepare(&m, 0, 1) };
        let seq = cm.seq;
        c.insert(cm);
        c.apply_receive(seq, 100, 2);
        assert_eq!(c.get(seq).map(|m| m.receive_count), Some(u32::MAX));
    }

    #[test]
    fn given_expired_deduplication_entries_the_sweep_should_forget_them_without_a_send() {
        let mut c = QueueCore::new();
        for i in 0..100u64 {
            c.dedup_register(format!("d{i}"), DedupEntry { message_id: u128::from(i), seq: i, expires_ms: 1_000 + i });
        }
        c.forget_expired_dedup(1_049);
        assert_eq!(c.dedup_len(), 50, "entries expiring at 1,000..=1,049 are gone");
        assert!(c.dedup_lookup("d50", 1_049).is_some());
        c.forget_expired_dedup(10_000);
        assert_eq!(c.dedup_len(), 0);
    }

    #[test]
    fn a_stored_message_fits_a_128_byte_allocation() {
        // The per-message index cost (ARCHITECTURE.md): 120 bytes is a
        // 128-byte chunk in glibc and mimalloc alike.
        assert!(std::mem::size_of::<CoreMessage>() <= 120, "CoreMessage is {} bytes", std::mem::size_of::<CoreMessage>());
        assert_eq!(std::mem::size_of::<BodyRef>(), 20);
        assert_eq!(std::mem::size_of::<Payload>(), 24);
        assert_eq!(Id128::from(u128::MAX - 5).get(), u128::MAX - 5);
    }

    fn rules(max: usize, vis: u32, mrc: Option<u32>, retention: u32, limit: usize) -> ReceiveRules<'static> {
        ReceiveRules {
            max,
            visibility_timeout_secs: vis,
            max_receive_count: mrc,
            retention_secs: retention,
            inflight_limit: limit,
            fifo: false,
            attempt_id: None,
        }
    }

    fn msg(core: &mut QueueCore, delay: u32, now: u64) -> u64 {
        msg_in(core, None, delay, now)
    }

    fn msg_in(core: &mut QueueCore, group: Option<&str>, delay: u32, now: u64) -> u64 {
        let m = core.prepare(
            &NewMessage {
                message_id: 1,
                payload: Bytes::from_static(b"x"),
                delay_secs: delay,
                group_id: group.map(str::to_string),
                dedup_id: None,
            },
            delay,
            now,
        );
        let seq = m.seq;
        core.insert(m);
        seq
    }

    #[test]
    fn given_inflight_message_when_timeout_expires_should_reappear() {
        let mut c = QueueCore::new();
        let s = msg(&mut c, 0, 1000);
        let r = c.receive(&rules(10, 30, None, 100, 1000), 1000);
        assert_eq!(r.delivered, vec![s]);
        assert!(c.receive(&rules(10, 30, None, 100, 1000), 30_999).delivered.is_empty());
        let r = c.receive(&rules(10, 30, None, 100, 1000), 31_000);
        assert_eq!(r.delivered, vec![s]);
        assert_eq!(c.get(s).unwrap().receive_count, 2);
    }

    #[test]
    fn given_stale_receipt_when_deleting_should_not_delete() {
        let mut c = QueueCore::new();
        let s = msg(&mut c, 0, 0);
        c.receive(&rules(1, 0, None, 100, 1000), 0);
        c.receive(&rules(1, 0, None, 100, 1000), 0);
        assert_eq!(c.delete(Receipt { sequence_number: s, generation: 1 }), DeleteOutcome::Stale);
        assert_eq!(c.delete(Receipt { sequence_number: s, generation: 2 }), DeleteOutcome::Deleted);
        assert_eq!(c.delete(Receipt { sequence_number: s, generation: 2 }), DeleteOutcome::Gone);
    }

    #[test]
    fn given_max_receive_count_when_exceeded_should_dead_letter() {
        let mut c = QueueCore::new();
        msg(&mut c, 0, 0);
        assert_eq!(c.receive(&rules(1, 0, Some(2), 100, 1000), 0).delivered.len(), 1);
        assert_eq!(c.receive(&rules(1, 0, Some(2), 100, 1000), 0).delivered.len(), 1);
        let r = c.receive(&rules(1, 0, Some(2), 100, 1000), 0);
        assert!(r.delivered.is_empty());
        assert_eq!(r.dead_lettered.len(), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn given_delayed_message_should_be_counted_delayed_then_visible() {
        let mut c = QueueCore::new();
        msg(&mut c, 5, 0);
        assert_eq!(c.counts(0), QueueCounts { visible: 0, inflight: 0, delayed: 1 });
        assert_eq!(c.next_visible_ms(), Some(5000));
        assert_eq!(c.counts(5000), QueueCounts { visible: 1, inflight: 0, delayed: 0 });
    }

    #[test]
    fn given_retention_passed_should_drop_on_receive() {
        let mut c = QueueCore::new();
        msg(&mut c, 0, 0);
        let r = c.receive(&rules(1, 30, None, 60, 1000), 60_000);
        assert!(r.delivered.is_empty());
        assert_eq!(r.expired.len(), 1);
    }

    #[test]
    fn given_inflight_limit_should_report_over_limit() {
        let mut c = QueueCore::new();
        msg(&mut c, 0, 0);
        msg(&mut c, 0, 0);
        let r = c.receive(&rules(10, 30, None, 100, 1), 0);
        assert_eq!(r.delivered.len(), 1);
        assert!(r.over_limit);
    }

    #[test]
    fn given_visibility_zero_should_be_visible_again() {
        let mut c = QueueCore::new();
        let s = msg(&mut c, 0, 0);
        c.receive(&rules(1, 30, None, 100, 1000), 0);
        let rc = Receipt { sequence_number: s, generation: 1 };
        assert_eq!(c.change_visibility(rc, 0, 10), VisibilityOutcome::Changed);
        assert_eq!(c.change_visibility(rc, 10, 10), VisibilityOutcome::NotInflight);
        assert_eq!(c.receive(&rules(1, 30, None, 100, 1000), 10).delivered, vec![s]);
    }

    fn fifo(max: usize, vis: u32, attempt: Option<&'static str>) -> ReceiveRules<'static> {
        ReceiveRules { fifo: true, attempt_id: attempt, ..rules(max, vis, None, 1000, 1000) }
    }

    #[test]
    fn given_fifo_group_in_flight_when_receiving_should_skip_the_group() {
        let mut c = QueueCore::new();
        let a1 = msg_in(&mut c, Some("a"), 0, 0);
        let a2 = msg_in(&mut c, Some("a"), 0, 0);
        let b1 = msg_in(&mut c, Some("b"), 0, 0);
        assert_eq!(c.receive(&fifo(1, 30, None), 0).delivered, vec![a1]);
        // a2 is blocked behind a1; b proceeds.
        assert_eq!(c.receive(&fifo(10, 30, None), 0).delivered, vec![b1]);
        assert!(c.receive(&fifo(10, 30, None), 0).delivered.is_empty());
        c.delete(Receipt { sequence_number: a1, generation: 1 });
        assert_eq!(c.receive(&fifo(10, 30, None), 0).delivered, vec![a2]);
    }

    #[test]
    fn given_fifo_batch_should_take_one_group_in_order_then_the_next() {
        let mut c = QueueCore::new();
        let a1 = msg_in(&mut c, Some("a"), 0, 0);
        let b1 = msg_in(&mut c, Some("b"), 0, 0);
        let a2 = msg_in(&mut c, Some("a"), 0, 0);
        let b2 = msg_in(&mut c, Some("b"), 0, 0);
        assert_eq!(c.receive(&fifo(10, 30, None), 0).delivered, vec![a1, a2, b1, b2]);
    }

    #[test]
    fn given_fifo_message_made_visible_again_should_come_before_later_ones() {
        let mut c = QueueCore::new();
        let a1 = msg_in(&mut c, Some("a"), 0, 0);
        let a2 = msg_in(&mut c, Some("a"), 0, 0);
        assert_eq!(c.receive(&fifo(1, 30, None), 0).delivered, vec![a1]);
        // Visibility expires: a1 is redelivered before a2.
        assert_eq!(c.receive(&fifo(1, 30, None), 30_000).delivered, vec![a1]);
        assert_eq!(c.get(a1).unwrap().receive_count, 2);
        assert_eq!(c.change_visibility(Receipt { sequence_number: a1, generation: 2 }, 0, 30_001), VisibilityOutcome::Changed);
        assert_eq!(c.receive(&fifo(10, 30, None), 30_002).delivered, vec![a1, a2]);
    }

    #[test]
    fn given_same_attempt_id_should_return_same_messages_without_counting_a_receive() {
        let mut c = QueueCore::new();
        let a1 = msg_in(&mut c, Some("a"), 0, 0);
        msg_in(&mut c, Some("b"), 0, 0);
        let r1 = c.receive(&fifo(1, 30, Some("x")), 0);
        let r2 = c.receive(&fifo(1, 30, Some("x")), 1000);
        assert_eq!(r1.delivered, vec![a1]);
        assert_eq!(r2.delivered, vec![a1]);
        assert!(r2.retried);
        assert_eq!(c.get(a1).unwrap().receive_count, 1);
        // After a delete the attempt no longer repeats.
        c.delete(Receipt { sequence_number: a1, generation: 1 });
        let r3 = c.receive(&fifo(1, 30, Some("x")), 2000);
        assert!(!r3.retried);
        assert_ne!(r3.delivered, vec![a1]);
    }

    #[test]
    fn given_noisy_tenant_on_standard_queue_should_serve_quiet_tenant_first() {
        let mut c = QueueCore::new();
        for _ in 0..50 {
            msg_in(&mut c, Some("noisy"), 0, 0);
        }
        let quiet = msg_in(&mut c, Some("quiet"), 0, 0);
        // The noisy tenant gets the first batch, then has messages in flight.
        let first = c.receive(&rules(1, 30, None, 1000, 1000), 0).delivered;
        assert_ne!(first, vec![quiet]);
        // The quiet tenant, with nothing in flight, goes next despite its later send.
        assert_eq!(c.receive(&rules(1, 30, None, 1000, 1000), 0).delivered, vec![quiet]);
    }

    #[test]
    fn dedup_entries_expire_after_the_window() {
        let mut c = QueueCore::new();
        c.dedup_register("k".into(), DedupEntry { message_id: 9, seq: 0, expires_ms: DEDUP_WINDOW_MS });
        assert_eq!(c.dedup_lookup("k", DEDUP_WINDOW_MS - 1).map(|e| e.message_id), Some(9));
        assert_eq!(c.dedup_lookup("k", DEDUP_WINDOW_MS), None);
        assert!(c.dedup_entries().is_empty());
    }
}
