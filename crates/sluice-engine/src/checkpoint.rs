//! Checkpoints: a snapshot of the whole live state written to its own file, so
//! that recovery reads live data instead of history and old segments can go.
//!
//! Consistency: the snapshot is taken under the engine's epoch lock in write
//! mode, which every mutating operation holds in read mode while it applies
//! its effect and appends its record. Under that lock the pipe is rolled to a
//! new segment N, so the snapshot is exactly "all records in segments < N
//! applied, none of N or later". The file is named after N, written as
//! `*.tmp`, fsynced, renamed and the directory fsynced; only then are old
//! files pruned (keeping `CHECKPOINTS_KEPT` generations).
//!
//! The snapshot may include effects whose records are not durable yet (or
//! never will be, after an I/O error): those operations were not
//! acknowledged, so making them durable is allowed — the same as a 5xx whose
//! effect happened anyway.

use crate::codec::{encode_file_header, CHECKPOINT_MAGIC};
use crate::io::{write_all_at, Io};
use crate::limits::{CHECKPOINT_MESSAGES_PER_RECORD, CHECKPOINT_RECORD_BYTES_TARGET};
use crate::record::{message_bytes, Record};
use crate::recovery::{checkpoint_name, CHECKPOINT_DIR};
use crate::bodies::Bodies;
use sluice_store::queue_core::{CoreMessage, DedupEntry, Payload};
use sluice_store::{MoveTask, QueueId, QueueInfo, QueueName, StoreError};
use std::path::Path;
use std::time::Duration;

/// What a checkpoint wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// File written (relative to the data directory).
    pub file: String,
    /// First segment not covered.
    pub start_segment: u64,
    /// Queues in it.
    pub queues: u64,
    /// Messages in it.
    pub messages: u64,
    /// File size.
    pub bytes: u64,
    /// How long the state was frozen while it was copied.
    pub freeze: Duration,
    /// Total time.
    pub elapsed: Duration,
    /// Segments deleted afterwards.
    pub segments_pruned: u64,
}

pub(crate) struct QueueSnapshot {
    pub info: QueueInfo,
    pub next_seq: u64,
    pub messages: Vec<CoreMessage>,
    pub dedup: Vec<(String, DedupEntry)>,
}

pub(crate) struct Snapshot {
    pub start_segment: u64,
    pub next_queue_id: u64,
    pub queues: Vec<QueueSnapshot>,
    pub deleted: Vec<(QueueName, u64)>,
    pub move_tasks: Vec<MoveTask>,
}

fn io_err(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("checkpoint: {what}: {e}"))
}

/// One body the checkpoint copied: the message's sequence number at the
/// snapshot, where its body was, and where the copy is in this checkpoint
/// (32 bytes; length and CRC do not change).
pub(crate) struct Relocation {
    pub seq: u64,
    pub old_offset: u64,
    pub new_offset: u64,
    pub old_file: u32,
}

/// The relocations of each queue, in sequence order: the store repoints live
/// handles with them before pruning.
pub(crate) type Relocations = Vec<(QueueId, Vec<Relocation>)>;

/// What `write_checkpoint` wrote.
pub(crate) struct Written {
    pub file: String,
    pub bytes: u64,
    pub queues: u64,
    pub messages: u64,
    pub relocations: Relocations,
}

/// Writes `snap` durably, reading each body through `bodies`; `cancelled`
/// is polled between chunks (shutdown). A body that cannot be read fails the
/// checkpoint (the log keeps everything; nothing is pruned).
pub(crate) fn write_checkpoint(
    io: &dyn Io,
    dir: &Path,
    snap: Snapshot,
    bodies: &Bodies,
    cancelled: &dyn Fn() -> bool,
) -> Result<Written, StoreError> {
    let mut relocations = Relocations::new();
    let ck_dir = dir.join(CHECKPOINT_DIR);
    let name = checkpoint_name(snap.start_segment);
    let tmp = ck_dir.join(format!("{name}.tmp"));
    let path = ck_dir.join(&name);
    let f = io.open(&tmp, true).map_err(|e| io_err("create", e))?;
    let result = (|| {
        f.truncate(0).map_err(|e| io_err("truncate", e))?;
        let mut at = 0u64;
        let mut buf: Vec<u8> = encode_file_header(CHECKPOINT_MAGIC, snap.start_segment).to_vec();
        let mut records = 0u64;
        let (mut nq, mut nm) = (0u64, 0u64);
        let flush = |buf: &mut Vec<u8>, at: &mut u64, force: bool| -> Result<(), StoreError> {
            if force || buf.len() >= CHECKPOINT_RECORD_BYTES_TARGET {
                if cancelled() {
                    return Err(StoreError::Unavailable("checkpoint cancelled by shutdown".into()));
                }
                write_all_at(f.as_ref(), buf, *at).map_err(|(e, _)| io_err("write", e))?;
                *at += buf.len() as u64;
                buf.clear();
            }
            Ok(())
        };
        let mut put = |rec: Record, buf: &mut Vec<u8>, positions: Option<&mut Vec<usize>>| {
            rec.encode_with(buf, positions);
            records += 1;
        };
        put(Record::CheckpointBegin { start_segment: snap.start_segment, next_queue_id: snap.next_queue_id }, &mut buf, None);
        for QueueSnapshot { info, next_seq, messages, dedup } in snap.queues {
            let id = info.id;
            nq += 1;
            put(Record::CheckpointQueue { info, next_seq }, &mut buf, None);
            let mut chunk = Vec::new();
            let mut olds = Vec::new();
            let mut chunk_bytes = 0usize;
            let mut positions = Vec::new();
            let mut moved = Vec::new();
            // Encodes a chunk with its bodies in memory and notes where each
            // body lands in this file.
            let mut put_chunk = |chunk: Vec<CoreMessage>, olds: &mut Vec<Payload>, buf: &mut Vec<u8>, at: u64| {
                positions.clear();
                let seqs: Vec<u64> = chunk.iter().map(|m| m.seq).collect();
                put(Record::CheckpointMessages { queue: id, messages: chunk }, buf, Some(&mut positions));
                for ((old, pos), seq) in olds.drain(..).zip(&positions).zip(seqs) {
                    if let Payload::Stored(r) = old {
                        moved.push(Relocation { seq, old_offset: r.offset, new_offset: at + *pos as u64, old_file: r.file });
                    }
                }
            };
            for mut m in messages {
                nm += 1;
                let bytes = bodies.get_uncached(&m.payload)?;
                chunk_bytes += message_bytes(bytes.len(), m.group_id.as_deref(), m.dedup_id.as_deref());
                olds.push(std::mem::replace(&mut m.payload, Payload::Inline(bytes)));
                chunk.push(m);
                if chunk.len() >= CHECKPOINT_MESSAGES_PER_RECORD || chunk_bytes >= CHECKPOINT_RECORD_BYTES_TARGET {
                    put_chunk(std::mem::take(&mut chunk), &mut olds, &mut buf, at);
                    chunk_bytes = 0;
                    flush(&mut buf, &mut at, false)?;
                }
            }
            if !chunk.is_empty() {
                put_chunk(chunk, &mut olds, &mut buf, at);
            }
            relocations.push((id, moved));
            for part in dedup.chunks(CHECKPOINT_MESSAGES_PER_RECORD) {
                put(Record::CheckpointDedup { queue: id, entries: part.to_vec() }, &mut buf, None);
            }
            flush(&mut buf, &mut at, false)?;
        }
        for (name, at_ms) in snap.deleted {
            put(Record::CheckpointDeletedName { name, at_ms }, &mut buf, None);
        }
        for t in snap.move_tasks {
            put(Record::CheckpointMoveTask(t), &mut buf, None);
        }
        Record::CheckpointEnd { records }.encode(&mut buf);
        flush(&mut buf, &mut at, true)?;
        f.fsync().map_err(|e| io_err("fsync", e))?;
        Ok((at, nq, nm))
    })();
    drop(f);
    match result {
        Ok((bytes, queues, messages)) => {
            io.rename(&tmp, &path).map_err(|e| io_err("rename", e))?;
            io.fsync_dir(&ck_dir).map_err(|e| io_err("fsync directory", e))?;
            Ok(Written { file: format!("{CHECKPOINT_DIR}/{name}"), bytes, queues, messages, relocations })
        }
        Err(e) => {
            let _ = io.remove(&tmp);
            Err(e)
        }
    }
}
