//! Message bodies on disk: resolving `Payload::Stored` handles to bytes.
//!
//! A message's payload (encoded body and attributes) stays where the log or
//! a checkpoint wrote it; `QueueCore` keeps a `BodyRef` (file, offset, length,
//! CRC32C). `Bodies::get` resolves one, in this order:
//! 1. the cache: recently sent or read bodies, least recently used evicted
//!    first (second chance, `Cache`), capped in bytes
//!    (`LogOptions::body_cache_bytes`, default `limits::BODY_CACHE_BYTES_DEFAULT`);
//!    a body sent behind more of its queue than the cache holds is not put
//!    (`Bodies::remember`);
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
use hashbrown::HashTable;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The hash of a key: offsets are distinct within a file and files few, so
/// one multiply spreads them (the SipHash map and B-tree this replaced took
/// over a third of a durable send's engine time).
fn key_hash(k: Key) -> u64 {
    (k.1 ^ (u64::from(k.0) << 44) ^ (u64::from(k.0) >> 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

struct Entry {
    key: Key,
    bytes: Bytes,
    /// Which of the key's places in `order` is current (older ones are stale).
    tick: u64,
    /// Read since it was last put in `order`: it gets a second chance.
    referenced: bool,
}

/// A byte-capped cache of bodies, evicting the least recently used by the
/// second-chance (CLOCK) approximation: `order` is a queue of keys in the
/// order they came in; eviction takes the oldest, and one read since it came
/// in sends it to the back instead. A put or a read touches one hash slot
/// and one queue end, where an exact LRU moved a tree entry on every read.
/// Removal leaves its place in `order` behind (stale, skipped when reached;
/// `order` is compacted when stale places outnumber the live ones).
struct Cache {
    map: HashTable<Entry>,
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    cap: usize,
    tick: u64,
}

impl Cache {
    fn new(cap: usize) -> Cache {
        Cache { map: HashTable::new(), order: VecDeque::new(), bytes: 0, cap, tick: 0 }
    }

    fn get(&mut self, k: Key) -> Option<Bytes> {
        let e = self.map.find_mut(key_hash(k), |e| e.key == k)?;
        e.referenced = true;
        Some(e.bytes.clone())
    }

    fn remove(&mut self, k: Key) {
        if let Ok(e) = self.map.find_entry(key_hash(k), |e| e.key == k) {
            let (old, _) = e.remove();
            self.bytes -= old.bytes.len();
            self.compact();
        }
    }

    fn put(&mut self, k: Key, b: Bytes) {
        if b.len() > self.cap {
            return;
        }
        self.remove(k);
        while self.bytes + b.len() > self.cap {
            let Some((victim, tick)) = self.order.pop_front() else { break };
            let Ok(mut e) = self.map.find_entry(key_hash(victim), |e| e.key == victim && e.tick == tick) else { continue };
            if std::mem::take(&mut e.get_mut().referenced) {
                self.tick += 1;
                e.get_mut().tick = self.tick;
                self.order.push_back((victim, self.tick));
                continue;
            }
            let (old, _) = e.remove();
            self.bytes -= old.bytes.len();
        }
        self.tick += 1;
        self.bytes += b.len();
        self.order.push_back((k, self.tick));
        self.map.insert_unique(key_hash(k), Entry { key: k, bytes: b, tick: self.tick, referenced: false }, |e| key_hash(e.key));
    }

    /// Drops stale places once they are more than half of `order`, so a
    /// cache whose bodies are mostly removed (a round trip deletes what it
    /// received) does not grow `order` without bound; amortised O(1).
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.map.len() + 1024 {
            return;
        }
        let map = &self.map;
        self.order.retain(|&(k, t)| map.find(key_hash(k), |e| e.key == k && e.tick == t).is_some());
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
    cache_cap: usize,
    /// Sent bodies put into the cache, and sent bodies left out of it (their
    /// queue too deep: see `remember`).
    pub cached: AtomicU64,
    pub not_cached: AtomicU64,
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
            cache: Mutex::new(Cache::new(cache_bytes)),
            cache_cap: cache_bytes,
            cached: AtomicU64::new(0),
            not_cached: AtomicU64::new(0),
        }
    }

    /// Remembers the bytes of bodies just sent (they are also in the pipe),
    /// unless `ahead` messages were already in their queue and that many
    /// bodies of their size would fill the cache: a queue is received
    /// oldest first, so these would be evicted before anyone read them, and
    /// putting them would only evict bodies that may still be read (and free
    /// each evicted one on cold memory: under a send-only load that was 7.5 %
    /// of the tokio workers' time, docs/benchmarks.md).
    pub fn remember(&self, bodies: Vec<(BodyRef, Bytes)>, ahead: usize) {
        if bodies.is_empty() {
            return;
        }
        let mean = bodies.iter().map(|(_, b)| b.len()).sum::<usize>() / bodies.len();
        if ahead.saturating_mul(mean) > self.cache_cap {
            self.not_cached.fetch_add(bodies.len() as u64, Ordering::Relaxed);
            return;
        }
        self.cached.fetch_add(bodies.len() as u64, Ordering::Relaxed);
        let mut c = self.cache.lock();
        for (r, bytes) in bodies {
            c.put((r.file, r.offset), bytes);
        }
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
        let mut c = Cache::new(10);
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
        assert_eq!((c.bytes, c.map.len()), (4, 1), "its bytes with it");
        c.remove((1, 0));
        assert_eq!(c.bytes, 4, "removing twice changes nothing");
    }

    #[test]
    fn cache_keeps_what_was_read_and_ignores_stale_places() {
        let mut c = Cache::new(12);
        for k in 0..3u64 {
            c.put((2, k), Bytes::from(vec![k as u8; 4]));
        }
        // Read the oldest: it is passed over once; the next oldest goes.
        assert!(c.get((2, 0)).is_some());
        c.put((2, 3), Bytes::from_static(b"dddd"));
        assert!(c.get((2, 1)).is_none(), "the oldest unread body evicted");
        assert_eq!(c.get((2, 0)).as_deref(), Some(&[0u8; 4][..]), "the read body kept");
        // Removed and put again: its old place in the queue must not evict
        // the new entry early.
        c.remove((2, 2));
        c.put((2, 2), Bytes::from_static(b"eeee"));
        c.put((2, 4), Bytes::from_static(b"ffff"));
        assert_eq!(c.get((2, 2)).as_deref(), Some(&b"eeee"[..]), "re-put body kept over older ones");
        assert_eq!(c.bytes, 12);
        assert!(c.bytes <= c.cap);
    }

    #[test]
    fn cache_order_stays_bounded_when_bodies_are_removed() {
        // A round trip: every body put is removed soon after, and the cache
        // never fills, so eviction never drains `order`.
        let mut c = Cache::new(1 << 20);
        for k in 0..100_000u64 {
            c.put((3, k), Bytes::from_static(b"x"));
            if k >= 10 {
                c.remove((3, k - 10));
            }
        }
        assert_eq!(c.map.len(), 10);
        assert!(c.order.len() <= 2 * 10 + 1024 + 1, "order holds {} places for 10 bodies", c.order.len());
        for k in 99_990..100_000u64 {
            assert!(c.get((3, k)).is_some());
        }
    }

    #[test]
    fn file_names_distinguish_segments_and_checkpoints() {
        assert_eq!(file_name(segment_file(3)), format!("{LOG_DIR}/{}", segment_name(3)));
        assert_eq!(file_name(checkpoint_file(3)), format!("{CHECKPOINT_DIR}/{}", bodies_name(3)));
    }
}
