//! Receipt handles: opaque, authenticated tokens naming one receive of one
//! message in one queue.
//!
//! Layout before base64url: version (1), queue id (8), sequence number (8),
//! generation (4), then the first 16 bytes of HMAC-SHA256 over those 21 bytes.
//! A forged or altered handle, or one from another queue, fails the check and
//! is answered with ReceiptHandleIsInvalid.

use base64::Engine;
use hmac::{KeyInit, Mac};
use sluice_store::{QueueId, Receipt};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const VERSION: u8 = 1;
const BODY: usize = 21;
const TAG: usize = 16;

/// Encodes and checks receipt handles with a secret key.
#[derive(Clone)]
pub struct ReceiptCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for ReceiptCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptCodec(<redacted>)")
    }
}

impl ReceiptCodec {
    /// A codec with this key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; TAG];
        t.copy_from_slice(&full[..TAG]);
        t
    }

    /// The handle for `receipt` in queue `queue`.
    pub fn encode(&self, queue: QueueId, receipt: Receipt) -> String {
        let mut b = Vec::with_capacity(BODY + TAG);
        b.push(VERSION);
        b.extend_from_slice(&queue.to_be_bytes());
        b.extend_from_slice(&receipt.sequence_number.to_be_bytes());
        b.extend_from_slice(&receipt.generation.to_be_bytes());
        let t = self.tag(&b);
        b.extend_from_slice(&t);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// The receipt a handle names, if it is authentic and belongs to `queue`.
    pub fn decode(&self, queue: QueueId, handle: &str) -> Option<Receipt> {
        if handle.len() > 128 {
            return None;
        }
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(handle).ok()?;
        if b.len() != BODY + TAG || b[0] != VERSION {
            return None;
        }
        let (body, tag) = b.split_at(BODY);
        let expected = self.tag(body);
        // Constant-time comparison of the tags.
        let diff = expected.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let q = u64::from_be_bytes(body[1..9].try_into().ok()?);
        if q != queue {
            return None;
        }
        Some(Receipt {
            sequence_number: u64::from_be_bytes(body[9..17].try_into().ok()?),
            generation: u32::from_be_bytes(body[17..21].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_forgeries() {
        let c = ReceiptCodec::new([7; 32]);
        let r = Receipt { sequence_number: 42, generation: 3 };
        let h = c.encode(9, r);
        assert_eq!(c.decode(9, &h), Some(r));
        assert_eq!(c.decode(10, &h), None, "handle from another queue");
        assert_eq!(ReceiptCodec::new([8; 32]).decode(9, &h), None, "other key");
        let mut bytes = h.into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(c.decode(9, &String::from_utf8(bytes).unwrap()), None);
        assert_eq!(c.decode(9, "not a handle"), None);
        assert_eq!(c.decode(9, ""), None);
    }
}
