//! Opening a data directory: choose a checkpoint, replay the log after it,
//! truncate a torn tail, refuse corruption.
//!
//! Rules (see the crate docs for why):
//! * Checkpoints are tried newest first. One that fails its checksums, is cut
//!   short (no End record or wrong count) or names the wrong segment is
//!   rejected — renamed to `*.rejected` and reported — and the previous one is
//!   tried; with none left the whole log from segment 1 is replayed. If that
//!   log is no longer there, opening fails with `Corrupt` naming the checkpoint.
//! * Segments from the chosen base must be contiguous; a missing one is
//!   `Corrupt { file: <missing name>, offset: 0 }`.
//! * Every record's frame checksum is checked. Damage in any segment but the
//!   last, or in the last below the highest `SyncedThrough` offset seen, or
//!   followed by an intact `SyncedThrough` claiming a higher offset, is
//!   `Corrupt { file, offset }` — never "end of data". Damage in the last
//!   segment past everything known to be fsynced is a torn tail: the file is
//!   cut there and the cut is reported (with how many intact-looking frames
//!   were dropped after it, which only a lost page or a flipped bit in
//!   never-acknowledged data can leave).
//! * The unsynced tail of the last segment is rewritten in place and fsynced
//!   before the store opens, so that bytes only in the page cache (after a
//!   kill -9, or after a failed fsync whose pages the kernel marked clean) are
//!   made durable before anything new depends on them.

use crate::bodies::{checkpoint_file, file_name, segment_file, CHECKPOINT_FILE_BIT};
use crate::codec::{
    decode_file_header, decode_frame, find_next_frame, FrameError, CHECKPOINT_MAGIC, FILE_HEADER_BYTES, FRAME_HEADER_BYTES, SEGMENT_MAGIC,
};
use crate::io::{write_all_at, Io};
use crate::limits::{CHECKPOINTS_KEPT, CHECKPOINT_READ_WINDOW_BYTES, RECORD_BYTES_MAX};
use crate::pipe::segment_name;
use crate::record::{tag, Record};
use crate::state::Catalog;
use sluice_store::StoreError;
use sluice_store::queue_core::Payload;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Subdirectory of the data directory holding segments.
pub const LOG_DIR: &str = "log";
/// Subdirectory holding checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// The file name of the checkpoint whose first uncovered segment is `n`.
pub fn checkpoint_name(n: u64) -> String {
    format!("{n:020}.ckpt")
}

/// The file name of checkpoint `n`'s bodies file.
pub fn bodies_name(n: u64) -> String {
    format!("{n:020}.bodies")
}

/// A torn tail that was cut off the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Segment file (relative to the data directory).
    pub file: String,
    /// Where the damage starts; the file now ends here.
    pub offset: u64,
    /// Bytes cut.
    pub bytes_dropped: u64,
    /// Frames past the damage that still checksummed and were dropped too.
    pub intact_frames_dropped: u64,
}

/// What opening the store found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The checkpoint the state was loaded from, if any.
    pub checkpoint: Option<String>,
    /// Checkpoints rejected (file, reason); each was renamed to `*.rejected`.
    pub rejected_checkpoints: Vec<(String, String)>,
    /// Segments replayed after the checkpoint.
    pub segments_replayed: u64,
    /// Records replayed from them.
    pub records_replayed: u64,
    /// Bytes of log replayed (the valid part of each segment replayed).
    pub bytes_replayed: u64,
    /// Bytes and messages of the checkpoint index loaded, if any.
    pub checkpoint_index: Option<(u64, u64)>,
    /// Messages live after recovery.
    pub messages: u64,
    /// A torn tail that was cut, if any.
    pub torn_tail: Option<TornTail>,
    /// Zeros cut off the end of the last segment, which was preallocated
    /// (`LogOptions::preallocate_segments`) and not filled before the stop.
    pub preallocated_bytes_cut: u64,
    /// The last segment ended with its seal: the previous run closed cleanly
    /// (or nothing was ever written). False after a crash — or after damage
    /// that removed the seal, which only this flag can reveal.
    pub clean_shutdown: bool,
    /// Bytes of the last segment rewritten and fsynced because they were not
    /// known to be durable.
    pub tail_bytes_resynced: u64,
    /// Wall time spent.
    pub elapsed: Duration,
}

pub(crate) struct Recovered {
    pub catalog: Catalog,
    pub report: RecoveryReport,
    pub next_segment: u64,
    /// The checkpoint loaded and the files its handles point into: they
    /// must stay while it is one of the kept generations.
    pub checkpoint_files: Option<(u64, HashSet<u32>)>,
}

fn corrupt(file: &str, offset: u64) -> StoreError {
    StoreError::Corrupt { file: file.to_string(), offset }
}

fn io_err(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// One step of walking the frames of a file. Items travel in batches of 64
/// between threads, so the size of the `Record` variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum FrameItem {
    /// A frame that checksummed, and its decoded record (or why it did not decode).
    Record { pos: usize, size: usize, rec: Result<Record, crate::codec::DecodeError> },
    /// Bytes at `pos` are not a whole valid frame; the walk stops.
    Bad { pos: usize, incomplete: bool },
    /// The walk reached the end of the buffer cleanly.
    End { pos: usize },
}

struct SeqFrames<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl Iterator for SeqFrames<'_> {
    type Item = FrameItem;
    fn next(&mut self) -> Option<FrameItem> {
        if self.done {
            return None;
        }
        if self.pos >= self.buf.len() {
            self.done = true;
            return Some(FrameItem::End { pos: self.pos });
        }
        match decode_frame(&self.buf[self.pos..]) {
            Ok(f) => {
                let item = FrameItem::Record { pos: self.pos, size: f.size, rec: Record::decode(f.kind, f.payload) };
                self.pos += f.size;
                Some(item)
            }
            Err(e) => {
                self.done = true;
                Some(FrameItem::Bad { pos: self.pos, incomplete: e == FrameError::Incomplete })
            }
        }
    }
}

/// Files at least this large are decoded on a helper thread while the caller
/// applies the records (checksums and decoding overlap with index building).
const PIPELINE_MIN_BYTES: usize = 1 << 20;

/// Frame bytes per batch handed from the decoding thread (see `with_frames`).
const PIPELINE_BATCH_BYTES: usize = 256 << 10;

/// Walks the frames of `buf` from `start`, handing each to `f`. Large
/// buffers are decoded on a scoped helper thread, in batches, in order; when
/// `f` returns early the helper stops at its next send.
pub(crate) fn with_frames<R>(buf: &[u8], start: usize, f: impl FnOnce(&mut dyn Iterator<Item = FrameItem>) -> R) -> R {
    let seq = SeqFrames { buf, pos: start.min(buf.len()), done: false };
    if buf.len() < PIPELINE_MIN_BYTES {
        let mut it = seq;
        return f(&mut it);
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<FrameItem>>(16);
        scope.spawn(move || {
            let mut seq = seq;
            // Batches of up to 64 frames or 256 KiB of them, 16 batches
            // ahead at most: a checkpoint record holds a thousand messages,
            // and 64 × 16 of those decoded ahead would be a million
            // messages of memory that recovery only needs for a moment.
            loop {
                let mut batch: Vec<FrameItem> = Vec::with_capacity(64);
                let mut bytes = 0;
                while batch.len() < 64 && bytes < PIPELINE_BATCH_BYTES {
                    let Some(item) = seq.next() else { break };
                    if let FrameItem::Record { size, .. } = &item {
                        bytes += *size;
                    }
                    batch.push(item);
                }
                if batch.is_empty() || tx.send(batch).is_err() {
                    break;
                }
            }
        });
        let mut it = rx.into_iter().flatten();
        f(&mut it)
    })
}

/// Segment numbers and checkpoint numbers present in a data directory.
pub(crate) struct Listing {
    pub segments: Vec<u64>,
    pub checkpoints: Vec<u64>,
    pub bodies: Vec<u64>,
    pub temporaries: Vec<PathBuf>,
}

fn parse_numbered(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) fn list(io: &dyn Io, dir: &Path) -> Result<Listing, StoreError> {
    let log = dir.join(LOG_DIR);
    let ck = dir.join(CHECKPOINT_DIR);
    let log_names = io.list(&log).map_err(|e| io_err("list log directory", e))?;
    let mut segments: Vec<u64> = log_names.iter().filter_map(|n| parse_numbered(n, ".seg")).collect();
    segments.sort_unstable();
    let names = io.list(&ck).map_err(|e| io_err("list checkpoint directory", e))?;
    let mut checkpoints: Vec<u64> = names.iter().filter_map(|n| parse_numbered(n, ".ckpt")).collect();
    checkpoints.sort_unstable();
    let mut bodies: Vec<u64> = names.iter().filter_map(|n| parse_numbered(n, ".bodies")).collect();
    bodies.sort_unstable();
    // Unfinished checkpoint files, and a prepared segment (`prealloc`).
    let temporaries = names
        .iter()
        .filter(|n| n.ends_with(".tmp"))
        .map(|n| ck.join(n))
        .chain(log_names.iter().filter(|n| n.ends_with(".tmp")).map(|n| log.join(n)))
        .collect();
    Ok(Listing { segments, checkpoints, bodies, temporaries })
}

/// Where a checkpoint stopped being valid.
pub(crate) struct Rejection {
    pub offset: u64,
    pub reason: String,
}

/// Loads and fully validates a checkpoint file into a fresh catalog.
///
/// The file is read in windows of `CHECKPOINT_READ_WINDOW_BYTES` (grown only
/// for a frame larger than that), never whole: with bodies in the
/// checkpoint it is about as large as the live data, and recovery must not
/// need that much memory.
/// Loads checkpoint `n`: its state and the files its body handles point
/// into (gathered while parsing, so recovery needs no pass over every
/// message for them: two such passes were a fifth of a restart).
pub(crate) fn load_checkpoint(io: &dyn Io, dir: &Path, n: u64) -> Result<Result<(Catalog, HashSet<u32>), Rejection>, StoreError> {
    load_checkpoint_in_windows(io, dir, n, CHECKPOINT_READ_WINDOW_BYTES)
}

fn load_checkpoint_in_windows(io: &dyn Io, dir: &Path, n: u64, window: usize) -> Result<Result<(Catalog, HashSet<u32>), Rejection>, StoreError> {
    let name = checkpoint_name(n);
    let path = dir.join(CHECKPOINT_DIR).join(&name);
    let f = io.open(&path, false).map_err(|e| io_err(&format!("open {CHECKPOINT_DIR}/{name}"), e))?;
    let len = f.len().map_err(|e| io_err(&format!("read {CHECKPOINT_DIR}/{name}"), e))?;
    let mut parser = CheckpointParser::new(n);
    let mut base = 0u64;
    let mut window = window;
    let largest = RECORD_BYTES_MAX + FRAME_HEADER_BYTES + FILE_HEADER_BYTES;
    // One buffer for every window: a fresh large allocation per window
    // would fault in a gigabyte of new pages for a gigabyte of checkpoint.
    let mut buf = Vec::new();
    loop {
        let want = usize::try_from((len - base).min(window as u64)).unwrap_or(window);
        read_range(f.as_ref(), base, want, &mut buf).map_err(|e| io_err(&format!("read {CHECKPOINT_DIR}/{name}"), e))?;
        let eof = buf.len() < want || base + buf.len() as u64 >= len;
        match parser.feed(&buf, base, len, eof) {
            Err(rej) => return Ok(Err(rej)),
            Ok(Fed::Finished) => return Ok(Ok((parser.catalog, parser.files))),
            Ok(Fed::Consumed(0)) if window >= largest => {
                return Ok(Err(Rejection { offset: base, reason: "frame larger than any record".into() }));
            }
            Ok(Fed::Consumed(0)) => window = (window * 2).min(largest),
            Ok(Fed::Consumed(k)) => base += k as u64,
        }
    }
}

/// Reads up to `len` bytes at `offset` into `buf` (fewer only at the end of
/// the file), reusing its allocation.
fn read_range(f: &dyn crate::io::IoFile, offset: u64, len: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.resize(len, 0);
    let mut at = 0usize;
    while at < len {
        match f.read_at(&mut buf[at..], offset + at as u64) {
            Ok(0) => break,
            Ok(k) => at += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(at);
    Ok(())
}

/// Validates a whole checkpoint held in memory (salvage).
pub(crate) fn parse_checkpoint(buf: &[u8], n: u64) -> Result<Catalog, Rejection> {
    let mut parser = CheckpointParser::new(n);
    match parser.feed(buf, 0, buf.len() as u64, true)? {
        Fed::Finished => Ok(parser.catalog),
        Fed::Consumed(_) => Err(Rejection { offset: buf.len() as u64, reason: "cut short before its end record".into() }),
    }
}

/// What one window of a checkpoint gave.
enum Fed {
    /// The end record was reached and checked.
    Finished,
    /// Whole frames up to this many bytes of the window were applied; the
    /// next window starts there.
    Consumed(usize),
}

/// The checks and the catalog of a checkpoint being read window by window.
struct CheckpointParser {
    n: u64,
    catalog: Catalog,
    count: u64,
    header_done: bool,
    /// Every file a body handle of the checkpoint points into.
    files: HashSet<u32>,
    /// The highest segment a range's body handle points into (0: none).
    range_segments: u64,
}

impl CheckpointParser {
    fn new(n: u64) -> Self {
        Self { n, catalog: Catalog::default(), count: 0, header_done: false, files: HashSet::new(), range_segments: 0 }
    }

    /// Applies the whole frames of `buf`, which holds the file's bytes from
    /// `base`; `total` is the file's length and `eof` says `buf` reaches it.
    fn feed(&mut self, buf: &[u8], base: u64, total: u64, eof: bool) -> Result<Fed, Rejection> {
        let reject = |offset: u64, reason: &str| Rejection { offset, reason: reason.to_string() };
        let mut start = 0;
        if !self.header_done {
            match decode_file_header(CHECKPOINT_MAGIC, buf) {
                Ok(m) if m == self.n => {}
                Ok(_) => return Err(reject(0, "header names another segment")),
                Err(FrameError::Incomplete) => return Err(reject(0, "header cut short")),
                Err(FrameError::Invalid(r)) => return Err(reject(0, r)),
            }
            self.header_done = true;
            start = FILE_HEADER_BYTES;
        }
        let n = self.n;
        let (catalog, count, files, range_segments) = (&mut self.catalog, &mut self.count, &mut self.files, &mut self.range_segments);
        with_frames(buf, start, |frames| {
            for item in frames {
                let (pos, size, rec) = match item {
                    FrameItem::Record { pos, size, rec } => (pos, size, rec),
                    FrameItem::Bad { pos, incomplete: true } | FrameItem::End { pos } => {
                        if eof {
                            return Err(reject(base + pos as u64, "cut short before its end record"));
                        }
                        return Ok(Fed::Consumed(pos));
                    }
                    FrameItem::Bad { pos, incomplete: false } => {
                        return Err(reject(base + pos as u64, "bad frame (checksum, magic or length)"))
                    }
                };
                let at = base + pos as u64;
                let rec = rec.map_err(|e| reject(at, e.0))?;
                match (&rec, *count) {
                    (Record::CheckpointBegin { start_segment, .. }, 0) if *start_segment == n => {}
                    (_, 0) => return Err(reject(at, "does not start with its begin record")),
                    (Record::CheckpointBegin { .. }, _) => return Err(reject(at, "second begin record")),
                    (Record::CheckpointEnd { records }, _) => {
                        if *records != *count {
                            return Err(reject(at, "record count mismatch"));
                        }
                        catalog.end_checkpoint().map_err(|r| reject(at, r))?;
                        if at + size as u64 != total {
                            return Err(reject(at + size as u64, "bytes after the end record"));
                        }
                        return Ok(Fed::Finished);
                    }
                    (Record::CheckpointTail { segment, .. }, _) if *segment < n => return Err(reject(at, "tail before the checkpoint's start")),
                    (r, _) if !(tag::CHECKPOINT_BEGIN..=tag::CHECKPOINT_LAST).contains(&r.tag()) => {
                        return Err(reject(at, "log record inside a checkpoint"))
                    }
                    _ => {}
                }
                let mut rec = rec;
                // A checkpoint's handles point into segments it covers or
                // into bodies files of checkpoints up to itself; a fuzzy
                // checkpoint's ranges and tail also into the segments of its
                // window (ranges come before the tail names its end: their
                // highest segment is checked against it there).
                let covered = match &catalog.window {
                    Some(w) if w.tail_segment != 0 => w.tail_segment,
                    _ if matches!(rec, Record::CheckpointRange { .. }) => u64::MAX,
                    _ => n,
                };
                if let Record::CheckpointTail { segment, .. } = &rec {
                    if *range_segments >= *segment {
                        return Err(reject(at, "range body handle beyond the checkpoint's window"));
                    }
                }
                if let (Some(ms), true) = (rec.messages_mut(), covered == u64::MAX) {
                    let top = ms.iter().filter_map(|m| match &m.payload {
                        Payload::Stored(r) if r.file & CHECKPOINT_FILE_BIT == 0 => Some(u64::from(r.file)),
                        _ => None,
                    });
                    *range_segments = top.fold(*range_segments, u64::max);
                }
                if let Some(ms) = rec.messages_mut() {
                    let outside = ms.iter().any(|m| match &m.payload {
                        Payload::Stored(r) if r.file & CHECKPOINT_FILE_BIT != 0 => u64::from(r.file & !CHECKPOINT_FILE_BIT) > n,
                        Payload::Stored(r) => u64::from(r.file) >= covered,
                        Payload::Inline(_) => true,
                    });
                    if outside {
                        return Err(reject(at, "body handle outside the files the checkpoint covers"));
                    }
                    files.extend(ms.iter().filter_map(|m| match &m.payload {
                        Payload::Stored(r) => Some(r.file),
                        Payload::Inline(_) => None,
                    }));
                }
                catalog.apply(rec).map_err(|r| reject(at, r))?;
                *count += 1;
            }
            // The walk always ends with `End` or `Bad`; reaching here means
            // the iterator stopped early, which it never does.
            Err(reject(base + buf.len() as u64, "cut short before its end record"))
        })
    }
}

enum SegmentEnd {
    /// Every byte was a valid record (or the header only); `sealed` when the
    /// last one is a `Seal`.
    Clean { end: u64, trusted: u64, sealed: bool },
    /// The last segment's header never made it: the file holds nothing.
    TornHeader,
    /// The last segment has a torn tail starting at `offset`; `sealed` when
    /// what is kept ends with its seal (the damage lies past the seal);
    /// `zeros` when everything from `offset` is zero: a preallocated
    /// segment's unused end (`prealloc`), where no record was.
    Torn { offset: u64, trusted: u64, intact_after: u64, sealed: bool, zeros: bool },
}

fn scan_segment(file: &str, buf: &[u8], no: u64, is_last: bool, catalog: &mut Catalog, records: &mut u64) -> Result<SegmentEnd, StoreError> {
    match decode_file_header(SEGMENT_MAGIC, buf) {
        Ok(m) if m == no => {}
        Ok(_) => return Err(corrupt(file, 0)),
        Err(_) => {
            // The header is written and fsynced before any record, so only a
            // file no longer than a header can have lost it in a crash.
            if is_last && buf.len() <= FILE_HEADER_BYTES {
                return Ok(SegmentEnd::TornHeader);
            }
            return Err(corrupt(file, 0));
        }
    }
    let mut trusted = FILE_HEADER_BYTES as u64;
    let mut sealed = false;
    let walked = with_frames(buf, FILE_HEADER_BYTES, |frames| -> Result<Result<usize, SegmentEnd>, StoreError> {
        for item in frames {
            let (pos, rec) = match item {
                FrameItem::End { pos } => return Ok(Ok(pos)),
                FrameItem::Record { pos, rec, .. } => (pos, rec),
                FrameItem::Bad { pos, .. } => {
                    if !is_last || (pos as u64) < trusted {
                        return Err(corrupt(file, pos as u64));
                    }
                    // Past everything known durable in the last segment: a
                    // torn tail, unless an intact marker after it vouches for
                    // the damaged bytes.
                    if crate::prealloc::all_zero(&buf[pos..]) {
                        return Ok(Err(SegmentEnd::Torn { offset: pos as u64, trusted, intact_after: 0, sealed, zeros: true }));
                    }
                    let mut intact_after = 0;
                    let mut at = pos + 1;
                    while let Some(p) = find_next_frame(buf, at) {
                        let g = decode_frame(&buf[p..]).expect("find_next_frame returns valid frames");
                        if let Ok(Record::SyncedThrough { offset } | Record::Seal { offset }) = Record::decode(g.kind, g.payload) {
                            if offset > pos as u64 {
                                return Err(corrupt(file, pos as u64));
                            }
                        }
                        intact_after += 1;
                        at = p + g.size;
                    }
                    return Ok(Err(SegmentEnd::Torn { offset: pos as u64, trusted, intact_after, sealed, zeros: false }));
                }
            };
            let rec = rec.map_err(|_| corrupt(file, pos as u64))?;
            match rec {
                Record::SyncedThrough { offset } => {
                    if offset > pos as u64 || sealed {
                        return Err(corrupt(file, pos as u64));
                    }
                    trusted = trusted.max(offset);
                }
                Record::Seal { offset } => {
                    if offset != pos as u64 || sealed {
                        return Err(corrupt(file, pos as u64));
                    }
                    trusted = offset;
                    sealed = true;
                }
                ref r if (tag::CHECKPOINT_BEGIN..=tag::CHECKPOINT_LAST).contains(&r.tag()) => return Err(corrupt(file, pos as u64)),
                mut r => {
                    // Nothing is ever written after a seal.
                    if sealed {
                        return Err(corrupt(file, pos as u64));
                    }
                    r.locate_bodies(segment_file(no), (pos + FRAME_HEADER_BYTES) as u64);
                    catalog.apply_at(r, (no, pos as u64)).map_err(|_| corrupt(file, pos as u64))?;
                    *records += 1;
                }
            }
        }
        Ok(Ok(buf.len()))
    })?;
    let pos = match walked {
        Ok(end) => end,
        Err(torn) => return Ok(torn),
    };
    if !is_last && !sealed {
        // A finished segment always ends with its seal: it was cut short.
        return Err(corrupt(file, pos as u64));
    }
    Ok(SegmentEnd::Clean { end: pos as u64, trusted, sealed })
}

/// Recovers the state of `dir`, repairing a torn tail.
pub(crate) fn recover(io: &dyn Io, dir: &Path) -> Result<Recovered, StoreError> {
    let started = Instant::now();
    let log_dir = dir.join(LOG_DIR);
    let ck_dir = dir.join(CHECKPOINT_DIR);
    io.create_dir_all(&log_dir).map_err(|e| io_err("create log directory", e))?;
    io.create_dir_all(&ck_dir).map_err(|e| io_err("create checkpoint directory", e))?;
    // Make the two subdirectories' entries durable (a no-op when they were).
    io.fsync_dir(dir).map_err(|e| io_err("fsync data directory", e))?;
    let listing = list(io, dir)?;
    for t in &listing.temporaries {
        let _ = io.remove(t);
    }
    let mut report = RecoveryReport::default();

    // 1. Choose the base: the newest valid checkpoint, else segment 1.
    let mut chosen: Option<(u64, Catalog, HashSet<u32>)> = None;
    let mut first_rejection: Option<(String, u64)> = None;
    for &n in listing.checkpoints.iter().rev() {
        let name = format!("{CHECKPOINT_DIR}/{}", checkpoint_name(n));
        match load_checkpoint(io, dir, n)? {
            Ok((c, files)) => {
                report.checkpoint = Some(name);
                chosen = Some((n, c, files));
                break;
            }
            Err(rej) => {
                tracing::warn!(target: "sluice_engine", "checkpoint {name} rejected at offset {}: {}", rej.offset, rej.reason);
                first_rejection.get_or_insert((name.clone(), rej.offset));
                report.rejected_checkpoints.push((name, format!("offset {}: {}", rej.offset, rej.reason)));
                let from = ck_dir.join(checkpoint_name(n));
                let to = ck_dir.join(format!("{}.rejected", checkpoint_name(n)));
                io.rename(&from, &to).map_err(|e| io_err("set a rejected checkpoint aside", e))?;
                io.fsync_dir(&ck_dir).map_err(|e| io_err("fsync checkpoint directory", e))?;
            }
        }
    }
    let mut checkpoint_files = None;
    let (base, mut catalog) = match chosen {
        Some((n, c, files)) => {
            checkpoint_files = Some((n, files));
            let path = dir.join(CHECKPOINT_DIR).join(checkpoint_name(n));
            let bytes = io.open(&path, false).and_then(|f| f.len()).unwrap_or(0);
            let messages = c.message_count();
            report.checkpoint_index = Some((bytes, messages));
            (n, c)
        }
        None => {
            if listing.segments.first().is_some_and(|&s| s != 1) {
                return Err(match first_rejection {
                    Some((file, offset)) => corrupt(&file, offset),
                    None => corrupt(&format!("{LOG_DIR}/{}", segment_name(1)), 0),
                });
            }
            (1, Catalog::default())
        }
    };

    // 2. Replay the segments from the base, which must be contiguous. A
    // fuzzy checkpoint's window segments were made durable before it: each
    // must be there.
    let segs: Vec<u64> = listing.segments.iter().copied().filter(|&s| s >= base).collect();
    if let Some(w) = &catalog.window {
        let last = w.tail_segment.saturating_sub(1);
        if w.tail_segment > base && listing.segments.binary_search(&last).is_err() {
            return Err(corrupt(&format!("{LOG_DIR}/{}", segment_name(last)), 0));
        }
    }
    for (i, &s) in segs.iter().enumerate() {
        let want = base + i as u64;
        if s != want {
            return Err(corrupt(&format!("{LOG_DIR}/{}", segment_name(want)), 0));
        }
    }
    let mut next_segment = base;
    report.clean_shutdown = true;
    // One buffer for every segment (see `load_checkpoint`).
    let mut buf = Vec::new();
    for (i, &s) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        let name = format!("{LOG_DIR}/{}", segment_name(s));
        let path = log_dir.join(segment_name(s));
        let f = io.open(&path, false).map_err(|e| io_err(&format!("open {name}"), e))?;
        let len = f.len().map_err(|e| io_err(&format!("read {name}"), e))?;
        let len = usize::try_from(len).map_err(|_| io_err(&format!("read {name}"), std::io::Error::other("file too large to read")))?;
        read_range(f.as_ref(), 0, len, &mut buf).map_err(|e| io_err(&format!("read {name}"), e))?;
        let end = scan_segment(&name, &buf, s, is_last, &mut catalog, &mut report.records_replayed)?;
        report.segments_replayed += 1;
        report.bytes_replayed += match &end {
            SegmentEnd::Clean { end, .. } => *end,
            SegmentEnd::Torn { offset, .. } => *offset,
            SegmentEnd::TornHeader => 0,
        };
        let (valid_end, trusted, sealed, torn) = match end {
            SegmentEnd::Clean { end, trusted, sealed } => (end, trusted, sealed, false),
            SegmentEnd::TornHeader => {
                report.clean_shutdown = false;
                tracing::warn!(target: "sluice_engine", "removing {name}: its header was never completed");
                drop(f);
                io.remove(&path).map_err(|e| io_err(&format!("remove {name}"), e))?;
                io.fsync_dir(&log_dir).map_err(|e| io_err("fsync log directory", e))?;
                report.torn_tail = Some(TornTail { file: name, offset: 0, bytes_dropped: buf.len() as u64, intact_frames_dropped: 0 });
                next_segment = s;
                continue;
            }
            SegmentEnd::Torn { offset, trusted, intact_after, sealed, zeros } => {
                let cut = buf.len() as u64 - offset;
                if zeros {
                    tracing::debug!(target: "sluice_engine", "{name}: cutting {cut} preallocated bytes after offset {offset}");
                    report.preallocated_bytes_cut = cut;
                } else {
                    tracing::warn!(
                        target: "sluice_engine",
                        "{name}: torn tail at offset {offset}, cutting {cut} bytes ({intact_after} intact frames after the damage)"
                    );
                    report.torn_tail = Some(TornTail { file: name.clone(), offset, bytes_dropped: cut, intact_frames_dropped: intact_after });
                }
                f.truncate(offset).map_err(|e| io_err(&format!("truncate {name}"), e))?;
                // Bytes after a seal are damage (nothing is written after one);
                // once cut, the segment still ends with its seal, and sealing it
                // again would leave a second seal that the next open refuses.
                (offset, trusted, sealed, true)
            }
        };
        if is_last && valid_end > trusted {
            // Rewrite what is not known to be durable, then fsync it: after a
            // failed fsync the kernel may hold these pages "clean" and a plain
            // fsync would not write them.
            let (lo, hi) = (trusted as usize, valid_end as usize);
            write_all_at(f.as_ref(), &buf[lo..hi], trusted).map_err(|(e, _)| io_err(&format!("rewrite tail of {name}"), e))?;
            report.tail_bytes_resynced = valid_end - trusted;
        }
        if is_last {
            report.clean_shutdown = sealed && !torn;
            f.fsync().map_err(|e| io_err(&format!("fsync {name}"), e))?;
            if !sealed {
                // Seal it (after the fsync above, so the seal never vouches
                // for bytes that are not durable): the writer continues in a
                // new segment and this one becomes a finished one.
                let mut seal = Vec::new();
                Record::Seal { offset: valid_end }.encode(&mut seal);
                write_all_at(f.as_ref(), &seal, valid_end).map_err(|(e, _)| io_err(&format!("seal {name}"), e))?;
                f.fsync().map_err(|e| io_err(&format!("fsync {name}"), e))?;
            }
        }
        next_segment = s + 1;
    }
    next_segment = next_segment.max(base);
    // New records must never land in a fuzzy checkpoint's window, where a
    // later recovery would filter them.
    if let Some(w) = catalog.window.take() {
        next_segment = next_segment.max(w.tail_segment);
    }

    // 3. Every file a live body handle points into must be there (segments
    // below the base are kept for their bodies, not replayed). A handle
    // comes from the checkpoint or from a replayed segment (whose presence
    // step 2 checked; moves and dead-lettering keep handles as they are),
    // so the checkpoint's files are the ones to look for.
    for &f in checkpoint_files.iter().flat_map(|(_, files)| files) {
        let present = if f & CHECKPOINT_FILE_BIT != 0 {
            listing.bodies.binary_search(&u64::from(f & !CHECKPOINT_FILE_BIT)).is_ok()
        } else {
            listing.segments.binary_search(&u64::from(f)).is_ok()
        };
        if !present {
            return Err(corrupt(&file_name(f), 0));
        }
    }

    report.messages = catalog.message_count();
    report.elapsed = started.elapsed();
    Ok(Recovered { catalog, report, next_segment, checkpoint_files })
}

/// Deletes checkpoints beyond the newest `CHECKPOINTS_KEPT`, segments older
/// than the oldest kept checkpoint (never one at or above `writer_floor`, the
/// lowest segment the writer may still write) and bodies files, but never a
/// segment or bodies file that `referenced` names (by `BodyRef::file`): the
/// store passes the files live handles and the kept checkpoints point into,
/// so no live message is reclaimed (R5) and each kept checkpoint still
/// opens. Checkpoints repoint the handles they moved before pruning; a
/// message moved to another queue while the checkpoint was written keeps
/// its old handle, and its file stays until a later checkpoint moves it.
pub(crate) fn prune(
    io: &dyn Io,
    dir: &Path,
    writer_floor: u64,
    live: &dyn Fn(u32) -> bool,
    checkpoint_files: &BTreeMap<u64, HashSet<u32>>,
) -> Result<(u64, u64), StoreError> {
    let listing = list(io, dir)?;
    let ck_dir = dir.join(CHECKPOINT_DIR);
    let log_dir = dir.join(LOG_DIR);
    let keep: Vec<u64> = listing.checkpoints.iter().rev().take(CHECKPOINTS_KEPT).copied().collect();
    let Some(&oldest_kept) = keep.last() else { return Ok((0, 0)) };
    // A kept checkpoint whose files are not known (not written or loaded by
    // this process) keeps every file.
    let unknown = keep.iter().any(|n| !checkpoint_files.contains_key(n));
    if unknown {
        tracing::info!(target: "sluice_engine", "keeping old segments and bodies files: a kept checkpoint's files are not known yet");
    }
    let referenced = |f: u32| unknown || live(f) || keep.iter().any(|n| checkpoint_files.get(n).is_some_and(|s| s.contains(&f)));
    // Segments go only once there are CHECKPOINTS_KEPT checkpoints, so that a
    // newest checkpoint that fails its checksum can always fall back to an
    // older one (or to the whole log) plus the segments after it.
    let oldest_kept = if keep.len() < CHECKPOINTS_KEPT { 0 } else { oldest_kept };
    let mut removed_ck = 0;
    for &n in &listing.checkpoints {
        if !keep.contains(&n) {
            io.remove(&ck_dir.join(checkpoint_name(n))).map_err(|e| io_err("remove old checkpoint", e))?;
            removed_ck += 1;
        }
    }
    for &n in &listing.bodies {
        if !referenced(checkpoint_file(n)) {
            io.remove(&ck_dir.join(bodies_name(n))).map_err(|e| io_err("remove old bodies file", e))?;
            removed_ck += 1;
        }
    }
    if removed_ck > 0 {
        io.fsync_dir(&ck_dir).map_err(|e| io_err("fsync checkpoint directory", e))?;
    }
    let floor = oldest_kept.min(writer_floor);
    let mut removed_seg = 0;
    for &s in &listing.segments {
        if s < floor {
            if referenced(segment_file(s)) {
                tracing::info!(target: "sluice_engine", "keeping {LOG_DIR}/{}: live message bodies still point into it", segment_name(s));
                continue;
            }
            io.remove(&log_dir.join(segment_name(s))).map_err(|e| io_err("remove old segment", e))?;
            removed_seg += 1;
        }
    }
    if removed_seg > 0 {
        io.fsync_dir(&log_dir).map_err(|e| io_err("fsync log directory", e))?;
    }
    Ok((removed_ck, removed_seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_files_live_handles_or_kept_checkpoints_point_into_prune_should_keep_them() {
        let fs = crate::FaultIo::new();
        let io = fs.as_io();
        let dir = std::path::PathBuf::from("/data");
        io.create_dir_all(&dir.join(LOG_DIR)).unwrap();
        io.create_dir_all(&dir.join(CHECKPOINT_DIR)).unwrap();
        for n in 1..=5 {
            io.open(&dir.join(LOG_DIR).join(segment_name(n)), true).unwrap();
        }
        for n in 2..=4 {
            io.open(&dir.join(CHECKPOINT_DIR).join(checkpoint_name(n)), true).unwrap();
            io.open(&dir.join(CHECKPOINT_DIR).join(bodies_name(n)), true).unwrap();
        }
        let listed = |io: &dyn Io| {
            let l = list(io, &dir).unwrap();
            (l.segments, l.checkpoints, l.bodies)
        };
        // Checkpoints 4 and 3 are kept. A kept checkpoint whose files are not
        // known keeps every segment and bodies file; only checkpoint 2 goes.
        let known_4 = BTreeMap::from([(4, HashSet::new())]);
        assert_eq!(prune(io.as_ref(), &dir, 10, &|_| false, &known_4).unwrap(), (1, 0));
        assert_eq!(listed(io.as_ref()), (vec![1, 2, 3, 4, 5], vec![3, 4], vec![2, 3, 4]));
        // Segment 1 is live, bodies 2 is in checkpoint 3's files, segment 2 in
        // checkpoint 4's: they stay; bodies 3 and 4 go; segments from 3 (the
        // oldest kept checkpoint) are not old enough to go.
        let known = BTreeMap::from([(3, HashSet::from([checkpoint_file(2)])), (4, HashSet::from([segment_file(2)]))]);
        let live = [segment_file(1)];
        assert_eq!(prune(io.as_ref(), &dir, 10, &|f| live.contains(&f), &known).unwrap(), (2, 0));
        assert_eq!(listed(io.as_ref()), (vec![1, 2, 3, 4, 5], vec![3, 4], vec![2]));
        assert_eq!(prune(io.as_ref(), &dir, 10, &|_| false, &BTreeMap::from([(3, HashSet::new()), (4, HashSet::new())])).unwrap(), (1, 2));
        assert_eq!(listed(io.as_ref()), (vec![3, 4, 5], vec![3, 4], vec![]));
    }
    use crate::{FaultIo, LogOptions, LogStore};
    use sluice_store::{NewMessage, QueueConfig, Store};

    /// Found by the `engine_recovery` fuzz target (fuzz/corpus/engine_recovery/
    /// regress-bytes-after-seal): recovery cut bytes after the last segment's
    /// seal, sealed the segment a second time, and the next open refused it.
    #[tokio::test]
    async fn given_bytes_after_the_seal_of_the_last_segment_recovery_should_cut_them_and_open_again() {
        let fs = FaultIo::new();
        let dir = std::path::PathBuf::from("/data");
        let opts = || LogOptions { checkpoint_every_bytes: None, ..LogOptions::new(fs.as_io()) };
        let store = LogStore::open(&dir, opts()).unwrap();
        let new = sluice_store::suite::new_queue("q", QueueConfig::default());
        let id = match store.create_queue(new, 1).await.unwrap() {
            sluice_store::CreateOutcome::Created(i) => i.id,
            other => panic!("{other:?}"),
        };
        let m = NewMessage { message_id: 7, payload: bytes::Bytes::from_static(b"body"), delay_secs: 0, group_id: None, dedup_id: None };
        store.send(id, vec![m], 1).await.unwrap();
        store.close().await.unwrap();
        let dump = store.dump(2);
        drop(store);
        let last = fs.files().into_iter().map(|(p, _)| p).filter(|p| p.extension().is_some_and(|e| e == "seg")).max().unwrap();
        let mut bytes = fs.read_file(&last).unwrap();
        let sealed_len = bytes.len() as u64;
        bytes.extend_from_slice(&[0xAB; 100]);
        fs.write_file(&last, &bytes);

        let store = LogStore::open(&dir, opts()).unwrap();
        let torn = store.recovery_report().torn_tail.clone().expect("the bytes after the seal are cut");
        assert_eq!((torn.offset, torn.bytes_dropped), (sealed_len, 100));
        assert!(!store.recovery_report().clean_shutdown);
        assert_eq!(store.dump(2), dump);
        store.close().await.unwrap();
        drop(store);
        let store = LogStore::open(&dir, opts()).unwrap_or_else(|e| panic!("second open after the cut: {e}"));
        assert_eq!(store.recovery_report().torn_tail, None);
        assert_eq!(store.dump(2), dump);
    }

    fn messages_of(c: &Catalog) -> Vec<String> {
        let mut ids: Vec<_> = c.slots.keys().copied().collect();
        ids.sort_unstable();
        ids.iter().flat_map(|id| c.slots[id].core.lock().q.messages().into_iter().map(|m| format!("{m:?}")).collect::<Vec<_>>()).collect()
    }

    #[tokio::test]
    async fn given_small_read_windows_checkpoint_should_load_exactly_as_when_read_whole() {
        let fs = FaultIo::new();
        let dir = std::path::PathBuf::from("/data");
        let store = LogStore::open(&dir, LogOptions { checkpoint_every_bytes: None, ..LogOptions::new(fs.as_io()) }).unwrap();
        let new = sluice_store::suite::new_queue("q", QueueConfig::default());
        let id = match store.create_queue(new, 1).await.unwrap() {
            sluice_store::CreateOutcome::Created(i) => i.id,
            other => panic!("{other:?}"),
        };
        for i in 0..50u128 {
            let payload = bytes::Bytes::from(vec![b'a' + (i % 26) as u8; 100 + i as usize * 37]);
            store.send(id, vec![NewMessage { message_id: i, payload, delay_secs: 0, group_id: None, dedup_id: None }], 1).await.unwrap();
        }
        let ck = store.checkpoint().await.unwrap();
        store.close().await.unwrap();
        let whole = crate::io::read_all(fs.as_io().open(&dir.join(&ck.file), false).unwrap().as_ref()).unwrap();
        let expected = messages_of(&parse_checkpoint(&whole, ck.start_segment).ok().unwrap());
        assert_eq!(expected.len(), 50);
        // Windows smaller than one frame grow; others cut frames anywhere.
        for window in [64, 1000, 4096, 1 << 20] {
            let (got, files) = load_checkpoint_in_windows(fs.as_io().as_ref(), &dir, ck.start_segment, window).unwrap().ok().unwrap();
            assert_eq!(messages_of(&got), expected, "window {window}");
            // The files gathered while parsing are those the handles name.
            assert_eq!(files, got.referenced_files(), "window {window}");
            assert!(!files.is_empty());
        }
    }
}
