//! Message bodies on disk: resolving `Payload::Stored` handles to bytes.
//!
//! A message's payload (encoded body and attributes) stays where the log or
//! a checkpoint wrote it; `QueueCore` keeps a `BodyRef` (file, offset, length,
//! CRC32C). `Bodies::get` resolves one, in this order:
//! 1. the cache: recently sent or read bodies, LRU, capped in bytes
//!    (`LogOptions::body_cache_bytes`, default `limits::BODY_CACHE_BYTES_DEFAULT`);
//! 2. the pipe: bytes appended but not written to the file yet (a receive
//!    right after a send); the file is never read before the writer wrote it;
//! 3. the file, with `read_at` through `Io`, checked against the handle's CRC.
//!
//! Errors (a failed read, a short read, a CRC mismatch) answer
//! `StoreError::Unavailable` naming the file and offset: the request fails
//! (RELIABILITY R13), other bodies are still served, nothing panics, and a
//! damaged body is never served.
//!
//! File numbering in `BodyRef::file`: segment `n` is `n`, the bodies file of
//! checkpoint `n` (named after its first uncovered segment, holding the
//! bodies that checkpoint moved out of mostly dead files) is
//! `n | CHECKPOINT_FILE_BIT`.
//! Open files are kept (one handle each) until `forget` after pruning; a
//! handle keeps a removed file readable, so a read racing a prune is safe.

use crate::io::{Io, IoFile};
use crate::pipe::{segment_name, Pipe};
use crate::recovery::{bodies_name, CHECKPOINT_DIR, LOG_DIR};
use bytes::Bytes;
use parking_lot::Mutex;
use sluice_store::queue_core::{BodyRef, Payload};
use sluice_store::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// `BodyRef::file` of a handle decoded from a record but not yet given its
/// file (see `Record::locate_bodies`); never stored in a `QueueCore`.
pub const UNLOCATED: u32 = u32::MAX;

/// Set in `BodyRef::file` for checkpoint bodies files.
pub const CHECKPOINT_FILE_BIT: u32 = 1 << 31;

/// The `BodyRef::file` of segment `n`.
pub fn segment_file(n: u64) -> u32 {
    assert!(n < u64::from(CHECKPOINT_FILE_BIT), "segment number {n} beyond the body handle's range");
    n as u32
}

/// The `BodyRef::file` of checkpoint `n`'s bodies file.
pub fn checkpoint_file(n: u64) -> u32 {
    assert!(n < u64::from(CHECKPOINT_FILE_BIT) - 1, "checkpoint number {n} beyond the body handle's range");
    n as u32 | CHECKPOINT_FILE_BIT
}

/// The path of `file` relative to the data directory.
pub fn file_name(file: u32) -> String {
    if file & CHECKPOINT_FILE_BIT != 0 {
        format!("{CHECKPOINT_DIR}/{}", bodies_name(u64::from(file & !CHECKPOINT_FILE_BIT)))
    } else {
        format!("{LOG_DIR}/{}", segment_name(u64::from(file)))
    }
}

type Key = (u32, u64);

/// A byte-capped LRU of bodies.
struct Cache {
    map: HashMap<Key, (Bytes, u64)>,
    order: BTreeMap<u64, Key>,
    bytes: usize,
    cap: usize,
    tick: u64,
}

impl Cache {
    fn get(&mut self, k: Key) -> Option<Bytes> {
        let (b, t) = self.map.get_mut(&k)?;
        self.order.remove(t);
        self.tick += 1;
        *t = self.tick;
        self.order.insert(self.tick, k);
        Some(b.clone())
    }

    fn remove(&mut self, k: Key) {
        if let Some((old, t)) = self.map.remove(&k) {
            self.order.remove(&t);
            self.bytes -= old.len();
        }
    }

    fn put(&mut self, k: Key, b: Bytes) {
        if b.len() > self.cap {
            return;
        }
        if let Some((old, t)) = self.map.remove(&k) {
            self.order.remove(&t);
            self.bytes -= old.len();
        }
        while self.bytes + b.len() > self.cap {
            let Some((_, victim)) = self.order.pop_first() else { break };
            if let Some((old, _)) = self.map.remove(&victim) {
                self.bytes -= old.len();
            }
        }
        self.tick += 1;
        self.bytes += b.len();
        self.order.insert(self.tick, k);
        self.map.insert(k, (b, self.tick));
    }
}

/// A body that could not be served.
#[derive(Debug)]
pub(crate) struct BodyError {
    /// `Unavailable`, naming file and offset.
    pub error: StoreError,
    /// It failed its checksum (damaged on disk), rather than an I/O error.
    pub damaged: bool,
}

/// Resolves body handles; shared by the store and the checkpointer.
pub(crate) struct Bodies {
    io: Arc<dyn Io>,
    dir: PathBuf,
    pipe: Arc<Pipe>,
    files: Mutex<HashMap<u32, Arc<dyn IoFile>>>,
    cache: Mutex<Cache>,
}

fn unavailable(file: u32, offset: u64, what: impl std::fmt::Display) -> StoreError {
    let e = StoreError::Unavailable(format!("message body in {} at offset {offset}: {what}", file_name(file)));
    tracing::error!(target: "sluice_engine", "{e}");
    e
}

impl Bodies {
    pub fn new(io: Arc<dyn Io>, dir: PathBuf, pipe: Arc<Pipe>, cache_bytes: usize) -> Bodies {
        Bodies {
            io,
            dir,
            pipe,
            files: Mutex::new(HashMap::new()),
            cache: Mutex::new(Cache { map: HashMap::new(), order: BTreeMap::new(), bytes: 0, cap: cache_bytes, tick: 0 }),
        }
    }

    /// Remembers the bytes of a body just sent (they are also in the pipe).
    pub fn remember(&self, r: &BodyRef, bytes: Bytes) {
        self.cache.lock().put((r.file, r.offset), bytes);
    }

    /// Drops the cached bytes of bodies whose messages were deleted: nobody
    /// reads them again, and freeing them now keeps a round trip's bodies in
    /// a small, warm set of memory instead of cycling through the whole cap.
    pub fn forget(&self, refs: &[BodyRef]) {
        if refs.is_empty() {
            return;
        }
        let mut c = self.cache.lock();
        for r in refs {
            c.remove((r.file, r.offset));
        }
    }

    /// The bytes of a payload.
    pub fn get(&self, p: &Payload) -> Result<Bytes, StoreError> {
        match p {
            Payload::Inline(b) => Ok((**b).clone()),
            Payload::Stored(r) => self.get_ref(r, true).map_err(|e| e.error),
        }
    }

    /// The bytes of a body a checkpoint copies (uncached), and whether it
    /// is damaged on disk for good (it failed its checksum twice). A
    /// damaged body is copied as it is: its handle's checksum still refuses
    /// it on every read (a receive quarantines it), and one damaged body
    /// must not fail every checkpoint, and so stop compaction, while its
    /// message is stored. An I/O error fails the copy (it may heal).
    pub fn get_for_copy(&self, r: &BodyRef) -> Result<(Bytes, bool), StoreError> {
        match self.get_ref(r, false) {
            Ok(b) => Ok((b, false)),
            Err(BodyError { damaged: true, .. }) => {
                let bytes = self.read_file(r)?;
                let damaged = crc32c::crc32c(&bytes) != r.crc;
                Ok((Bytes::from(bytes), damaged))
            }
            Err(e) => Err(e.error),
        }
    }

    /// The bytes of a payload for a receive, telling a body damaged on disk
    /// (it failed its checksum twice: read again from the file) from one
    /// that could not be read now (an I/O error: it may heal).
    pub fn get_for_receive(&self, p: &Payload) -> Result<Bytes, BodyError> {
        match p {
            Payload::Inline(b) => Ok((**b).clone()),
            Payload::Stored(r) => match self.get_ref(r, true) {
                Err(BodyError { damaged: true, .. }) => match self.read_file(r) {
                    Ok(bytes) if crc32c::crc32c(&bytes) == r.crc => Ok(Bytes::from(bytes)),
                    Ok(_) => Err(BodyError { error: unavailable(r.file, r.offset, "checksum mismatch again (damaged on disk)"), damaged: true }),
                    Err(error) => Err(BodyError { error, damaged: false }),
                },
                other => other,
            },
        }
    }

    fn get_ref(&self, r: &BodyRef, cache: bool) -> Result<Bytes, BodyError> {
        let key = (r.file, r.offset);
        if let Some(b) = self.cache.lock().get(key) {
            return Ok(b);
        }
        let len = r.len as usize;
        let bytes = match self.unwritten(r) {
            Some(v) => v,
            None => self.read_file(r).map_err(|error| BodyError { error, damaged: false })?,
        };
        if crc32c::crc32c(&bytes) != r.crc {
            return Err(BodyError { error: unavailable(r.file, r.offset, "checksum mismatch (damaged on disk)"), damaged: true });
        }
        debug_assert_eq!(bytes.len(), len);
        let bytes = Bytes::from(bytes);
        if cache {
            self.cache.lock().put(key, bytes.clone());
        }
        Ok(bytes)
    }

    fn unwritten(&self, r: &BodyRef) -> Option<Vec<u8>> {
        if r.file & CHECKPOINT_FILE_BIT != 0 {
            return None;
        }
        self.pipe.read_unwritten(u64::from(r.file), r.offset, r.len as usize)
    }

    fn file(&self, file: u32) -> Result<Arc<dyn IoFile>, StoreError> {
        if let Some(f) = self.files.lock().get(&file) {
            return Ok(f.clone());
        }
        let path = self.dir.join(file_name(file));
        let f: Arc<dyn IoFile> = Arc::from(self.io.open(&path, false).map_err(|e| unavailable(file, 0, format!("open: {e}")))?);
        Ok(self.files.lock().entry(file).or_insert(f).clone())
    }

    fn read_file(&self, r: &BodyRef) -> Result<Vec<u8>, StoreError> {
        let f = self.file(r.file)?;
        let mut buf = vec![0u8; r.len as usize];
        let mut at = 0usize;
        while at < buf.len() {
            match f.read_at(&mut buf[at..], r.offset + at as u64) {
                Ok(0) => return Err(unavailable(r.file, r.offset, format!("file ends after {at} of {} bytes", r.len))),
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(unavailable(r.file, r.offset, format!("read: {e}"))),
            }
        }
        Ok(buf)
    }

    /// fsyncs `file` (a segment a checkpoint is about to point into).
    pub fn fsync_file(&self, file: u32) -> Result<(), StoreError> {
        self.file(file)?.fsync().map_err(|e| unavailable(file, 0, format!("fsync: {e}")))
    }

    /// The length of `file`, if it can be opened.
    pub fn file_len(&self, file: u32) -> Option<u64> {
        self.file(file).ok()?.len().ok()
    }

    /// Drops the open handles of files no handle points into any more
    /// (`keep` says which files stay).
    pub fn forget_files(&self, keep: impl Fn(u32) -> bool) {
        self.files.lock().retain(|f, _| keep(*f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_evicts_least_recently_used_within_its_byte_cap() {
        let mut c = Cache { map: HashMap::new(), order: BTreeMap::new(), bytes: 0, cap: 10, tick: 0 };
        c.put((1, 0), Bytes::from_static(b"aaaa"));
        c.put((1, 4), Bytes::from_static(b"bbbb"));
        assert!(c.get((1, 0)).is_some());
        c.put((1, 8), Bytes::from_static(b"cccc"));
        assert!(c.get((1, 4)).is_none(), "least recently used evicted");
        assert!(c.get((1, 0)).is_some());
        assert_eq!(c.bytes, 8);
        c.put((1, 12), Bytes::from_static(b"too long for it"));
        assert!(c.get((1, 12)).is_none(), "a body larger than the cap is not cached");
        c.remove((1, 0));
        assert!(c.get((1, 0)).is_none(), "a removed body is gone");
        assert_eq!((c.bytes, c.map.len(), c.order.len()), (4, 1, 1), "its bytes and order entry with it");
        c.remove((1, 0));
        assert_eq!(c.bytes, 4, "removing twice changes nothing");
    }

    #[test]
    fn file_names_distinguish_segments_and_checkpoints() {
        assert_eq!(file_name(segment_file(3)), format!("{LOG_DIR}/{}", segment_name(3)));
        assert_eq!(file_name(checkpoint_file(3)), format!("{CHECKPOINT_DIR}/{}", bodies_name(3)));
    }
}
