//! Byte-level formats: the record frame, the file header of segments and
//! checkpoints, and a bounds-checked reader for record payloads.
//!
//! Every multi-byte field is little-endian and written explicitly; nothing is
//! transmuted. Decoding never panics and never allocates more than the input
//! holds: each length is checked against a cap and against the bytes left
//! before anything is allocated.

use crate::limits::RECORD_BYTES_MAX;

/// First four bytes of every record frame: `SLR1`.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"SLR1");
/// Bytes before a frame's payload.
pub const FRAME_HEADER_BYTES: usize = 16;
/// The only frame version this build reads or writes.
pub const FRAME_VERSION: u8 = 1;

/// Appends one frame (`kind`, `payload`) to `out`.
///
/// Layout: `magic u32 | len u32 | crc u32 | version u8 | kind u8 | reserved u16 | payload`,
/// where `crc = crc32c(len ‖ version ‖ kind ‖ reserved ‖ payload)`.
pub fn encode_frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() <= RECORD_BYTES_MAX, "record of {} bytes over the cap", payload.len());
    let len = payload.len() as u32;
    out.reserve(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(FRAME_VERSION);
    out.push(kind);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let crc = frame_crc(len, &out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(len: u32, rest: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), rest)
}

/// Why the bytes at some offset are not a whole, valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends before the frame does (a torn tail, or damage to the length).
    Incomplete,
    /// The bytes are not a valid frame; the reason is for reports.
    Invalid(&'static str),
}

/// One decoded frame, borrowing its payload from the input.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Record type tag.
    pub kind: u8,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// Bytes the frame occupies (header + payload).
    pub size: usize,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes the frame at the start of `buf`, checking the length cap, that the
/// frame fits in `buf`, the checksum, the version and the reserved bytes.
pub fn decode_frame(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    if buf.len() < FRAME_HEADER_BYTES {
        return Err(FrameError::Incomplete);
    }
    if le_u32(buf, 0) != FRAME_MAGIC {
        return Err(FrameError::Invalid("bad magic"));
    }
    let len = le_u32(buf, 4) as usize;
    if len > RECORD_BYTES_MAX {
        return Err(FrameError::Invalid("length over the cap"));
    }
    let size = FRAME_HEADER_BYTES + len;
    if buf.len() < size {
        return Err(FrameError::Incomplete);
    }
    let crc = le_u32(buf, 8);
    if frame_crc(len as u32, &buf[12..size]) != crc {
        return Err(FrameError::Invalid("checksum mismatch"));
    }
    if buf[12] != FRAME_VERSION {
        return Err(FrameError::Invalid("unknown frame version"));
    }
    if buf[14] != 0 || buf[15] != 0 {
        return Err(FrameError::Invalid("reserved bytes set"));
    }
    Ok(Frame { kind: buf[13], payload: &buf[FRAME_HEADER_BYTES..size], size })
}

/// Finds the next offset at or after `from` where a valid frame starts.
/// Used to tell a torn tail from damage followed by intact records, and by
/// salvage to resynchronise after a damaged range.
pub fn find_next_frame(buf: &[u8], from: usize) -> Option<usize> {
    let magic = FRAME_MAGIC.to_le_bytes();
    let mut at = from;
    while at + FRAME_HEADER_BYTES <= buf.len() {
        match buf[at..].windows(4).position(|w| w == magic) {
            None => return None,
            Some(p) => {
                at += p;
                if decode_frame(&buf[at..]).is_ok() {
                    return Some(at);
                }
                at += 1;
            }
        }
    }
    None
}

/// Bytes of the header at the start of every segment and checkpoint file.
pub const FILE_HEADER_BYTES: usize = 32;
/// Magic of a log segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SLUICSEG";
/// Magic of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"SLUICCKP";
/// Magic of a checkpoint's bodies file (the header, then raw bodies that
/// handles point into; each is checked against its handle's CRC when read).
pub const BODIES_MAGIC: [u8; 8] = *b"SLUICBOD";
/// Version of the file layout.
pub const FILE_VERSION: u32 = 1;

/// The 32-byte file header: `magic [8] | version u32 | reserved u32 | number u64 | crc u32 | zero u32`,
/// `crc = crc32c(bytes 0..24)`. `number` is the segment number, or for a
/// checkpoint the first segment it does not cover.
pub fn encode_file_header(magic: [u8; 8], number: u64) -> [u8; FILE_HEADER_BYTES] {
    let mut h = [0u8; FILE_HEADER_BYTES];
    h[0..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&FILE_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&number.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header; returns its number.
pub fn decode_file_header(magic: [u8; 8], buf: &[u8]) -> Result<u64, FrameError> {
    if buf.len() < FILE_HEADER_BYTES {
        return Err(FrameError::Incomplete);
    }
    if buf[0..8] != magic {
        return Err(FrameError::Invalid("bad file magic"));
    }
    if crc32c::crc32c(&buf[0..24]) != le_u32(buf, 24) {
        return Err(FrameError::Invalid("file header checksum mismatch"));
    }
    if le_u32(buf, 8) != FILE_VERSION {
        return Err(FrameError::Invalid("unknown file version"));
    }
    if le_u32(buf, 28) != 0 {
        return Err(FrameError::Invalid("file header padding set"));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&buf[16..24]);
    Ok(u64::from_le_bytes(n))
}

/// A payload field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad record payload: {0}")]
pub struct DecodeError(pub &'static str);

/// A bounds-checked little-endian reader over a record payload.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Bytes read so far (the offset of the next field in the payload).
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Fails unless every byte was read (trailing garbage is damage).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError("truncated field"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }
    /// A little-endian u128.
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.bytes(16)?);
        Ok(u128::from_le_bytes(a))
    }
    /// A u64 that must be at most `max`.
    pub fn u64_max(&mut self, max: u64, what: &'static str) -> Result<u64, DecodeError> {
        let v = self.u64()?;
        if v > max {
            return Err(DecodeError(what));
        }
        Ok(v)
    }
    /// A u32-length-prefixed byte string.
    pub fn blob(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }
    /// A u32-length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.blob()?;
        std::str::from_utf8(b).map(str::to_string).map_err(|_| DecodeError("string is not UTF-8"))
    }
    /// An optional string (tag byte 0 or 1).
    pub fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }
    /// An element count for a vector whose elements take at least
    /// `min_elem_bytes` each; rejects counts the remaining bytes cannot hold.
    pub fn count(&mut self, min_elem_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_elem_bytes.max(1)) > self.remaining() {
            return Err(DecodeError("count larger than the record"));
        }
        Ok(n)
    }
}

/// Little-endian writers for record payloads.
pub trait PutExt {
    /// One byte.
    fn put_u8(&mut self, v: u8);
    /// A little-endian u32.
    fn put_u32(&mut self, v: u32);
    /// A little-endian u64.
    fn put_u64(&mut self, v: u64);
    /// A little-endian u128.
    fn put_u128(&mut self, v: u128);
    /// A u32-length-prefixed byte string.
    fn put_blob(&mut self, b: &[u8]);
    /// An optional string.
    fn put_opt_string(&mut self, s: Option<&str>);
    /// A vector length.
    fn put_count(&mut self, n: usize);
}

impl PutExt for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u128(&mut self, v: u128) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_blob(&mut self, b: &[u8]) {
        let n = u32::try_from(b.len()).expect("blob over 4 GiB");
        self.put_u32(n);
        self.extend_from_slice(b);
    }
    fn put_opt_string(&mut self, s: Option<&str>) {
        match s {
            None => self.put_u8(0),
            Some(s) => {
                self.put_u8(1);
                self.put_blob(s.as_bytes());
            }
        }
    }
    fn put_count(&mut self, n: usize) {
        self.put_u32(u32::try_from(n).expect("count over u32"));
    }
}

/// Starts a frame in `out` whose payload the caller appends next; returns the
/// frame's start for `end_frame`. Avoids building the payload in a second buffer.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    start
}

/// Completes the frame begun at `start`: fills in magic, length, version, kind
/// and checksum over everything appended since.
pub fn end_frame(out: &mut [u8], start: usize, kind: u8) {
    let len = out.len() - start - FRAME_HEADER_BYTES;
    assert!(len <= RECORD_BYTES_MAX, "record of {len} bytes over the cap");
    let len32 = len as u32;
    out[start..start + 4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&len32.to_le_bytes());
    out[start + 12] = FRAME_VERSION;
    out[start + 13] = kind;
    out[start + 14] = 0;
    out[start + 15] = 0;
    let crc = frame_crc(len32, &out[start + 12..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}


#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn frame_round_trips() {
        let mut out = Vec::new();
        encode_frame(7, b"payload", &mut out);
        encode_frame(9, b"", &mut out);
        let f = decode_frame(&out).unwrap();
        assert_eq!((f.kind, f.payload, f.size), (7, &b"payload"[..], 23));
        let g = decode_frame(&out[f.size..]).unwrap();
        assert_eq!((g.kind, g.payload.len()), (9, 0));
    }

    #[test]
    fn given_any_single_bit_flip_frame_should_not_decode() {
        let mut out = Vec::new();
        encode_frame(3, b"some payload bytes", &mut out);
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut b = out.clone();
                b[byte] ^= 1 << bit;
                assert!(decode_frame(&b).is_err(), "flip at {byte}:{bit} decoded");
            }
        }
    }

    #[test]
    fn given_every_truncation_frame_should_be_incomplete() {
        let mut out = Vec::new();
        encode_frame(3, b"0123456789", &mut out);
        for n in 0..out.len() {
            assert_eq!(decode_frame(&out[..n]).unwrap_err(), FrameError::Incomplete);
        }
    }

    #[test]
    fn given_random_bytes_decoders_should_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..20_000 {
            let n = rng.random_range(0..64);
            let mut b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) && b.len() >= 4 {
                b[..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
            }
            let _ = decode_frame(&b);
            let _ = find_next_frame(&b, 0);
            let _ = decode_file_header(SEGMENT_MAGIC, &b);
        }
    }

    #[test]
    fn given_huge_length_should_be_rejected_before_allocating() {
        let mut b = Vec::new();
        b.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        assert_eq!(decode_frame(&b).unwrap_err(), FrameError::Invalid("length over the cap"));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(r.count(1).is_err());
    }

    #[test]
    fn file_header_round_trips_and_detects_damage() {
        let h = encode_file_header(SEGMENT_MAGIC, 42);
        assert_eq!(decode_file_header(SEGMENT_MAGIC, &h), Ok(42));
        assert!(decode_file_header(CHECKPOINT_MAGIC, &h).is_err());
        for byte in 0..FILE_HEADER_BYTES {
            let mut d = h;
            d[byte] ^= 1;
            assert!(decode_file_header(SEGMENT_MAGIC, &d).is_err(), "flip in byte {byte} undetected");
        }
    }

    #[test]
    fn find_next_frame_skips_damage() {
        let mut out = vec![0u8; 5];
        encode_frame(1, b"x", &mut out);
        assert_eq!(find_next_frame(&out, 0), Some(5));
        assert_eq!(find_next_frame(&out, 6), None);
    }
}
