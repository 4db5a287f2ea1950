//! Preallocated segments: the next segment is prepared ahead of time by its
//! own thread, zero-filled to `segment_bytes` and fsynced, so that the
//! writer's records overwrite blocks that are already allocated and part of
//! the file.
//!
//! Why: an fdatasync after a write that extends the file must also write the
//! inode (the new size, and on ext4 the extents of the newly allocated
//! blocks) before the cache flush. Within an allocated, zero-filled file it
//! writes the data and flushes only. On the development machine a 3,000-byte
//! `pwrite` + `fdatasync` took 0.44 ms appending and 0.23 ms overwriting
//! (`fallocate` does not help: its unwritten extents are converted at the
//! first write, which changes the inode the same way).
//!
//! The protocol:
//! * The writer asks for a segment once the current one holds a quarter of
//!   `segment_bytes` (`limits::PREPARE_NEXT_AT_DIVISOR`): a small or idle log
//!   never prepares one.
//! * The preparer writes `PREPARED_NAME` (a `.tmp` file, which recovery
//!   removes): zeros to `segment_bytes` (direct writes where the file system
//!   has them, rounding up to a whole block), then fsync.
//! * At its next roll the writer takes it if it is ready: it writes the
//!   segment's header into it, fsyncs, renames it to the segment's name and
//!   fsyncs the directory: the same order as a segment created empty, so
//!   a segment file never exists without its header. If none is ready, the
//!   writer creates the segment empty as before and never waits.
//! * A segment is truncated to its records before its `Seal` is written, so
//!   a finished segment holds no zeros; only the last one can end in the
//!   preallocated zeros, which recovery cuts off (not a torn tail: no record
//!   was there).
//! * When the log goes idle the checkpointer trims: the prepared file is
//!   removed and the next roll makes an empty segment, so a quiet data
//!   directory gives the space back (RELIABILITY R20).
//! * Failures of the preparer (disk full, I/O errors) cost nothing but speed:
//!   the file is removed and the writer creates its next segment empty.

use crate::io::{direct_write_refused, write_all_at, AlignedBuf, Io, DIRECT_BLOCK};
use crate::limits::{PREPARE_CHUNK_BYTES, PREPARE_DIRECT_CHUNK_BYTES};
use crate::pipe::Pipe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name, in the log directory, of the segment being or already prepared.
pub(crate) const PREPARED_NAME: &str = "next-segment.tmp";

/// The preparer thread's body: prepares a segment whenever the writer asks,
/// until the pipe closes (then removes an unused prepared file).
pub(crate) fn run(pipe: Arc<Pipe>, io: Arc<dyn Io>, log_dir: PathBuf, bytes: u64) {
    let tmp = log_dir.join(PREPARED_NAME);
    loop {
        match pipe.next_prep_work() {
            PrepWork::Exit { remove } => {
                if remove {
                    let _ = io.remove(&tmp);
                }
                return;
            }
            PrepWork::Remove => {
                let _ = io.remove(&tmp);
                pipe.prep_removed();
            }
            PrepWork::Prepare => {
                let res = prepare(io.as_ref(), &tmp, bytes);
                if let Err(e) = &res {
                    tracing::warn!(target: "sluice_engine", "preparing the next log segment: {e}; the writer creates it empty");
                    let _ = io.remove(&tmp);
                }
                pipe.prep_done(res.is_ok());
            }
        }
    }
}

/// What the preparer does next.
pub(crate) enum PrepWork {
    Prepare,
    Remove,
    Exit { remove: bool },
}

fn prepare(io: &dyn Io, path: &Path, bytes: u64) -> std::io::Result<()> {
    let f = io.open(path, true)?;
    f.truncate(0)?;
    if bytes == 0 {
        return f.fsync();
    }
    // Direct writes where the file system has them: zeros written through
    // the page cache cost a page allocation and a copy each, and then
    // occupy the cache for nothing (the writer writes its records directly
    // too; see `pipe::DirectTail`). Whole blocks: the length is rounded up.
    let mut direct = io.open_direct(path)?;
    let bytes = if direct.is_some() { bytes.next_multiple_of(DIRECT_BLOCK as u64) } else { bytes };
    let zeros = AlignedBuf::zeros(PREPARE_DIRECT_CHUNK_BYTES.max(PREPARE_CHUNK_BYTES));
    let mut at = 0u64;
    while at < bytes {
        let step = if direct.is_some() { PREPARE_DIRECT_CHUNK_BYTES } else { PREPARE_CHUNK_BYTES };
        let n = (bytes - at).min(step as u64) as usize;
        if let Some(d) = &direct {
            // Synchronous: one chunk on the device at a time, as below.
            match write_all_at(d.as_ref(), &zeros.as_slice()[..n], at) {
                Ok(()) => {
                    at += n as u64;
                    continue;
                }
                // Refused (`direct_write_refused`): the
                // rest goes through the page cache, as the writer's does.
                Err((e, n)) if direct_write_refused(&e, n) => direct = None,
                Err((e, _)) => return Err(e),
            }
        }
        write_all_at(f.as_ref(), &zeros.as_slice()[..n], at).map_err(|(e, _)| e)?;
        // Written out a chunk at a time: one fsync of the whole segment
        // would hold the device for tens of milliseconds, and the writer's
        // fsyncs (what acknowledgements wait for) would queue behind it.
        // Written back, not fsynced: each fsync would also commit the
        // journal and flush the device's cache.
        f.write_back(at, n as u64)?;
        at += n as u64;
    }
    // What is left: the metadata (size, extents) and one cache flush.
    f.fsync()
}

/// Whether every byte of `b` is zero (vectorised: this scans up to a whole
/// preallocated segment at recovery).
pub(crate) fn all_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    let body = chunks.by_ref().all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0);
    body && chunks.remainder().iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::all_zero;

    #[test]
    fn all_zero_looks_at_every_byte() {
        let mut b = vec![0u8; 1000];
        assert!(all_zero(&b));
        assert!(all_zero(&[]));
        for at in [0, 63, 64, 500, 959, 960, 999] {
            b[at] = 1;
            assert!(!all_zero(&b), "non-zero byte at {at}");
            b[at] = 0;
        }
    }
}
