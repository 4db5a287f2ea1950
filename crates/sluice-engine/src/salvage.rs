//! Salvage: copy every intact record of a damaged data directory into a fresh
//! one, so that an operator can get back everything that still checksums
//! after `open` refused with `Corrupt { file, offset }`.
//!
//! The newest checkpoint that validates is copied as is, with the files its
//! body handles point into, and its segments are read from there on; without one, every segment is read.
//! A fuzzy checkpoint's window segments (see `state::Window`) are copied
//! byte for byte, as its ranges name places in them; one with damage there
//! cannot anchor the salvage and an older checkpoint (or the whole log) is
//! used instead. Within a segment,
//! each frame is checked; at damage the reader resynchronises on the next
//! offset where a whole frame checksums (magic, length within the cap and the
//! file, CRC), records the damaged range, and goes on. Kept records are
//! written to new segments (renumbered contiguously), fsynced, each closed by
//! a `Seal`. The result is then opened read-only as a dry run
//! (recovery into memory) to prove it replays; records that replay
//! inconsistently (which can only happen when the damage removed their
//! predecessors, e.g. a queue deletion) are dropped and counted.
//!
//! The source directory is never modified.

use crate::bodies::file_name;
use crate::codec::{decode_file_header, decode_frame, encode_file_header, find_next_frame, FILE_HEADER_BYTES, SEGMENT_MAGIC};
use crate::io::{read_all, write_all_at, Io};
use crate::limits::SEGMENT_BYTES_DEFAULT;
use crate::pipe::segment_name;
use crate::record::{tag, Record};
use crate::recovery::{checkpoint_name, list, parse_checkpoint, CHECKPOINT_DIR, LOG_DIR};
use crate::state::Catalog;
use sluice_store::StoreError;
use std::path::Path;

/// A byte range that did not hold valid records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    /// File, relative to the data directory.
    pub file: String,
    /// First damaged byte.
    pub start: u64,
    /// First byte after the damage (the next intact frame or the end of file).
    pub end: u64,
}

/// What `salvage` recovered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// The checkpoint copied, if one validated.
    pub checkpoint: Option<String>,
    /// Files the checkpoint's handles point into, copied as they are.
    pub files_copied: Vec<String>,
    /// Checkpoints that did not validate.
    pub rejected_checkpoints: Vec<String>,
    /// Segments read.
    pub segments_read: u64,
    /// Segment numbers expected but missing.
    pub missing_segments: Vec<String>,
    /// Records copied.
    pub records_kept: u64,
    /// Records that checksummed but could not be decoded or replayed.
    pub records_dropped: u64,
    /// Damaged ranges skipped.
    pub damaged: Vec<DamagedRange>,
    /// Bytes in the damaged ranges.
    pub damaged_bytes: u64,
    /// Segments written to the output.
    pub segments_written: u64,
}

fn io_err(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("salvage: {what}: {e}"))
}

struct Out<'a> {
    io: &'a dyn Io,
    dir: std::path::PathBuf,
    no: u64,
    file: Option<(Box<dyn crate::io::IoFile>, u64)>,
    written: u64,
}

impl Out<'_> {
    fn put(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        if let Some((_, end)) = &self.file {
            if *end + frame.len() as u64 > SEGMENT_BYTES_DEFAULT {
                self.finish()?;
                self.no += 1;
            }
        }
        if self.file.is_none() {
            let path = self.dir.join(segment_name(self.no));
            let f = self.io.open(&path, true).map_err(|e| io_err("create segment", e))?;
            f.truncate(0).map_err(|e| io_err("truncate segment", e))?;
            write_all_at(f.as_ref(), &encode_file_header(SEGMENT_MAGIC, self.no), 0).map_err(|(e, _)| io_err("write", e))?;
            self.file = Some((f, FILE_HEADER_BYTES as u64));
            self.written += 1;
        }
        let (f, end) = self.file.as_mut().expect("segment open");
        write_all_at(f.as_ref(), frame, *end).map_err(|(e, _)| io_err("write", e))?;
        *end += frame.len() as u64;
        Ok(())
    }

    /// Writes segment `no` as the bytes `buf` of the source (plus a seal
    /// when it has none); the next segment written is `no + 1`.
    fn verbatim(&mut self, no: u64, buf: &[u8], sealed: bool) -> Result<(), StoreError> {
        self.finish()?;
        let f = self.io.open(&self.dir.join(segment_name(no)), true).map_err(|e| io_err("create segment", e))?;
        f.truncate(0).map_err(|e| io_err("truncate segment", e))?;
        write_all_at(f.as_ref(), buf, 0).map_err(|(e, _)| io_err("write", e))?;
        if !sealed {
            let mut m = Vec::new();
            Record::Seal { offset: buf.len() as u64 }.encode(&mut m);
            write_all_at(f.as_ref(), &m, buf.len() as u64).map_err(|(e, _)| io_err("write", e))?;
        }
        f.fsync().map_err(|e| io_err("fsync", e))?;
        self.io.fsync_dir(&self.dir).map_err(|e| io_err("fsync directory", e))?;
        self.written += 1;
        self.no = no + 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        if let Some((f, end)) = self.file.take() {
            let mut m = Vec::new();
            Record::Seal { offset: end }.encode(&mut m);
            write_all_at(f.as_ref(), &m, end).map_err(|(e, _)| io_err("write", e))?;
            f.fsync().map_err(|e| io_err("fsync", e))?;
            self.io.fsync_dir(&self.dir).map_err(|e| io_err("fsync directory", e))?;
        }
        Ok(())
    }
}

/// A record and its offset in its segment.
type Located = (u64, Record);

/// Segment `no` of `dir` with its records and their offsets, if every byte
/// after its header is a whole record that decodes.
fn window_segment(io: &dyn Io, dir: &Path, no: u64) -> Option<(Vec<u8>, Vec<Located>)> {
    let f = io.open(&dir.join(LOG_DIR).join(segment_name(no)), false).ok()?;
    let buf = read_all(f.as_ref()).ok()?;
    match decode_file_header(SEGMENT_MAGIC, &buf) {
        Ok(m) if m == no => {}
        _ => return None,
    }
    let mut pos = FILE_HEADER_BYTES;
    let mut recs = Vec::new();
    while pos < buf.len() {
        let fr = decode_frame(&buf[pos..]).ok()?;
        recs.push((pos as u64, Record::decode(fr.kind, fr.payload).ok()?));
        pos += fr.size;
    }
    Some((buf, recs))
}

/// Copies every intact record of the data directory `dir` into the new,
/// empty data directory `out`. `dir` is only read.
pub fn salvage(io: &dyn Io, dir: &Path, out: &Path) -> Result<SalvageReport, StoreError> {
    let mut report = SalvageReport::default();
    let listing = list(io, dir)?;
    let out_log = out.join(LOG_DIR);
    let out_ck = out.join(CHECKPOINT_DIR);
    io.create_dir_all(&out_log).map_err(|e| io_err("create output", e))?;
    io.create_dir_all(&out_ck).map_err(|e| io_err("create output", e))?;
    let taken = !io.list(&out_log).map_err(|e| io_err("list output", e))?.is_empty()
        || !io.list(&out_ck).map_err(|e| io_err("list output", e))?.is_empty();
    if taken {
        return Err(StoreError::Internal(format!("salvage: output directory {} is not empty", out.display())));
    }

    // The base: the newest checkpoint that validates.
    let mut base = None;
    let mut catalog = Catalog::default();
    for &n in listing.checkpoints.iter().rev() {
        let name = checkpoint_name(n);
        let f = io.open(&dir.join(CHECKPOINT_DIR).join(&name), false).map_err(|e| io_err("open checkpoint", e))?;
        let buf = read_all(f.as_ref()).map_err(|e| io_err("read checkpoint", e))?;
        let parsed = parse_checkpoint(&buf, n).ok().filter(|c| match &c.window {
            // A fuzzy checkpoint filters the records of its window by their
            // places: it can anchor a salvage only if those segments are
            // whole, as they are copied byte for byte.
            Some(w) => (n..w.tail_segment).all(|seg| window_segment(io, dir, seg).is_some()),
            None => true,
        });
        match parsed {
            Some(c) => {
                let g = io.open(&out_ck.join(&name), true).map_err(|e| io_err("create checkpoint copy", e))?;
                write_all_at(g.as_ref(), &buf, 0).map_err(|(e, _)| io_err("write checkpoint copy", e))?;
                g.fsync().map_err(|e| io_err("fsync checkpoint copy", e))?;
                io.fsync_dir(&out_ck).map_err(|e| io_err("fsync output", e))?;
                report.checkpoint = Some(format!("{CHECKPOINT_DIR}/{name}"));
                // The files its handles point into (segments it covers,
                // bodies files) are copied as they are: each body is checked
                // against its handle's CRC whenever it is read.
                for f in c.referenced_files() {
                    let rel = file_name(f);
                    let from = io.open(&dir.join(&rel), false).map_err(|e| io_err(&format!("open {rel}"), e))?;
                    let bytes = read_all(from.as_ref()).map_err(|e| io_err(&format!("read {rel}"), e))?;
                    let to = io.open(&out.join(&rel), true).map_err(|e| io_err(&format!("create {rel}"), e))?;
                    write_all_at(to.as_ref(), &bytes, 0).map_err(|(e, _)| io_err(&format!("write {rel}"), e))?;
                    to.fsync().map_err(|e| io_err(&format!("fsync {rel}"), e))?;
                    report.files_copied.push(rel);
                }
                io.fsync_dir(&out_ck).map_err(|e| io_err("fsync output", e))?;
                io.fsync_dir(&out_log).map_err(|e| io_err("fsync output", e))?;
                catalog = c;
                base = Some(n);
                break;
            }
            None => report.rejected_checkpoints.push(format!("{CHECKPOINT_DIR}/{name}")),
        }
    }
    let first = base.unwrap_or(1);
    let segs: Vec<u64> = listing.segments.iter().copied().filter(|&s| s >= first).collect();
    let mut out_seg = Out { io, dir: out_log.clone(), no: first, file: None, written: 0 };
    let mut expect = first;
    for &s in &segs {
        while expect < s {
            report.missing_segments.push(format!("{LOG_DIR}/{}", segment_name(expect)));
            expect += 1;
        }
        expect = s + 1;
        let name = format!("{LOG_DIR}/{}", segment_name(s));
        if catalog.window.as_ref().is_some_and(|w| s < w.tail_segment) {
            // A window segment (checked whole above): copied as it is, so
            // that every record keeps the place the checkpoint compares.
            let (buf, frames) = window_segment(io, dir, s).ok_or_else(|| io_err(&format!("read {name}"), std::io::Error::other("changed while salvaging")))?;
            report.segments_read += 1;
            let mut sealed = false;
            for (pos, rec) in frames {
                sealed = matches!(rec, Record::Seal { .. });
                if matches!(rec, Record::SyncedThrough { .. } | Record::Seal { .. }) {
                    continue;
                }
                match catalog.apply_at(rec, (s, pos)) {
                    Ok(()) => report.records_kept += 1,
                    Err(_) => report.records_dropped += 1,
                }
            }
            out_seg.verbatim(s, &buf, sealed)?;
            continue;
        }
        let f = io.open(&dir.join(LOG_DIR).join(segment_name(s)), false).map_err(|e| io_err("open segment", e))?;
        let buf = read_all(f.as_ref()).map_err(|e| io_err(&format!("read {name}"), e))?;
        report.segments_read += 1;
        let mut pos = match decode_file_header(SEGMENT_MAGIC, &buf) {
            Ok(_) => FILE_HEADER_BYTES,
            Err(_) => {
                let next = find_next_frame(&buf, 0).unwrap_or(buf.len());
                if !buf.is_empty() {
                    report.damaged.push(DamagedRange { file: name.clone(), start: 0, end: next as u64 });
                }
                next
            }
        };
        while pos < buf.len() {
            match decode_frame(&buf[pos..]) {
                Ok(fr) => {
                    let raw = &buf[pos..pos + fr.size];
                    pos += fr.size;
                    let rec = match Record::decode(fr.kind, fr.payload) {
                        Ok(r) => r,
                        Err(_) => {
                            report.records_dropped += 1;
                            continue;
                        }
                    };
                    if matches!(rec, Record::SyncedThrough { .. } | Record::Seal { .. }) || (tag::CHECKPOINT_BEGIN..=tag::CHECKPOINT_LAST).contains(&rec.tag()) {
                        continue;
                    }
                    if catalog.apply_at(rec, (s, (pos - fr.size) as u64)).is_err() {
                        report.records_dropped += 1;
                        continue;
                    }
                    out_seg.put(raw)?;
                    report.records_kept += 1;
                }
                Err(_) if crate::prealloc::all_zero(&buf[pos..]) => {
                    // A preallocated segment's unused end: no record was there.
                    break;
                }
                Err(_) => {
                    let next = find_next_frame(&buf, pos + 1).unwrap_or(buf.len());
                    report.damaged.push(DamagedRange { file: name.clone(), start: pos as u64, end: next as u64 });
                    pos = next;
                }
            }
        }
    }
    out_seg.finish()?;
    report.segments_written = out_seg.written;
    report.damaged_bytes = report.damaged.iter().map(|d| d.end - d.start).sum();
    // Dry run: the output must open.
    crate::recovery::recover(io, out)?;
    Ok(report)
}
