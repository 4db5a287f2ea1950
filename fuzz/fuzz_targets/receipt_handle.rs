//! Fuzz target: the receipt handle decoder (`sluice_sqs::receipt::ReceiptCodec`).
//!
//! Input: key `[u8; 32]` | queue id `u64` LE | sequence number `u64` LE | generation
//! `u32` LE | a byte to alter | the rest as a handle (lossy UTF-8). Short inputs are
//! zero-padded.
//!
//! Oracle, beyond "no panic":
//! - a forged handle never decodes as valid: whatever `decode` accepts is exactly the
//!   handle `encode` issues for that queue and receipt (anything else would mean a
//!   second spelling, or a handle not made with the key);
//! - an issued handle decodes to its receipt, only for its own queue, and altering
//!   any one of its characters makes it invalid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_sqs::receipt::ReceiptCodec;
use sluice_store::Receipt;

fuzz_target!(|data: &[u8]| {
    let mut head = [0u8; 53];
    let n = data.len().min(53);
    head[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];
    let key: [u8; 32] = head[0..32].try_into().expect("32 bytes");
    let queue = u64::from_le_bytes(head[32..40].try_into().expect("8 bytes"));
    let receipt = Receipt {
        sequence_number: u64::from_le_bytes(head[40..48].try_into().expect("8 bytes")),
        generation: u32::from_le_bytes(head[48..52].try_into().expect("4 bytes")),
    };
    let codec = ReceiptCodec::new(key);

    // Arbitrary text as a handle.
    let handle = String::from_utf8_lossy(rest);
    for q in [queue, queue.wrapping_add(1)] {
        if let Some(r) = codec.decode(q, &handle) {
            assert_eq!(codec.encode(q, r), handle, "a handle decoded that the codec never issues");
        }
    }

    // An issued handle.
    let issued = codec.encode(queue, receipt);
    assert!(issued.len() <= 128, "handle {issued} too long");
    assert_eq!(codec.decode(queue, &issued), Some(receipt));
    assert_eq!(codec.decode(queue.wrapping_add(1), &issued), None, "handle valid in another queue");
    let mut altered = issued.clone().into_bytes();
    let at = head[52] as usize % altered.len();
    let replacement = rest.first().copied().unwrap_or(b'A');
    altered[at] = if altered[at] == replacement { replacement ^ 1 } else { replacement };
    let altered = String::from_utf8_lossy(&altered);
    assert_eq!(codec.decode(queue, &altered), None, "altered handle {altered} (from {issued}) still decodes");
});
