//! `FaultIo`: an in-memory file system for crash and fault tests.
//!
//! It keeps, for every file, the bytes a reader sees now (the "page cache") and
//! the bytes that would survive a power cut (what the last successful fsync
//! made durable), plus the list of writes made since. That is enough to model
//! what RELIABILITY R3 and R7–R13 ask for:
//!
//! * `kill_process`: operations fail until `reboot`, nothing is lost.
//! * `power_cut`: every un-fsynced write is dropped (`CutMode::DropUnsynced`),
//!   or a random prefix of them survives with the last one torn at a random
//!   byte (`KeepPrefix`), or each dirty 4 KiB page independently survives or not
//!   (`DropPages`); un-fsynced directory entries (creations, renames, removals)
//!   may be dropped too. After a cut every operation fails with EIO until
//!   `reboot`, so a store still running on the old "machine" cannot touch the
//!   new one.
//! * `fail_nth_fsync`: that fsync returns EIO and, like Linux, marks the dirty
//!   pages clean without making them durable: a later fsync "succeeds" but the
//!   data is still lost at the next power cut (fsyncgate).
//! * `set_capacity`: writes past the capacity are short, then fail with ENOSPC.
//! * `set_short_writes`, `fail_nth_write`, `fail_reads`: short writes, write
//!   EIO, read EIO on one file.
//! * `flip_bit`, `truncate_file`, `read_file`: offline damage and inspection.
//! * `set_direct`: offers direct writes (`Io::open_direct`) and refuses
//!   misaligned ones, as `O_DIRECT` does; `direct_write_counts` tells;
//!   `refuse_direct_writes` refuses them all.
//! * `pause_fsyncs`: fsyncs block until resumed, so group-commit tests can hold
//!   a commit open deterministically instead of sleeping.
//!
//! Directories are modelled only as far as the engine needs: they exist once
//! created (their creation is treated as durable), and their entries become
//! durable on `fsync_dir`.

use crate::io::{Io, IoFile, DIRECT_BLOCK};
use parking_lot::{Condvar, Mutex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PAGE: u64 = 4096;

/// What a power cut does to data written but not yet fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Every un-fsynced write is lost.
    DropUnsynced,
    /// A random prefix of each file's un-fsynced writes survives; the last
    /// surviving write is torn at a random byte.
    KeepPrefix,
    /// Every un-fsynced write lands, then each dirty 4 KiB page independently
    /// reverts to its last durable content (zeros past the durable end).
    DropPages,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    Truncate(u64),
}

#[derive(Debug, Clone, Default)]
struct FileState {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
    /// Operations ever taken off the front of `pending` (made durable or
    /// dropped): with `pending.len()`, where an fsync's coverage ends.
    taken: u64,
}

impl FileState {
    /// Empties `pending`, counting what it held as taken.
    fn drop_pending(&mut self) {
        self.taken += self.pending.len() as u64;
        self.pending.clear();
    }
}

fn apply(buf: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, bytes } => {
            let off = *offset as usize;
            let end = off + bytes.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[off..end].copy_from_slice(bytes);
        }
        Pending::Truncate(len) => buf.resize(*len as usize, 0),
    }
}

#[derive(Debug, Clone, Copy)]
struct CrashPlan {
    at_op: u64,
    mode: CutMode,
    drop_dirents: bool,
    seed: u64,
}

#[derive(Debug, Clone, Default)]
struct FsState {
    dirs: BTreeSet<PathBuf>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    files: HashMap<u64, FileState>,
    next_inode: u64,
    dead: bool,
    ops: u64,
    fsyncs: u64,
    writes: u64,
    fail_fsync_at: Option<u64>,
    fail_write_at: Option<(u64, i32)>,
    capacity: Option<u64>,
    short_write_max: Option<usize>,
    read_fail: BTreeSet<PathBuf>,
    crash: Option<CrashPlan>,
    fsync_paused: bool,
    fsyncs_blocked: usize,
    write_paused: bool,
    /// Writes from this count on block too (`pause_writes_after`).
    write_pause_at: Option<u64>,
    writes_blocked: usize,
    cuts: u64,
    direct: bool,
    direct_refused: bool,
    direct_writes: u64,
    misaligned_direct_writes: u64,
    refused_direct_writes: u64,
    /// Direct writes by the file's name at the time (`.tmp` names included).
    direct_writes_by_path: BTreeMap<PathBuf, u64>,
}

struct Shared {
    st: Mutex<FsState>,
    cv: Condvar,
}

/// The fault-injecting in-memory file system. Clones share the same state.
#[derive(Clone)]
pub struct FaultIo {
    shared: Arc<Shared>,
}

impl Default for FaultIo {
    fn default() -> Self {
        Self::new()
    }
}

/// EIO, the error of a dead or failing device. `what` is for the reader of
/// the test code only: the engine must not depend on the message.
fn eio(what: &str) -> io::Error {
    let _ = what;
    io::Error::from_raw_os_error(libc::EIO)
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl FsState {
    fn used(&self) -> u64 {
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        live.iter().filter_map(|i| self.files.get(i)).map(|f| f.data.len() as u64).sum()
    }

    /// Counts a mutating operation and performs the planned power cut when due.
    fn tick(&mut self) -> io::Result<()> {
        if self.dead {
            return Err(eio("powered off"));
        }
        self.ops += 1;
        if let Some(plan) = self.crash {
            if self.ops >= plan.at_op {
                self.crash = None;
                self.cut(plan.mode, plan.drop_dirents, plan.seed);
                return Err(eio("power cut"));
            }
        }
        Ok(())
    }

    fn cut(&mut self, mode: CutMode, drop_dirents: bool, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        if drop_dirents {
            self.names = self.durable_names.clone();
        } else {
            self.durable_names = self.names.clone();
        }
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        self.files.retain(|i, _| live.contains(i));
        let mut inodes: Vec<u64> = self.files.keys().copied().collect();
        inodes.sort_unstable();
        for i in inodes {
            let f = self.files.get_mut(&i).expect("inode listed");
            let survived = match mode {
                CutMode::DropUnsynced => f.durable.clone(),
                CutMode::KeepPrefix => {
                    let mut d = f.durable.clone();
                    let k = rng.random_range(0..=f.pending.len());
                    for (j, op) in f.pending.iter().enumerate().take(k) {
                        match op {
                            Pending::Write { offset, bytes } if j + 1 == k && !bytes.is_empty() => {
                                let keep = rng.random_range(1..=bytes.len());
                                apply(&mut d, &Pending::Write { offset: *offset, bytes: bytes[..keep].to_vec() });
                            }
                            op => apply(&mut d, op),
                        }
                    }
                    d
                }
                CutMode::DropPages => {
                    let mut d = f.data.clone();
                    let mut dirty = BTreeSet::new();
                    for op in &f.pending {
                        if let Pending::Write { offset, bytes } = op {
                            if !bytes.is_empty() {
                                let first = offset / PAGE;
                                let last = (offset + bytes.len() as u64 - 1) / PAGE;
                                dirty.extend(first..=last);
                            }
                        }
                    }
                    for p in dirty {
                        if rng.random_bool(0.5) {
                            let start = (p * PAGE) as usize;
                            let end = ((p + 1) * PAGE).min(d.len() as u64) as usize;
                            for (k, b) in d.iter_mut().enumerate().take(end).skip(start) {
                                *b = f.durable.get(k).copied().unwrap_or(0);
                            }
                        }
                    }
                    d
                }
            };
            f.data = survived.clone();
            f.durable = survived;
            f.drop_pending();
        }
        self.dead = true;
        self.cuts += 1;
    }
}

impl FaultIo {
    /// An empty file system with no faults armed.
    pub fn new() -> Self {
        Self { shared: Arc::new(Shared { st: Mutex::new(FsState { next_inode: 1, ..Default::default() }), cv: Condvar::new() }) }
    }

    /// This file system as an `Arc<dyn Io>` for `LogOptions`.
    pub fn as_io(&self) -> Arc<dyn Io> {
        Arc::new(self.clone())
    }

    /// A deep copy of the current state (files, durable bytes, entries) with no
    /// faults armed and power on; counters carry over.
    pub fn fork(&self) -> FaultIo {
        let st = self.shared.st.lock();
        let mut copy = st.clone();
        copy.dead = false;
        copy.fail_fsync_at = None;
        copy.fail_write_at = None;
        copy.capacity = None;
        copy.short_write_max = None;
        copy.read_fail.clear();
        copy.crash = None;
        copy.fsync_paused = false;
        copy.fsyncs_blocked = 0;
        copy.write_paused = false;
        copy.write_pause_at = None;
        copy.writes_blocked = 0;
        FaultIo { shared: Arc::new(Shared { st: Mutex::new(copy), cv: Condvar::new() }) }
    }

    /// Cuts the power now: un-fsynced data and (when `drop_dirents`) un-fsynced
    /// directory entries are lost as `mode` says; every operation fails with
    /// EIO until `reboot`.
    pub fn power_cut(&self, mode: CutMode, drop_dirents: bool, seed: u64) {
        let mut st = self.shared.st.lock();
        st.crash = None;
        st.cut(mode, drop_dirents, seed);
        st.fsync_paused = false;
        st.write_paused = false;
        st.write_pause_at = None;
        self.shared.cv.notify_all();
    }

    /// Cuts the power when the `n`-th mutating operation from now (write,
    /// fsync, truncate, create, rename, remove, directory fsync; 1 = the next)
    /// is attempted; that operation fails with EIO.
    pub fn crash_at_op(&self, n: u64, mode: CutMode, drop_dirents: bool, seed: u64) {
        let mut st = self.shared.st.lock();
        let at_op = st.ops + n.max(1);
        st.crash = Some(CrashPlan { at_op, mode, drop_dirents, seed });
    }

    /// Kills the process (kill -9): every operation fails with EIO until
    /// `reboot`, but nothing is lost — the page cache survives a process.
    pub fn kill_process(&self) {
        let mut st = self.shared.st.lock();
        st.dead = true;
        st.fsync_paused = false;
        st.write_paused = false;
        st.write_pause_at = None;
        self.shared.cv.notify_all();
    }

    /// True once a power cut happened and before `reboot`.
    pub fn is_powered_off(&self) -> bool {
        self.shared.st.lock().dead
    }

    /// Powers the machine back on: operations work again.
    pub fn reboot(&self) {
        let mut st = self.shared.st.lock();
        st.dead = false;
        st.crash = None;
    }

    /// Makes the `n`-th fsync from now (1 = the next) fail with EIO, dropping
    /// the dirty pages' durability as Linux does.
    pub fn fail_nth_fsync(&self, n: u64) {
        let mut st = self.shared.st.lock();
        st.fail_fsync_at = Some(st.fsyncs + n.max(1));
    }

    /// Makes the `n`-th write from now fail with `errno` (e.g. `libc::EIO`).
    pub fn fail_nth_write(&self, n: u64, errno: i32) {
        let mut st = self.shared.st.lock();
        st.fail_write_at = Some((st.writes + n.max(1), errno));
    }

    /// Limits the total size of all files; `None` removes the limit.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.shared.st.lock().capacity = bytes;
    }

    /// Bytes used by all linked files.
    pub fn used_bytes(&self) -> u64 {
        self.shared.st.lock().used()
    }

    /// Makes every write write at most `max` bytes (a short write); `None` off.
    pub fn set_short_writes(&self, max: Option<usize>) {
        self.shared.st.lock().short_write_max = max;
    }

    /// Makes reads of `path` fail with EIO (`false` heals it).
    pub fn fail_reads(&self, path: &Path, fail: bool) {
        let mut st = self.shared.st.lock();
        if fail {
            st.read_fail.insert(path.to_path_buf());
        } else {
            st.read_fail.remove(path);
        }
    }

    /// Holds every fsync (they block) until called again with `false`.
    pub fn pause_fsyncs(&self, paused: bool) {
        self.shared.st.lock().fsync_paused = paused;
        self.shared.cv.notify_all();
    }

    /// Holds every file write (they block, not yet counted or applied)
    /// until called again with `false`.
    pub fn pause_writes(&self, paused: bool) {
        let mut st = self.shared.st.lock();
        st.write_paused = paused;
        st.write_pause_at = None;
        self.shared.cv.notify_all();
    }

    /// Lets the next `n` file writes through, then holds every write until
    /// `pause_writes(false)`.
    pub fn pause_writes_after(&self, n: u64) {
        let mut st = self.shared.st.lock();
        st.write_paused = false;
        st.write_pause_at = Some(st.writes + n);
        self.shared.cv.notify_all();
    }

    /// How many writes are blocked by `pause_writes` right now.
    pub fn writes_blocked(&self) -> usize {
        self.shared.st.lock().writes_blocked
    }

    /// How many fsyncs are blocked by `pause_fsyncs` right now.
    pub fn fsyncs_blocked(&self) -> usize {
        self.shared.st.lock().fsyncs_blocked
    }

    /// Successful and failed file fsyncs so far.
    pub fn fsync_count(&self) -> u64 {
        self.shared.st.lock().fsyncs
    }

    /// Write calls so far.
    pub fn write_count(&self) -> u64 {
        self.shared.st.lock().writes
    }

    /// Power cuts so far.
    pub fn cut_count(&self) -> u64 {
        self.shared.st.lock().cuts
    }

    /// The current bytes of a file.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.shared.st.lock();
        st.names.get(path).and_then(|i| st.files.get(i)).map(|f| f.data.clone())
    }

    /// Replaces a file's bytes, durably (offline damage or repair).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.shared.st.lock();
        let inode = match st.names.get(path) {
            Some(i) => *i,
            None => {
                let i = st.next_inode;
                st.next_inode += 1;
                st.names.insert(path.to_path_buf(), i);
                st.durable_names.insert(path.to_path_buf(), i);
                i
            }
        };
        st.files.insert(inode, FileState { data: bytes.to_vec(), durable: bytes.to_vec(), pending: Vec::new(), taken: 0 });
    }

    /// Flips one bit of a file, durably. Returns false when out of range.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> bool {
        let mut st = self.shared.st.lock();
        let Some(i) = st.names.get(path).copied() else { return false };
        let Some(f) = st.files.get_mut(&i) else { return false };
        let off = offset as usize;
        if off >= f.data.len() {
            return false;
        }
        f.data[off] ^= 1 << (bit % 8);
        if off < f.durable.len() {
            f.durable[off] ^= 1 << (bit % 8);
        }
        true
    }

    /// Truncates a file, durably.
    pub fn truncate_file(&self, path: &Path, len: u64) {
        let mut st = self.shared.st.lock();
        if let Some(i) = st.names.get(path).copied() {
            if let Some(f) = st.files.get_mut(&i) {
                f.data.truncate(len as usize);
                f.durable.truncate(len as usize);
                f.drop_pending();
            }
        }
    }

    /// Every linked file with its current length.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        let st = self.shared.st.lock();
        st.names.iter().map(|(p, i)| (p.clone(), st.files.get(i).map_or(0, |f| f.data.len() as u64))).collect()
    }

    fn file(&self, inode: u64) -> FaultFile {
        FaultFile { shared: self.shared.clone(), inode, direct: false }
    }

    /// Offers direct writes (`Io::open_direct`), as a file system with
    /// `O_DIRECT` does: a write through such a handle must be aligned to
    /// `DIRECT_BLOCK` in offset, length and memory, or it fails with EINVAL
    /// (and is counted); short writes are whole blocks. Otherwise it behaves
    /// as any write here: durable only after an fsync, torn by a power cut.
    pub fn set_direct(&self, on: bool) {
        self.shared.st.lock().direct = on;
    }

    /// (direct writes made, direct writes refused as misaligned).
    pub fn direct_write_counts(&self) -> (u64, u64) {
        let st = self.shared.st.lock();
        (st.direct_writes, st.misaligned_direct_writes)
    }

    /// Direct writes made to files whose name (when written) lies under
    /// `dir`.
    pub fn direct_writes_under(&self, dir: &Path) -> u64 {
        let st = self.shared.st.lock();
        st.direct_writes_by_path.iter().filter(|(p, _)| p.starts_with(dir)).map(|(_, n)| n).sum()
    }

    /// Direct handles still open, but every write through them fails with
    /// EINVAL, as on a device whose block is larger than the writer's
    /// alignment. Returns how many were refused so far.
    pub fn refuse_direct_writes(&self, on: bool) -> u64 {
        let mut st = self.shared.st.lock();
        st.direct_refused = on;
        st.refused_direct_writes
    }
}

struct FaultFile {
    shared: Arc<Shared>,
    inode: u64,
    direct: bool,
}

impl FaultFile {
    fn path_of(st: &FsState, inode: u64) -> Option<PathBuf> {
        st.names.iter().find(|(_, i)| **i == inode).map(|(p, _)| p.clone())
    }
}

impl IoFile for FaultFile {
    fn len(&self) -> io::Result<u64> {
        let st = self.shared.st.lock();
        if st.dead {
            return Err(eio("powered off"));
        }
        Ok(st.files.get(&self.inode).map_or(0, |f| f.data.len() as u64))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let st = self.shared.st.lock();
        if st.dead {
            return Err(eio("powered off"));
        }
        if !st.read_fail.is_empty() {
            if let Some(p) = Self::path_of(&st, self.inode) {
                if st.read_fail.contains(&p) {
                    return Err(eio("read"));
                }
            }
        }
        let Some(f) = st.files.get(&self.inode) else { return Ok(0) };
        let off = offset as usize;
        if off >= f.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(f.data.len() - off);
        buf[..n].copy_from_slice(&f.data[off..off + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut st = self.shared.st.lock();
        st.tick()?;
        while (st.write_paused || st.write_pause_at.is_some_and(|at| st.writes >= at)) && !st.dead {
            st.writes_blocked += 1;
            self.shared.cv.wait(&mut st);
            st.writes_blocked -= 1;
        }
        if st.dead {
            return Err(eio("powered off"));
        }
        st.writes += 1;
        if let Some((at, errno)) = st.fail_write_at {
            if st.writes >= at {
                st.fail_write_at = None;
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        let block = DIRECT_BLOCK;
        if self.direct && st.direct_refused {
            st.refused_direct_writes += 1;
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if self.direct {
            if !offset.is_multiple_of(block as u64) || !buf.len().is_multiple_of(block) || !(buf.as_ptr() as usize).is_multiple_of(block) {
                st.misaligned_direct_writes += 1;
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            st.direct_writes += 1;
            if let Some(p) = Self::path_of(&st, self.inode) {
                *st.direct_writes_by_path.entry(p).or_default() += 1;
            }
        }
        let mut n = buf.len();
        if let Some(max) = st.short_write_max {
            n = n.min(if self.direct { max.max(block) } else { max.max(1) });
        }
        if let Some(cap) = st.capacity {
            let used = st.used();
            let len = st.files.get(&self.inode).map_or(0, |f| f.data.len() as u64);
            let left = cap.saturating_sub(used);
            // Largest n' with max(len, offset + n') - len <= left.
            let fit = (len + left).saturating_sub(offset);
            n = n.min(fit as usize);
        }
        if self.direct {
            n -= n % block;
        }
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let f = st.files.entry(self.inode).or_default();
        let op = Pending::Write { offset, bytes: buf[..n].to_vec() };
        apply(&mut f.data, &op);
        f.pending.push(op);
        Ok(n)
    }

    /// Makes durable what was written to the file before the call, as a
    /// device's cache flush does: writes that land while it is held
    /// (`pause_fsyncs`) stay pending, whoever wrote them.
    fn fsync(&self) -> io::Result<()> {
        let mut st = self.shared.st.lock();
        st.tick()?;
        let covers = {
            let f = st.files.entry(self.inode).or_default();
            f.taken + f.pending.len() as u64
        };
        while st.fsync_paused && !st.dead {
            st.fsyncs_blocked += 1;
            self.shared.cv.wait(&mut st);
            st.fsyncs_blocked -= 1;
        }
        if st.dead {
            return Err(eio("powered off"));
        }
        st.fsyncs += 1;
        let fail = st.fail_fsync_at.is_some_and(|at| st.fsyncs >= at);
        if fail {
            st.fail_fsync_at = None;
        }
        let f = st.files.entry(self.inode).or_default();
        if fail {
            // Linux marks the pages clean after a failed write-back: the data
            // stays readable but will never be made durable by a later fsync.
            f.drop_pending();
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let k = (covers.saturating_sub(f.taken) as usize).min(f.pending.len());
        let done: Vec<Pending> = f.pending.drain(..k).collect();
        f.taken += k as u64;
        for op in &done {
            apply(&mut f.durable, op);
        }
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut st = self.shared.st.lock();
        st.tick()?;
        let f = st.files.entry(self.inode).or_default();
        let op = Pending::Truncate(len);
        apply(&mut f.data, &op);
        f.pending.push(op);
        Ok(())
    }
}

impl Io for FaultIo {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn IoFile>> {
        let mut st = self.shared.st.lock();
        if st.dead {
            return Err(eio("powered off"));
        }
        if let Some(i) = st.names.get(path) {
            let i = *i;
            drop(st);
            return Ok(Box::new(self.file(i)));
        }
        if !create {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        if !st.dirs.contains(&parent(path)) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        st.tick()?;
        let i = st.next_inode;
        st.next_inode += 1;
        st.names.insert(path.to_path_buf(), i);
        st.files.insert(i, FileState::default());
        drop(st);
        Ok(Box::new(self.file(i)))
    }

    fn open_direct(&self, path: &Path) -> io::Result<Option<Box<dyn IoFile>>> {
        let st = self.shared.st.lock();
        if st.dead {
            return Err(eio("powered off"));
        }
        if !st.direct {
            return Ok(None);
        }
        let i = *st.names.get(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        drop(st);
        Ok(Some(Box::new(FaultFile { shared: self.shared.clone(), inode: i, direct: true })))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.shared.st.lock();
        if st.dead {
            return Err(eio("powered off"));
        }
        let mut p = Some(path);
        while let Some(d) = p {
            st.dirs.insert(d.to_path_buf());
            p = d.parent();
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.shared.st.lock();
        if st.dead {
            return Err(eio("powered off"));
        }
        if !st.dirs.contains(dir) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let mut v: Vec<String> = st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect();
        v.sort();
        Ok(v)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.shared.st.lock();
        st.tick()?;
        let i = st.names.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.names.insert(to.to_path_buf(), i);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.shared.st.lock();
        st.tick()?;
        st.names.remove(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(())
    }

    fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.shared.st.lock();
        st.tick()?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        st.durable_names.retain(|p, _| !in_dir(p));
        let current: Vec<(PathBuf, u64)> = st.names.iter().filter(|(p, _)| in_dir(p)).map(|(p, i)| (p.clone(), *i)).collect();
        st.durable_names.extend(current);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (FaultIo, PathBuf) {
        let fs = FaultIo::new();
        let dir = PathBuf::from("/d");
        fs.create_dir_all(&dir).unwrap();
        (fs, dir)
    }

    #[test]
    fn given_unsynced_write_when_power_cut_should_drop_it() {
        let (fs, dir) = setup();
        let p = dir.join("f");
        let f = fs.open(&p, true).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.fsync().unwrap();
        fs.fsync_dir(&dir).unwrap();
        f.write_at(b" world", 5).unwrap();
        assert_eq!(fs.read_file(&p).unwrap(), b"hello world");
        fs.power_cut(CutMode::DropUnsynced, true, 1);
        assert!(f.write_at(b"x", 0).is_err());
        fs.reboot();
        assert_eq!(fs.read_file(&p).unwrap(), b"hello");
    }

    #[test]
    fn given_failed_fsync_should_never_make_data_durable() {
        let (fs, dir) = setup();
        let p = dir.join("f");
        let f = fs.open(&p, true).unwrap();
        fs.fsync_dir(&dir).unwrap();
        f.write_at(b"abc", 0).unwrap();
        fs.fail_nth_fsync(1);
        assert!(f.fsync().is_err());
        assert!(f.fsync().is_ok(), "the retried fsync succeeds, as on Linux");
        assert_eq!(fs.read_file(&p).unwrap(), b"abc");
        fs.power_cut(CutMode::DropUnsynced, false, 1);
        fs.reboot();
        assert_eq!(fs.read_file(&p).unwrap(), b"", "fsyncgate: the data was never durable");
    }

    #[test]
    fn given_capacity_should_write_short_then_enospc() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("f"), true).unwrap();
        fs.set_capacity(Some(10));
        assert_eq!(f.write_at(&[1; 8], 0).unwrap(), 8);
        assert_eq!(f.write_at(&[1; 8], 8).unwrap(), 2);
        let e = f.write_at(&[1; 8], 10).unwrap_err();
        assert!(crate::io::is_no_space(&e));
        // Overwriting inside the file needs no space.
        assert_eq!(f.write_at(&[2; 4], 0).unwrap(), 4);
    }

    #[test]
    fn given_unsynced_dirent_when_cut_with_drop_should_vanish() {
        let (fs, dir) = setup();
        let p = dir.join("f");
        let f = fs.open(&p, true).unwrap();
        f.write_at(b"x", 0).unwrap();
        f.fsync().unwrap();
        fs.power_cut(CutMode::DropUnsynced, true, 7);
        fs.reboot();
        assert!(fs.read_file(&p).is_none());
    }

    #[test]
    fn given_keep_prefix_should_keep_a_prefix_of_writes() {
        for seed in 0..50 {
            let (fs, dir) = setup();
            let p = dir.join("f");
            let f = fs.open(&p, true).unwrap();
            fs.fsync_dir(&dir).unwrap();
            f.write_at(b"aaaa", 0).unwrap();
            f.write_at(b"bbbb", 4).unwrap();
            fs.power_cut(CutMode::KeepPrefix, false, seed);
            fs.reboot();
            let got = fs.read_file(&p).unwrap();
            assert!(b"aaaabbbb".starts_with(&got), "{got:?}");
        }
    }

    #[test]
    fn given_crash_at_op_should_cut_then_refuse() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("f"), true).unwrap();
        fs.crash_at_op(2, CutMode::DropUnsynced, false, 1);
        f.write_at(b"1", 0).unwrap();
        assert!(f.write_at(b"2", 1).is_err());
        assert!(fs.is_powered_off());
        assert!(f.fsync().is_err());
    }
}
