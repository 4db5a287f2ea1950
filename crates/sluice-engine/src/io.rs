//! All file access of the engine goes through the `Io` trait, so that tests can
//! swap the real file system (`StdIo`) for a fault-injecting one (`FaultIo`).
//!
//! The trait is deliberately small and positional: the writer always knows the
//! offset it writes at, which makes "truncate back to the last whole record"
//! after a failed or short write exact. `write_at` may write fewer bytes than
//! asked (a short write); `write_all_at` loops.

use std::io;
use std::path::Path;

/// A file opened for reading and writing.
pub trait IoFile: Send + Sync {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True when the file has no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `offset`; returns how many (may be short).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Writes at the current end of the file; returns how many bytes.
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        let at = self.len()?;
        self.write_at(buf, at)
    }
    /// Makes every write so far durable (fdatasync).
    fn fsync(&self) -> io::Result<()>;
    /// Writes the range's dirty pages out to the device and waits for them,
    /// without flushing the device's cache or the file's metadata: durable
    /// only after a later `fsync`, but that `fsync` then has little left to
    /// write. Only a hint; the default does nothing.
    fn write_back(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Sets the length.
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// A file system: the only way the engine touches storage.
pub trait Io: Send + Sync + 'static {
    /// Opens a file for reading and writing, creating it (empty) when `create`.
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn IoFile>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Atomically renames a file (same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn fsync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens an existing file a second time for direct writes, past the
    /// page cache (`O_DIRECT`): every write through it must start at a
    /// multiple of `DIRECT_BLOCK` from memory aligned to it (`AlignedBuf`)
    /// and cover whole blocks. `Ok(None)` where the file system does not
    /// support it (tmpfs) or the `Io` does not offer it (the fault-injecting
    /// one): the caller then writes through its ordinary handle. Durability
    /// is unchanged: an `fsync` on either handle covers the writes of both.
    fn open_direct(&self, _path: &Path) -> io::Result<Option<Box<dyn IoFile>>> {
        Ok(None)
    }
}

/// Opens `path` for direct writes (`Io::open_direct`); `None` where that is
/// not offered, or fails (logged: the caller writes through the page cache).
pub fn open_direct_or_none(io: &dyn Io, path: &Path) -> Option<Box<dyn IoFile>> {
    match io.open_direct(path) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(target: "sluice_engine", "opening {} for direct writes: {e}; writing it through the page cache", path.display());
            None
        }
    }
}

/// Whether a direct write that failed after `written` bytes was refused
/// outright (EINVAL: an alignment the file system does not take, which
/// opening the file did not tell): the caller goes on through the page
/// cache rather than treating it as an I/O error.
pub fn direct_write_refused(e: &io::Error, written: u64) -> bool {
    written == 0 && e.raw_os_error() == Some(libc::EINVAL)
}

/// Alignment and granularity of direct writes: the page size, which is also a
/// multiple of every device's logical block size that Linux accepts.
pub const DIRECT_BLOCK: usize = 4096;

/// A growable byte buffer whose start is aligned to `DIRECT_BLOCK`, for
/// direct writes. Built on a `Vec` with a block of slack rather than a custom
/// allocation, so it needs no `unsafe`.
pub struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    /// An empty buffer with room for `cap` bytes, zero-filled.
    pub fn zeroed(cap: usize) -> AlignedBuf {
        let raw = vec![0u8; cap + DIRECT_BLOCK];
        let off = raw.as_ptr().align_offset(DIRECT_BLOCK);
        AlignedBuf { raw, off, len: 0 }
    }
    /// A buffer holding `len` zeros.
    pub fn zeros(len: usize) -> AlignedBuf {
        AlignedBuf { len, ..AlignedBuf::zeroed(len) }
    }
    fn capacity(&self) -> usize {
        self.raw.len() - self.off
    }
    /// The bytes held.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }
    /// How many bytes are held.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Makes room for `extra` more bytes plus a block of padding.
    fn reserve(&mut self, extra: usize) {
        let need = self.len + extra + DIRECT_BLOCK;
        if need <= self.capacity() {
            return;
        }
        let mut bigger = AlignedBuf::zeroed(need.max(self.capacity() * 2));
        bigger.raw[bigger.off..bigger.off + self.len].copy_from_slice(self.as_slice());
        bigger.len = self.len;
        *self = bigger;
    }
    /// Appends bytes.
    pub fn extend_from_slice(&mut self, b: &[u8]) {
        self.reserve(b.len());
        let at = self.off + self.len;
        self.raw[at..at + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
    /// Cuts the buffer back to `len` bytes (no effect if it holds fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
    /// Drops the first `n` bytes (a multiple of `DIRECT_BLOCK`, so that the
    /// rest stays aligned), moving the others to the front.
    pub fn drain_front(&mut self, n: usize) {
        debug_assert_eq!(n % DIRECT_BLOCK, 0);
        let n = n.min(self.len);
        self.raw.copy_within(self.off + n..self.off + self.len, self.off);
        self.len -= n;
    }
    /// Gives back memory after a large round: when the buffer holds at
    /// most `cap` bytes but has room for more than twice that, it is moved
    /// into a buffer of `cap`.
    pub fn shrink_to(&mut self, cap: usize) {
        if self.len <= cap && self.capacity() > 2 * cap + DIRECT_BLOCK {
            let mut small = AlignedBuf::zeroed(cap);
            small.extend_from_slice(self.as_slice());
            *self = small;
        }
    }
    /// The bytes held, followed by zeros up to the next multiple of
    /// `DIRECT_BLOCK`: what a direct write of them must cover.
    pub fn padded(&mut self) -> &[u8] {
        let padded = self.len.next_multiple_of(DIRECT_BLOCK);
        self.reserve(0);
        self.raw[self.off + self.len..self.off + padded].fill(0);
        &self.raw[self.off..self.off + padded]
    }
}

/// True for the errors that mean "no space left" (ENOSPC, EDQUOT): the engine
/// treats them as a temporary condition rather than a failure of the medium.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) || e.kind() == io::ErrorKind::StorageFull
}

/// Writes all of `buf` at `offset`, looping over short writes. On error returns
/// the error and how many bytes were written before it.
pub fn write_all_at(f: &dyn IoFile, mut buf: &[u8], mut offset: u64) -> Result<(), (io::Error, u64)> {
    let mut done = 0u64;
    while !buf.is_empty() {
        match f.write_at(buf, offset) {
            Ok(0) => return Err((io::Error::new(io::ErrorKind::WriteZero, "write returned 0 bytes"), done)),
            Ok(n) => {
                let n = n.min(buf.len());
                buf = &buf[n..];
                offset += n as u64;
                done += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, done)),
        }
    }
    Ok(())
}

/// Reads a whole file into memory.
pub fn read_all(f: &dyn IoFile) -> io::Result<Vec<u8>> {
    let len = f.len()?;
    let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to read"))?;
    let mut buf = vec![0u8; len];
    let mut at = 0usize;
    while at < len {
        match f.read_at(&mut buf[at..], at as u64) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(at);
    Ok(buf)
}

/// The real file system (std::fs, positional I/O, `fdatasync`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdIo;

struct StdFile(std::fs::File);

impl IoFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(&self.0, buf, offset)
    }
    fn fsync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    #[cfg(target_os = "linux")]
    fn write_back(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        let (offset, len) = (i64::try_from(offset).unwrap_or(i64::MAX), i64::try_from(len).unwrap_or(0));
        // SAFETY: a plain system call on a descriptor this value owns.
        match unsafe { libc::sync_file_range(self.0.as_raw_fd(), offset, len, flags) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Io for StdIo {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn IoFile>> {
        let f = std::fs::OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)?;
        Ok(Box::new(StdFile(f)))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if let Ok(name) = e.file_name().into_string() {
                v.push(name);
            }
        }
        v.sort();
        Ok(v)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(target_os = "linux")]
    fn open_direct(&self, path: &Path) -> io::Result<Option<Box<dyn IoFile>>> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => Ok(Some(Box::new(StdFile(f)))),
            // The file system does not do direct I/O (tmpfs, some overlays).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aligned_buffer_stays_aligned_through_growth_and_draining() {
        let mut b = AlignedBuf::zeroed(16);
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8 + 1).collect();
        b.extend_from_slice(&data[..100]);
        b.extend_from_slice(&data[100..]);
        assert_eq!(b.as_slice(), &data[..]);
        assert_eq!(b.as_slice().as_ptr() as usize % DIRECT_BLOCK, 0);
        let p = b.padded().to_vec();
        assert_eq!(p.len(), 20_480);
        assert_eq!(&p[..20_000], &data[..]);
        assert!(p[20_000..].iter().all(|&x| x == 0));
        b.drain_front(16_384);
        assert_eq!(b.as_slice(), &data[16_384..]);
        assert_eq!(b.as_slice().as_ptr() as usize % DIRECT_BLOCK, 0);
        b.truncate(10);
        assert_eq!(b.as_slice(), &data[16_384..16_394]);
        assert_eq!(b.padded().len(), DIRECT_BLOCK);
        let big = b.capacity();
        b.shrink_to(100);
        assert!(b.capacity() < big && b.capacity() >= 100, "{} of {big}", b.capacity());
        assert_eq!(b.as_slice(), &data[16_384..16_394]);
        assert_eq!(b.as_slice().as_ptr() as usize % DIRECT_BLOCK, 0);
    }

    #[test]
    fn write_back_is_accepted_by_the_real_file_system_and_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let f = StdIo.open(&dir.path().join("f"), true).unwrap();
        write_all_at(f.as_ref(), &[7u8; 100_000], 0).map_err(|(e, _)| e).unwrap();
        f.write_back(0, 65_536).unwrap();
        f.write_back(65_536, 1 << 20).unwrap(); // past the end: allowed
        f.fsync().unwrap();
        assert_eq!(read_all(f.as_ref()).unwrap(), vec![7u8; 100_000]);
    }
}
