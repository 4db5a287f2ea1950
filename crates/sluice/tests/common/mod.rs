//! Parts shared by the kill -9 tests (`crash.rs`, `soak.rs`): the
//! self-checking message body and a small deterministic random generator.
//! Each test file keeps its own ledger, load and checks.

// Each test binary uses only some of these.
#![allow(dead_code)]

fn checksum(payload: &str) -> u32 {
    payload.bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// A body carrying its own id and a checksum of itself, `pad` filler bytes
/// long: `msg-<id>-xxx…|<checksum>`, so corruption and mix-ups are detectable.
pub fn padded_body(id: u64, pad: usize) -> String {
    let payload = format!("msg-{id}-{}", "x".repeat(pad));
    let sum = checksum(&payload);
    format!("{payload}|{sum:08x}")
}

/// The crash test's body: 0–199 filler bytes, depending on the id.
pub fn crc_body(id: u64) -> String {
    padded_body(id, (id % 200) as usize)
}

/// A body of exactly `len` bytes (or the shortest possible, when `len` is
/// smaller than the id and checksum need).
pub fn sized_body(id: u64, len: usize) -> String {
    let fixed = format!("msg-{id}-").len() + 9;
    padded_body(id, len.saturating_sub(fixed))
}

/// The id of an intact body, or None when its checksum fails.
pub fn body_ok(body: &str) -> Option<u64> {
    let (payload, sum) = body.rsplit_once('|')?;
    if format!("{:08x}", checksum(payload)) != sum {
        return None;
    }
    payload.strip_prefix("msg-")?.split('-').next()?.parse().ok()
}

/// xorshift64: reproducible kill moments from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
