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
//! Consistency: the index is written under the engine's epoch lock in write
//! mode, which every mutating operation holds in read mode while it applies
//! its effect and appends its record. Under that lock the pipe is rolled to a
//! new segment N, so the index is exactly "all records in segments < N
//! applied, none of N or later". Nothing is cloned: the index is encoded
//! straight from the live state into `N.ckpt.tmp` (buffered, page cache), so
//! the freeze costs encoding and `write(2)`, and no memory in proportion to
//! the backlog. The bodies the index moved are copied after the freeze into
//! `N.bodies.tmp`; both are fsynced, the bodies file is renamed (and the
//! directory fsynced) before the index, so a visible index always has its
//! bodies. Only then are handles repointed and old files pruned.
//!
//! The snapshot may include effects whose records are not durable yet (or
//! never will be, after an I/O error): those operations were not
//! acknowledged, so making them durable is allowed — the same as a 5xx whose
//! effect happened anyway.

use crate::bodies::{checkpoint_file, Bodies};
use crate::codec::{encode_file_header, BODIES_MAGIC, CHECKPOINT_MAGIC, FILE_HEADER_BYTES};
use crate::io::{write_all_at, Io, IoFile};
use crate::limits::{CHECKPOINT_MESSAGES_PER_RECORD, CHECKPOINT_RECORD_BYTES_TARGET};
use crate::recovery::{bodies_name, checkpoint_name, CHECKPOINT_DIR};
use crate::record::{encode_checkpoint_messages, Record};
use crate::state::{usage_bytes, Catalog};
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
    /// First segment not covered.
    pub start_segment: u64,
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

/// An index written (not yet durable) under the freeze.
pub(crate) struct Index {
    pub start_segment: u64,
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

/// Buffered sequential writer of one file.
struct Out<'a> {
    f: &'a dyn IoFile,
    buf: Vec<u8>,
    at: u64,
}

impl Out<'_> {
    fn flush(&mut self, force: bool) -> Result<(), StoreError> {
        if force || self.buf.len() >= CHECKPOINT_RECORD_BYTES_TARGET {
            write_all_at(self.f, &self.buf, self.at).map_err(|(e, _)| io_err("write", e))?;
            self.at += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Writes the index of `catalog` as checkpoint `start_segment` into a
/// temporary file. Called under the freeze. Handles into a file for which
/// `compact` is true are given a place in this checkpoint's bodies file
/// instead (the copy happens in `finish`).
pub(crate) fn write_index(
    io: &dyn Io,
    dir: &Path,
    start_segment: u64,
    catalog: &Catalog,
    time_floor_ms: u64,
    compact: &dyn Fn(u32) -> bool,
) -> Result<Index, StoreError> {
    let ck_dir = dir.join(CHECKPOINT_DIR);
    let tmp = ck_dir.join(format!("{}.tmp", checkpoint_name(start_segment)));
    let file = io.open(&tmp, true).map_err(|e| io_err("create", e))?;
    let this_file = checkpoint_file(start_segment);
    let result = (|| {
        file.truncate(0).map_err(|e| io_err("truncate", e))?;
        let mut out = Out { f: file.as_ref(), buf: encode_file_header(CHECKPOINT_MAGIC, start_segment).to_vec(), at: 0 };
        let mut records = 0u64;
        let (mut nq, mut nm) = (0u64, 0u64);
        let mut relocations = Relocations::new();
        let mut usage: HashMap<u32, u64> = HashMap::new();
        let mut bodies_end = FILE_HEADER_BYTES as u64;
        let put = |rec: Record, out: &mut Out<'_>, records: &mut u64| {
            rec.encode(&mut out.buf);
            *records += 1;
        };
        put(Record::CheckpointBegin { start_segment, next_queue_id: catalog.next_id }, &mut out, &mut records);
        put(Record::CheckpointClock { time_floor_ms }, &mut out, &mut records);
        let mut ids: Vec<QueueId> = catalog.slots.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let slot = &catalog.slots[&id];
            let info = (**slot.info.read()).clone();
            let core = slot.core.lock();
            nq += 1;
            put(Record::CheckpointQueue { info, next_seq: core.q.next_seq() }, &mut out, &mut records);
            let mut moved = Vec::new();
            let mut chunk: Vec<(&CoreMessage, BodyRef)> = Vec::with_capacity(CHECKPOINT_MESSAGES_PER_RECORD.min(core.q.len()));
            for m in core.q.messages() {
                nm += 1;
                let Payload::Stored(r) = &m.payload else {
                    return Err(StoreError::Internal(format!("checkpoint: message {} of queue {id} has no body handle", m.seq)));
                };
                let mut r = *r;
                if compact(r.file) {
                    moved.push(Relocation { seq: m.seq, old: r, new_offset: bodies_end });
                    r = BodyRef { file: this_file, offset: bodies_end, ..r };
                    bodies_end += u64::from(r.len);
                }
                *usage.entry(r.file).or_default() += usage_bytes(&r);
                chunk.push((m, r));
                if chunk.len() >= CHECKPOINT_MESSAGES_PER_RECORD {
                    encode_checkpoint_messages(&mut out.buf, id, &chunk);
                    records += 1;
                    chunk.clear();
                    out.flush(false)?;
                }
            }
            if !chunk.is_empty() {
                encode_checkpoint_messages(&mut out.buf, id, &chunk);
                records += 1;
            }
            relocations.push((id, moved));
            // Entries expired by the time floor can never deduplicate again
            // (the clock restarts no lower), so they are not carried over:
            // the table forgets them only on the queue's next FIFO send, and
            // the one-hour soak's final indexes were 40 MB of them for a
            // drained queue.
            let dedup: Vec<(String, DedupEntry)> = core.q.dedup_entries().into_iter().filter(|(_, e)| e.expires_ms > time_floor_ms).collect();
            for part in dedup.chunks(CHECKPOINT_MESSAGES_PER_RECORD) {
                put(Record::CheckpointDedup { queue: id, entries: part.to_vec() }, &mut out, &mut records);
            }
            out.flush(false)?;
        }
        let mut deleted: Vec<(QueueName, u64)> = catalog.deleted.iter().map(|(k, v)| (k.clone(), *v)).collect();
        deleted.sort();
        for (name, at_ms) in deleted {
            put(Record::CheckpointDeletedName { name, at_ms }, &mut out, &mut records);
        }
        for t in &catalog.move_tasks {
            put(Record::CheckpointMoveTask(t.clone()), &mut out, &mut records);
        }
        Record::CheckpointEnd { records }.encode(&mut out.buf);
        out.flush(true)?;
        Ok((out.at, nq, nm, relocations, usage, bodies_end))
    })();
    match result {
        Ok((bytes, queues, messages, relocations, usage, bodies_end)) => {
            let files = usage.keys().copied().collect();
            Ok(Index { start_segment, file, tmp, bytes, queues, messages, relocations, bodies_end, files, usage })
        }
        Err(e) => {
            drop(file);
            let _ = io.remove(&tmp);
            Err(e)
        }
    }
}

/// Copies the bodies `index` moved (reading each through `bodies`, checked
/// against its CRC) into the bodies file, makes both files durable and
/// visible. `cancelled` is polled between chunks (shutdown). A body that
/// cannot be read fails the checkpoint (nothing is pruned; the log and the
/// older checkpoints keep everything).
pub(crate) fn finish(io: &dyn Io, dir: &Path, index: Index, bodies: &Bodies, cancelled: &dyn Fn() -> bool) -> Result<Written, StoreError> {
    let ck_dir = dir.join(CHECKPOINT_DIR);
    let n = index.start_segment;
    let bodies_tmp = ck_dir.join(format!("{}.tmp", bodies_name(n)));
    let moved: u64 = index.relocations.iter().map(|(_, v)| v.len() as u64).sum();
    let result = (|| {
        if moved > 0 {
            let f = io.open(&bodies_tmp, true).map_err(|e| io_err("create bodies file", e))?;
            f.truncate(0).map_err(|e| io_err("truncate bodies file", e))?;
            let mut out = Out { f: f.as_ref(), buf: encode_file_header(BODIES_MAGIC, n).to_vec(), at: 0 };
            for (_, rs) in &index.relocations {
                for r in rs {
                    debug_assert_eq!(out.at + out.buf.len() as u64, r.new_offset);
                    let b = bodies.get_uncached(&Payload::Stored(r.old))?;
                    out.buf.extend_from_slice(&b);
                    if out.buf.len() >= CHECKPOINT_RECORD_BYTES_TARGET && cancelled() {
                        return Err(StoreError::Unavailable("checkpoint cancelled by shutdown".into()));
                    }
                    out.flush(false)?;
                }
            }
            out.flush(true)?;
            if out.at != index.bodies_end {
                return Err(StoreError::Internal("checkpoint: bodies file length differs from the index".into()));
            }
            f.fsync().map_err(|e| io_err("fsync bodies file", e))?;
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
