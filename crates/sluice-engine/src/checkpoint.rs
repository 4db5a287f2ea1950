//! Checkpoints: the live state written to its own file, so that recovery
//! reads live data instead of history and old segments can go.
//!
//! A checkpoint is an *index*: every queue, every message's state and a
//! handle to where its body already is (a segment, or the bodies file of an
//! earlier checkpoint), never the body itself. Bodies are copied only out of
//! files that are mostly dead (`compact`: live bytes under half the file), so
//! those files can be deleted; the copies go to `checkpoint/N.bodies`. So a
//! checkpoint costs the index (about 80 bytes per message) plus the few
//! bodies that compaction moves, not a copy of every live body.
//!
//! Consistency (a *fuzzy* checkpoint, see `IndexWriter`): writers pause
//! twice, briefly. The first freeze (the engine's epoch lock in write mode,
//! which every mutating operation holds in read mode while it applies its
//! effect and appends its record) rolls the log to a new segment N; then each
//! queue's existing messages are written range by range under that queue's
//! lock alone, each range with the log position it was taken at (and, in a
//! second pass, what arrived during the first); the second
//! freeze rolls the log to segment M and writes the tail (catalog, what was
//! sent or moved meanwhile, deduplication tables). Recovery replays segments
//! N..M-1 filtered by those positions (`state::Window`), then the rest.
//! Nothing is cloned: the index is encoded straight from the live state into
//! `N.ckpt.tmp` (buffered, page cache), and no memory is taken in proportion
//! to the backlog. The bodies the index moved are copied after the second
//! freeze into `N.bodies.tmp`; both are fsynced, the bodies file is renamed
//! (and the directory fsynced) before the index, so a visible index always
//! has its bodies. Only then are handles repointed and old files pruned.
//!
//! The snapshot may include effects whose records are not durable yet (or
//! never will be, after an I/O error): those operations were not
//! acknowledged, so making them durable is allowed — the same as a 5xx whose
//! effect happened anyway.

use crate::bodies::{checkpoint_file, Bodies};
use crate::codec::{encode_file_header, BODIES_MAGIC, CHECKPOINT_MAGIC, FILE_HEADER_BYTES};
use crate::io::{direct_write_refused, open_direct_or_none, write_all_at, AlignedBuf, Io, IoFile, DIRECT_BLOCK};
use crate::limits::{CHECKPOINT_DIRECT_CHUNK_BYTES, CHECKPOINT_MESSAGES_PER_RECORD, CHECKPOINT_RECORD_BYTES_TARGET};
use crate::recovery::{bodies_name, checkpoint_name, CHECKPOINT_DIR};
use crate::record::{encode_checkpoint_messages, encode_checkpoint_range, Record};
use crate::state::{usage_bytes, Catalog, Slot};
use sluice_store::queue_core::{BodyRef, CoreMessage, DedupEntry, Payload};
use sluice_store::{QueueId, QueueName, StoreError};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a checkpoint wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Index file written (relative to the data directory).
    pub file: String,
    /// Where recovery starts replaying: the segment the log was rolled to
    /// at the first freeze.
    pub start_segment: u64,
    /// The segment the tail was taken at (the second freeze): records of
    /// segments `start_segment..tail_segment`, logged while the checkpoint
    /// was taken, are replayed through its ranges' positions.
    pub tail_segment: u64,
    /// Queues in it.
    pub queues: u64,
    /// Messages in it.
    pub messages: u64,
    /// Index file size.
    pub bytes: u64,
    /// Bodies copied out of mostly-dead files (compaction).
    pub bodies_moved: u64,
    /// Bytes of those bodies.
    pub body_bytes_moved: u64,
    /// How long the state was frozen (index written, then handles repointed).
    pub freeze: Duration,
    /// Total time.
    pub elapsed: Duration,
    /// Segments deleted afterwards.
    pub segments_pruned: u64,
}

fn io_err(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("checkpoint: {what}: {e}"))
}

/// One body the checkpoint moves: the message's sequence number at the
/// snapshot, its handle then, and the offset of its copy in this
/// checkpoint's bodies file (length and CRC do not change).
pub(crate) struct Relocation {
    pub seq: u64,
    pub old: BodyRef,
    pub new_offset: u64,
}

/// The relocations of each queue, in sequence order: the store repoints live
/// handles with them before pruning.
pub(crate) type Relocations = Vec<(QueueId, Vec<Relocation>)>;

/// An index written (not yet durable).
pub(crate) struct Index {
    pub start_segment: u64,
    /// The segment its tail was taken at: its handles point below it.
    pub tail_segment: u64,
    file: Box<dyn IoFile>,
    tmp: PathBuf,
    bytes: u64,
    queues: u64,
    messages: u64,
    relocations: Relocations,
    bodies_end: u64,
    /// Every file the index's handles point into.
    pub files: HashSet<u32>,
    /// What the index's messages count in each of those files
    /// (`Catalog::file_usage` at the snapshot, relocations applied).
    usage: HashMap<u32, u64>,
}

/// A finished, durable checkpoint.
pub(crate) struct Written {
    pub file: String,
    pub bytes: u64,
    pub queues: u64,
    pub messages: u64,
    pub bodies_moved: u64,
    pub body_bytes_moved: u64,
    pub relocations: Relocations,
    pub files: HashSet<u32>,
    pub usage: HashMap<u32, u64>,
}

/// Sequential writer of one new file (a checkpoint's index or bodies file),
/// written every `CHECKPOINT_RECORD_BYTES_TARGET` bytes.
///
/// Where the file system allows it the writes go past the page cache, as
/// the log's do (`pipe::DirectTail`): under `sqs-send` the index's copies
/// into fresh page-cache pages were 2.6 % of the server's samples. A direct
/// write covers whole blocks, so what is left after the last whole block
/// stays in `buf` and is written again by the next flush; a forced flush
/// pads it with zeros, which `finish` cuts off before the file's fsync.
struct Out {
    f: Box<dyn IoFile>,
    /// The direct handle and its aligned copy of what is written.
    direct: Option<(Box<dyn IoFile>, AlignedBuf)>,
    buf: Vec<u8>,
    /// File offset of `buf[0]` (a multiple of `DIRECT_BLOCK` while direct).
    at: u64,
    /// A direct write padded the file past `end()`.
    padded: bool,
}

impl Out {
    /// Writes `path` (open as `f`, empty) starting with `first`.
    fn new(io: &dyn Io, path: &Path, f: Box<dyn IoFile>, first: Vec<u8>) -> Out {
        let direct = open_direct_or_none(io, path).map(|d| (d, AlignedBuf::zeroed(0)));
        Out { f, direct, buf: first, at: 0, padded: false }
    }

    /// The file's length once everything is written.
    fn end(&self) -> u64 {
        self.at + self.buf.len() as u64
    }

    fn flush(&mut self, force: bool) -> Result<(), StoreError> {
        if !force && self.buf.len() < CHECKPOINT_RECORD_BYTES_TARGET {
            return Ok(());
        }
        let Some((d, staging)) = self.direct.as_mut() else {
            write_all_at(self.f.as_ref(), &self.buf, self.at).map_err(|(e, _)| io_err("write", e))?;
            self.at += self.buf.len() as u64;
            self.buf.clear();
            return Ok(());
        };
        let whole = self.buf.len() / DIRECT_BLOCK * DIRECT_BLOCK;
        let upto = if force { self.buf.len() } else { whole };
        if upto == 0 {
            return Ok(());
        }
        staging.truncate(0);
        staging.extend_from_slice(&self.buf[..upto]);
        // In steps, so that the log's own writes are not held behind one
        // long command. What a refused step leaves is written again below.
        let written = staging
            .padded()
            .chunks(CHECKPOINT_DIRECT_CHUNK_BYTES)
            .enumerate()
            .try_for_each(|(i, chunk)| write_all_at(d.as_ref(), chunk, self.at + (i * CHECKPOINT_DIRECT_CHUNK_BYTES) as u64));
        match written {
            Ok(()) => {}
            // Refused (`direct_write_refused`): this step and the
            // rest go through the page cache.
            Err((e, n)) if direct_write_refused(&e, n) => {
                self.direct = None;
                return self.flush(force);
            }
            Err((e, _)) => return Err(io_err("write", e)),
        }
        self.padded |= upto != whole;
        self.buf.drain(..whole);
        self.at += whole as u64;
        Ok(())
    }

    /// Writes everything and cuts the file to its length, ready for its
    /// fsync; returns that length.
    fn finish(&mut self) -> Result<u64, StoreError> {
        self.flush(true)?;
        if self.padded {
            self.f.truncate(self.end()).map_err(|e| io_err("truncate", e))?;
            self.padded = false;
        }
        Ok(self.end())
    }
}

/// Sequence numbers a range may span per message the queue holds before its
/// numbers are listed instead of probed one by one (plus `DENSE_SLACK`).
const DENSE_SPAN_PER_MESSAGE: u64 = 4;
const DENSE_SLACK: u64 = 1 << 16;

/// What `IndexWriter::write_ranges` asks of the store: whether a file is
/// compacted, the log's position now, and a hook to run after each range.
#[derive(Clone, Copy)]
pub(crate) struct RangeEnv<'a> {
    pub compact: &'a dyn Fn(u32) -> bool,
    pub position: &'a dyn Fn() -> (u64, u64),
    pub between: &'a dyn Fn(),
}

/// A fuzzy checkpoint's index being written into `N.ckpt.tmp`.
///
/// It is begun under a first short freeze, which rolls the log to segment N
/// (the checkpoint's name and where replay starts) and notes each queue's
/// next sequence number then. `write_ranges` then encodes each queue's
/// messages below that number range by range, each under that queue's lock
/// only, with the log position it was taken at, while every queue keeps
/// working. `write_tail`, under a second short freeze that rolls the log to
/// segment M, writes the catalog and what the ranges do not hold (messages
/// sent or moved in meanwhile, deduplication tables, names, move tasks). So
/// writers pause for the tail only: the messages logged during the
/// checkpoint, not the backlog. Recovery replays segments N.. M-1 through
/// `Window` (a record applies to a range's messages only past the range's
/// position) and the rest as usual.
///
/// Nothing is cloned: ranges are encoded straight from the live messages
/// into a buffer flushed to the file between ranges.
pub(crate) struct IndexWriter {
    start_segment: u64,
    this_file: u32,
    out: Out,
    tmp: PathBuf,
    records: u64,
    queues: u64,
    messages: u64,
    relocations: Relocations,
    usage: HashMap<u32, u64>,
    bodies_end: u64,
    tail_segment: u64,
}

impl IndexWriter {
    /// Creates the temporary file and writes the begin record.
    pub fn create(io: &dyn Io, dir: &Path, start_segment: u64, next_queue_id: u64) -> Result<IndexWriter, StoreError> {
        let tmp = dir.join(CHECKPOINT_DIR).join(format!("{}.tmp", checkpoint_name(start_segment)));
        let file = io.open(&tmp, true).map_err(|e| io_err("create", e))?;
        if let Err(e) = file.truncate(0) {
            drop(file);
            let _ = io.remove(&tmp);
            return Err(io_err("truncate", e));
        }
        let out = Out::new(io, &tmp, file, encode_file_header(CHECKPOINT_MAGIC, start_segment).to_vec());
        let mut w = IndexWriter {
            start_segment,
            this_file: checkpoint_file(start_segment),
            out,
            tmp,
            records: 0,
            queues: 0,
            messages: 0,
            relocations: Relocations::new(),
            usage: HashMap::new(),
            bodies_end: FILE_HEADER_BYTES as u64,
            tail_segment: 0,
        };
        w.put(Record::CheckpointBegin { start_segment, next_queue_id });
        Ok(w)
    }

    fn put(&mut self, rec: Record) {
        rec.encode(&mut self.out.buf);
        self.records += 1;
    }

    fn flush(&mut self, force: bool) -> Result<(), StoreError> {
        self.out.flush(force)
    }

    /// The handle `m` gets in the index: its own, or a place in this
    /// checkpoint's bodies file when its file is compacted.
    fn place(&mut self, queue: QueueId, m: &CoreMessage, compact: &dyn Fn(u32) -> bool, moved: &mut Vec<Relocation>) -> Result<BodyRef, StoreError> {
        let Payload::Stored(r) = &m.payload else {
            return Err(StoreError::Internal(format!("checkpoint: message {} of queue {queue} has no body handle", m.seq)));
        };
        let mut r = *r;
        if compact(r.file) {
            moved.push(Relocation { seq: m.seq, old: r, new_offset: self.bodies_end });
            r = BodyRef { file: self.this_file, offset: self.bodies_end, ..r };
            self.bodies_end += u64::from(r.len);
        }
        *self.usage.entry(r.file).or_default() += usage_bytes(&r);
        self.messages += 1;
        Ok(r)
    }

    /// Writes the messages of `slot` with sequence numbers below `next_seq`
    /// (its next one at the first freeze), range by range, each under the
    /// queue's lock with the log position then (`position`); `len` is how
    /// many it held then. No message lies below `low` (the lowest one the
    /// last checkpoint found). Returns
    /// the lowest sequence number written. `env.between` runs after each
    /// range (a test hook). A queue found deleted is left: its ranges are dropped
    /// when loaded, as the tail does not declare it.
    /// `per` sequence numbers make a range (listed ones when probing would
    /// cost too much).
    pub fn write_ranges(
        &mut self,
        id: QueueId,
        slot: &Slot,
        (next_seq, len, low): (u64, u64, u64),
        per: usize,
        env: &RangeEnv<'_>,
    ) -> Result<Option<u64>, StoreError> {
        let RangeEnv { compact, position, between } = *env;
        let low = low.min(next_seq);
        // Numbers are probed one by one where the messages are dense enough;
        // otherwise listed once (one pass under the lock, sorted outside it).
        let listed: Option<Vec<u64>> = if next_seq - low <= len.saturating_mul(DENSE_SPAN_PER_MESSAGE).saturating_add(DENSE_SLACK) {
            None
        } else {
            let mut v = slot.core.lock().q.seqs_unsorted();
            v.retain(|&s| s < next_seq);
            v.sort_unstable();
            Some(v)
        };
        let mut from = match &listed {
            None => low,
            Some(v) => v.first().copied().unwrap_or(next_seq),
        };
        let mut i = 0;
        let mut lowest = None;
        while from < next_seq {
            let (to, j) = match &listed {
                None => ((from + per as u64).min(next_seq), 0),
                Some(v) => {
                    let j = (i + per).min(v.len());
                    (v.get(j).copied().unwrap_or(next_seq), j)
                }
            };
            let mut moved = Vec::new();
            {
                let core = slot.core.lock();
                if core.deleted {
                    return Ok(lowest);
                }
                let pos = position();
                let mut chunk: Vec<(&CoreMessage, BodyRef)> = Vec::new();
                let seqs: Box<dyn Iterator<Item = u64> + '_> = match &listed {
                    None => Box::new(from..to),
                    Some(v) => Box::new(v[i..j].iter().copied()),
                };
                for s in seqs {
                    if let Some(m) = core.q.get(s) {
                        let r = self.place(id, m, compact, &mut moved)?;
                        chunk.push((m, r));
                    }
                }
                if let Some((m, _)) = chunk.first() {
                    lowest.get_or_insert(m.seq);
                    encode_checkpoint_range(&mut self.out.buf, id, from..to, pos, &chunk);
                    self.records += 1;
                }
            }
            if !moved.is_empty() {
                self.relocations.push((id, moved));
            }
            self.flush(false)?;
            between();
            from = to;
            i = j;
        }
        Ok(lowest)
    }

    /// Writes the tail under the second freeze, the log rolled to
    /// `tail_segment`: every queue of `catalog` with its messages from its
    /// next sequence number at the first freeze (`ranged`; 0 for a queue
    /// created since) on, the deduplication tables, names and move tasks.
    pub fn write_tail(
        &mut self,
        tail_segment: u64,
        catalog: &Catalog,
        ranged: &HashMap<QueueId, u64>,
        time_floor_ms: u64,
        compact: &dyn Fn(u32) -> bool,
    ) -> Result<(), StoreError> {
        self.tail_segment = tail_segment;
        self.put(Record::CheckpointTail { segment: tail_segment, next_queue_id: catalog.next_id });
        self.put(Record::CheckpointClock { time_floor_ms });
        let mut ids: Vec<QueueId> = catalog.slots.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let slot = &catalog.slots[&id];
            let info = (**slot.info.read()).clone();
            let core = slot.core.lock();
            self.queues += 1;
            let next_seq = core.q.next_seq();
            self.put(Record::CheckpointQueue { info, next_seq });
            let mut moved = Vec::new();
            let mut chunk: Vec<(&CoreMessage, BodyRef)> = Vec::new();
            for s in ranged.get(&id).copied().unwrap_or(0)..next_seq {
                let Some(m) = core.q.get(s) else { continue };
                let r = self.place(id, m, compact, &mut moved)?;
                chunk.push((m, r));
                if chunk.len() >= CHECKPOINT_MESSAGES_PER_RECORD {
                    encode_checkpoint_messages(&mut self.out.buf, id, &chunk);
                    self.records += 1;
                    chunk.clear();
                }
            }
            if !chunk.is_empty() {
                encode_checkpoint_messages(&mut self.out.buf, id, &chunk);
                self.records += 1;
            }
            if !moved.is_empty() {
                self.relocations.push((id, moved));
            }
            // Entries expired by the time floor can never deduplicate again
            // (the clock restarts no lower), so they are not carried over:
            // the table forgets them only on the queue's next FIFO send, and
            // the one-hour soak's final indexes were 40 MB of them for a
            // drained queue.
            let dedup: Vec<(String, DedupEntry)> = core.q.dedup_entries().into_iter().filter(|(_, e)| e.expires_ms > time_floor_ms).collect();
            for part in dedup.chunks(CHECKPOINT_MESSAGES_PER_RECORD) {
                self.put(Record::CheckpointDedup { queue: id, entries: part.to_vec() });
            }
        }
        let mut deleted: Vec<(QueueName, u64)> = catalog.deleted.iter().map(|(k, v)| (k.clone(), *v)).collect();
        deleted.sort();
        for (name, at_ms) in deleted {
            self.put(Record::CheckpointDeletedName { name, at_ms });
        }
        for t in &catalog.move_tasks {
            self.put(Record::CheckpointMoveTask(t.clone()));
        }
        Ok(())
    }

    /// Flushes what is buffered (before the second freeze, so that it does
    /// not write the ranges' last bytes).
    pub fn flush_ranges(&mut self) -> Result<(), StoreError> {
        self.flush(true)
    }

    /// Writes the end record and everything buffered.
    pub fn finish(mut self, io: &dyn Io) -> Result<Index, StoreError> {
        Record::CheckpointEnd { records: self.records }.encode(&mut self.out.buf);
        let bytes = match self.out.finish() {
            Ok(bytes) => bytes,
            Err(e) => {
                self.discard(io);
                return Err(e);
            }
        };
        let files = self.usage.keys().copied().collect();
        Ok(Index {
            start_segment: self.start_segment,
            tail_segment: self.tail_segment,
            file: self.out.f,
            tmp: self.tmp,
            bytes,
            queues: self.queues,
            messages: self.messages,
            relocations: self.relocations,
            bodies_end: self.bodies_end,
            files,
            usage: self.usage,
        })
    }

    /// Drops the temporary file (a failed or cancelled checkpoint).
    pub fn discard(self, io: &dyn Io) {
        let tmp = self.tmp;
        drop(self.out);
        let _ = io.remove(&tmp);
    }
}

/// Copies the bodies `index` moved (reading each through `bodies`, checked
/// against its CRC) into the bodies file, makes both files durable and
/// visible. `cancelled` is polled between chunks (shutdown). A body that
/// cannot be read fails the checkpoint (nothing is pruned; the log and the
/// older checkpoints keep everything); one damaged on disk is copied as it
/// is (`Bodies::get_for_copy`).
pub(crate) fn finish(io: &dyn Io, dir: &Path, index: Index, bodies: &Bodies, cancelled: &dyn Fn() -> bool) -> Result<Written, StoreError> {
    let ck_dir = dir.join(CHECKPOINT_DIR);
    let n = index.start_segment;
    let bodies_tmp = ck_dir.join(format!("{}.tmp", bodies_name(n)));
    let moved: u64 = index.relocations.iter().map(|(_, v)| v.len() as u64).sum();
    let result = (|| {
        if moved > 0 {
            let f = io.open(&bodies_tmp, true).map_err(|e| io_err("create bodies file", e))?;
            f.truncate(0).map_err(|e| io_err("truncate bodies file", e))?;
            let mut out = Out::new(io, &bodies_tmp, f, encode_file_header(BODIES_MAGIC, n).to_vec());
            for (_, rs) in &index.relocations {
                for r in rs {
                    debug_assert_eq!(out.end(), r.new_offset);
                    let (b, damaged) = bodies.get_for_copy(&r.old)?;
                    if damaged {
                        let (file, offset) = (r.old.file, r.old.offset);
                        tracing::warn!(
                            target: "sluice_engine",
                            "checkpoint: the body in {} at offset {offset} fails its checksum; copied as it is (a receive quarantines its message)",
                            crate::bodies::file_name(file)
                        );
                    }
                    out.buf.extend_from_slice(&b);
                    if out.buf.len() >= CHECKPOINT_RECORD_BYTES_TARGET && cancelled() {
                        return Err(StoreError::Unavailable("checkpoint cancelled by shutdown".into()));
                    }
                    out.flush(false)?;
                }
            }
            if out.finish()? != index.bodies_end {
                return Err(StoreError::Internal("checkpoint: bodies file length differs from the index".into()));
            }
            out.f.fsync().map_err(|e| io_err("fsync bodies file", e))?;
        }
        if cancelled() {
            return Err(StoreError::Unavailable("checkpoint cancelled by shutdown".into()));
        }
        index.file.fsync().map_err(|e| io_err("fsync", e))?;
        if moved > 0 {
            io.rename(&bodies_tmp, &ck_dir.join(bodies_name(n))).map_err(|e| io_err("rename bodies file", e))?;
            io.fsync_dir(&ck_dir).map_err(|e| io_err("fsync directory", e))?;
        }
        io.rename(&index.tmp, &ck_dir.join(checkpoint_name(n))).map_err(|e| io_err("rename", e))?;
        io.fsync_dir(&ck_dir).map_err(|e| io_err("fsync directory", e))?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(Written {
            file: format!("{CHECKPOINT_DIR}/{}", checkpoint_name(n)),
            bytes: index.bytes,
            queues: index.queues,
            messages: index.messages,
            bodies_moved: moved,
            body_bytes_moved: index.bodies_end.saturating_sub(FILE_HEADER_BYTES as u64) * u64::from(moved > 0),
            relocations: index.relocations,
            files: index.files,
            usage: index.usage,
        }),
        Err(e) => {
            drop(index.file);
            let _ = io.remove(&index.tmp);
            let _ = io.remove(&bodies_tmp);
            Err(e)
        }
    }
}
