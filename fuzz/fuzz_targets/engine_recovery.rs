//! Fuzz target: the engine's file header, frame and record decoders and recovery, on a
//! data directory of arbitrary files in the in-memory `FaultIo`.
//!
//! Input: one flag byte, then the files one after another; each file starts at its
//! magic (`SLUICSEG` segment, `SLUICCKP` checkpoint, `SLUICBOD` bodies; bytes before
//! the first magic are a segment) and is named by the number in its header (1..=64),
//! else by its place. Flags (`sluice_fuzz::fix_up`): bit 0 recomputes every header and
//! frame CRC, so arbitrary payloads reach the record decoder and replay; bit 1 keeps
//! `Seal`/`SyncedThrough` offsets consistent with their positions.
//!
//! Oracle, beyond "no panic" (and no hang, no memory blow-up, under libFuzzer's limits):
//! - `LogStore::open` either opens or answers `Corrupt { file, offset }`; nothing else
//!   (`FaultIo` injects no I/O error here);
//! - no state comes from a record whose CRC fails: every recovered message's id is
//!   inside a CRC-valid frame (independently checksummed) of a segment or checkpoint;
//!   every body served is inside a CRC-valid segment frame, or its length and CRC32C
//!   are a handle inside a CRC-valid checkpoint frame; no more records were replayed
//!   than there are CRC-valid segment frames;
//! - the state recovery accepted survives the engine's own writing: closed and
//!   reopened, then checkpointed and reopened, it is the same state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::format::{checkpoint_name, segment_name, CHECKPOINT_DIR, LOG_DIR};
use sluice_engine::{FaultIo, LogOptions, LogStore};
use sluice_fuzz::*;
use sluice_store::{Store, StoreError};
use std::path::{Path, PathBuf};

/// A moment after every time in the seeds, so due messages are promoted in
/// dumps. A fuzzed data directory can hold later times; the dumps are then
/// taken at its time floor, since the server's clock never runs below it
/// (RELIABILITY R15), and a checkpoint rightly drops what has expired by then
/// (a FIFO deduplication entry live at this moment but not at the floor
/// failed the comparison otherwise).
const DUMP_AT_MS: u64 = 4_000_000_000_000;

fn open(fs: &FaultIo) -> Result<std::sync::Arc<LogStore>, StoreError> {
    LogStore::open(Path::new("/data"), LogOptions { checkpoint_every_bytes: None, ..LogOptions::new(fs.as_io()) })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let fs = FaultIo::new();
    let io = fs.as_io();
    let dir = PathBuf::from("/data");
    io.create_dir_all(&dir.join(LOG_DIR)).expect("in memory");
    io.create_dir_all(&dir.join(CHECKPOINT_DIR)).expect("in memory");
    let mut files = split_files(rest);
    let mut counts = [0u64; 3];
    for (kind, bytes) in &mut files {
        fix_up(*kind, bytes, flags);
        let i = *kind as usize;
        counts[i] += 1;
        let n = header_number(bytes).filter(|n| (1..=64).contains(n)).unwrap_or(counts[i]);
        let path = match kind {
            FileKind::Segment => dir.join(LOG_DIR).join(segment_name(n)),
            FileKind::Checkpoint => dir.join(CHECKPOINT_DIR).join(checkpoint_name(n)),
            FileKind::Bodies => dir.join(CHECKPOINT_DIR).join(format!("{n:020}.bodies")),
        };
        fs.write_file(&path, bytes);
    }

    let store = match open(&fs) {
        Ok(store) => store,
        Err(StoreError::Corrupt { .. }) => return,
        Err(e) => panic!("recovery answered neither a store nor Corrupt: {e:?}"),
    };

    // Independent evidence: what CRC-valid frames and bodies files hold.
    let mut segment_frames: Vec<&[u8]> = Vec::new();
    let mut checkpoint_frames: Vec<&[u8]> = Vec::new();
    for (kind, bytes) in &files {
        match kind {
            FileKind::Segment => segment_frames.extend(valid_frame_payloads(bytes)),
            FileKind::Checkpoint => checkpoint_frames.extend(valid_frame_payloads(bytes)),
            FileKind::Bodies => {}
        }
    }
    let report = store.recovery_report().clone();
    assert!(
        report.records_replayed <= segment_frames.len() as u64,
        "{} records replayed from {} CRC-valid frames",
        report.records_replayed,
        segment_frames.len()
    );
    let at = DUMP_AT_MS.max(store.time_floor_ms());
    let dump = store.dump(at);
    for q in &dump.queues {
        for m in &q.messages {
            let id = m.message.message_id.to_le_bytes();
            assert!(
                segment_frames.iter().chain(&checkpoint_frames).any(|f| contains(f, &id)),
                "message {:x} in no CRC-valid frame",
                m.message.message_id
            );
            let body = &m.message.payload[..];
            if body.starts_with(b"<unreadable: ") {
                continue; // refused, not served
            }
            // A body is vouched for by the CRC of the segment frame it was sent in, or,
            // once a checkpoint indexes it, by the CRC32C in its handle (`len u32 ‖ crc
            // u32` at the end of the handle), which the checkpoint frame's CRC covers:
            // the frame it was sent in may since be damaged below the checkpoint's base,
            // which recovery no longer reads.
            let mut handle_tail = (body.len() as u32).to_le_bytes().to_vec();
            handle_tail.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
            assert!(
                segment_frames.iter().any(|f| contains(f, body)) || checkpoint_frames.iter().any(|f| contains(f, &handle_tail)),
                "body of message {:x} ({} bytes) served that no CRC-valid segment frame holds and no CRC-valid checkpoint handle vouches for",
                m.message.message_id,
                body.len()
            );
        }
    }

    // What recovery accepted, the engine must be able to keep.
    store.close_blocking().unwrap_or_else(|e| panic!("close after recovery: {e:?}"));
    drop(store);
    let store = open(&fs).unwrap_or_else(|e| panic!("reopen after a successful recovery fails: {e:?}"));
    assert_eq!(store.dump(at), dump, "state changed across a clean reopen");
    store.checkpoint_blocking().unwrap_or_else(|e| panic!("checkpoint of the recovered state: {e:?}"));
    store.close_blocking().unwrap_or_else(|e| panic!("close after checkpoint: {e:?}"));
    drop(store);
    let store = open(&fs).unwrap_or_else(|e| panic!("reopen from the checkpoint fails: {e:?}"));
    assert_eq!(store.dump(at), dump, "state changed across checkpoint and reopen");
    store.close_blocking().unwrap_or_else(|e| panic!("final close: {e:?}"));
});
