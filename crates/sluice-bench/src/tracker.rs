//! What a bench message says about itself, and the accounting of every message a run sent:
//! acknowledged, delivered, delivered twice, lost, out of order.
//!
//! Each body starts with a fixed-width header (run id, sequence number, send time, message
//! group) padded to the requested size, so consumers can account for a message from its body
//! alone, whatever the server adds or drops. Timing and histograms are `stats.rs`'s business.

use std::sync::Mutex;

/// Marks a body as written by this tool, format version 1.
const MAGIC: &str = "sb1 ";
/// Length of the header: `sb1 RRRRRRRR SSSSSSSSSSSSSSSS TTTTTTTTTTTTTTTT GGGGGGGG `.
pub const HEADER_LEN: usize = MAGIC.len() + 9 + 17 + 17 + 9;
/// What fills a body after its header.
const PADDING: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// The facts a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The run that sent it (messages of other runs in the same queue are foreign).
    pub run_id: u32,
    /// Sequence number, unique within the run.
    pub seq: u64,
    /// Nanoseconds since the run's epoch when it was (meant to be) sent.
    pub sent_nanos: u64,
    /// Message group (FIFO), 0 otherwise.
    pub group: u32,
}

impl Header {
    /// Writes the body for this header into `out` (cleared first), padded with `x` to `size`
    /// bytes (bodies are never shorter than the header).
    pub fn write_body(&self, size: usize, out: &mut String) {
        let mut header = [0u8; HEADER_LEN];
        header[..MAGIC.len()].copy_from_slice(MAGIC.as_bytes());
        let mut at = MAGIC.len();
        for (value, digits) in
            [(u64::from(self.run_id), 8), (self.seq, 16), (self.sent_nanos, 16), (u64::from(self.group), 8)]
        {
            for i in 0..digits {
                let nibble = (value >> (4 * (digits - 1 - i))) & 0xf;
                header[at + i] = b"0123456789abcdef"[nibble as usize];
            }
            header[at + digits] = b' ';
            at += digits + 1;
        }
        let header = std::str::from_utf8(&header).expect("the header is ASCII");
        let len = size.max(HEADER_LEN);
        // Producers reuse their buffers: when the padding is already there, only the header
        // is rewritten (this runs for every message, at the ceiling's rate).
        if out.len() == len && out.starts_with(MAGIC) {
            out.replace_range(..HEADER_LEN, header);
            return;
        }
        out.clear();
        out.reserve(len);
        out.push_str(header);
        while out.len() < len {
            let pad = (len - out.len()).min(PADDING.len());
            out.push_str(&PADDING[..pad]);
        }
    }

    /// Reads the header of a body; `None` if it was not written by this tool.
    pub fn parse(body: &str) -> Option<Header> {
        let b = body.as_bytes();
        if b.len() < HEADER_LEN || !body.starts_with(MAGIC) {
            return None;
        }
        let field = |from: usize, len: usize| -> Option<u64> {
            if b.get(from + len) != Some(&b' ') {
                return None;
            }
            u64::from_str_radix(body.get(from..from + len)?, 16).ok()
        };
        let at = MAGIC.len();
        Some(Header {
            run_id: field(at, 8)? as u32,
            seq: field(at + 9, 16)?,
            sent_nanos: field(at + 26, 16)?,
            group: field(at + 43, 8)? as u32,
        })
    }
}

/// The final accounting of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Accounting {
    /// Messages the server acknowledged.
    pub acknowledged: u64,
    /// Distinct messages of this run delivered at least once.
    pub delivered: u64,
    /// Deliveries beyond the first of a message.
    pub duplicates: u64,
    /// Acknowledged and never delivered.
    pub lost: u64,
    /// Delivered although the send was not acknowledged (failed or timed out at the client).
    pub unacknowledged_delivered: u64,
    /// Deliveries of a group's message after a later message of the same group (FIFO only).
    pub order_violations: u64,
}

/// Thread-safe accounting of one run's messages by sequence number.
///
/// One lock per batch (not per message) is cheap next to an HTTP round trip.
#[derive(Debug)]
pub struct Tracker {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    acked: BitSet,
    delivered: BitSet,
    acknowledged: u64,
    /// Sequence numbers both acknowledged and delivered: complete when it equals `acknowledged`.
    both: u64,
    delivered_distinct: u64,
    duplicates: u64,
    /// Per group, the highest sequence number delivered so far (FIFO order check).
    last_in_group: Option<Vec<Option<u64>>>,
    order_violations: u64,
}

impl Tracker {
    /// A tracker; `groups` enables the per-group order check for that many groups.
    pub fn new(groups: Option<usize>) -> Self {
        let inner = Inner { last_in_group: groups.map(|g| vec![None; g]), ..Inner::default() };
        Self { inner: Mutex::new(inner) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the server acknowledged these sequence numbers.
    pub fn acknowledged(&self, seqs: impl IntoIterator<Item = u64>) {
        let mut t = self.lock();
        for seq in seqs {
            if t.acked.insert(seq) {
                t.acknowledged += 1;
                if t.delivered.contains(seq) {
                    t.both += 1;
                }
            }
        }
    }

    /// Records deliveries, in the order the consumer saw them.
    pub fn delivered(&self, headers: impl IntoIterator<Item = Header>) {
        let mut t = self.lock();
        for h in headers {
            if !t.delivered.insert(h.seq) {
                t.duplicates += 1;
                continue;
            }
            t.delivered_distinct += 1;
            if t.acked.contains(h.seq) {
                t.both += 1;
            }
            let mut violation = false;
            if let Some(last) = t.last_in_group.as_mut().and_then(|v| v.get_mut(h.group as usize)) {
                match *last {
                    Some(prev) if prev > h.seq => violation = true,
                    _ => *last = Some(h.seq),
                }
            }
            if violation {
                t.order_violations += 1;
            }
        }
    }

    /// Whether every acknowledged message has been delivered.
    pub fn is_complete(&self) -> bool {
        let t = self.lock();
        t.both == t.acknowledged
    }

    /// The accounting as it stands.
    pub fn accounting(&self) -> Accounting {
        let t = self.lock();
        Accounting {
            acknowledged: t.acknowledged,
            delivered: t.delivered_distinct,
            duplicates: t.duplicates,
            lost: t.acknowledged - t.both,
            unacknowledged_delivered: t.delivered_distinct - t.both,
            order_violations: t.order_violations,
        }
    }
}

/// A growable bit set over sequence numbers.
#[derive(Debug, Default)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Sets `i`; returns whether it was newly set.
    fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            self.words.resize((w + 1).next_power_of_two(), 0);
        }
        let was = self.words[w] & (1 << b) != 0;
        self.words[w] |= 1 << b;
        !was
    }

    fn contains(&self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.words.get(w).is_some_and(|word| word & (1 << b) != 0)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the accounting of lost, duplicated, unacknowledged and out-of-order messages is
    //! exact whatever order acknowledgements and deliveries arrive in; bodies round-trip.
    //! Method: feed a tracker hand-made sequences and compare the whole `Accounting`.

    use super::*;

    fn h(seq: u64, group: u32) -> Header {
        Header { run_id: 7, seq, sent_nanos: 0, group }
    }

    #[test]
    fn body_header_round_trips_and_pads_to_size() {
        let header = Header { run_id: 0xdead_beef, seq: 1 << 40, sent_nanos: 123_456_789, group: 42 };
        let mut body = String::new();
        header.write_body(1024, &mut body);
        assert_eq!(body.len(), 1024);
        assert_eq!(Header::parse(&body), Some(header));
        let next = Header { seq: 7, ..header };
        next.write_body(1024, &mut body);
        assert_eq!((body.len(), Header::parse(&body)), (1024, Some(next)), "a reused buffer gets the new header");
        assert!(body[HEADER_LEN..].bytes().all(|b| b == b'x'));
        header.write_body(10, &mut body);
        assert_eq!(body.len(), HEADER_LEN, "bodies never cut the header");
        assert_eq!(Header::parse(&body), Some(header));
    }

    #[test]
    fn foreign_and_damaged_bodies_do_not_parse() {
        assert_eq!(Header::parse("hello"), None);
        let mut body = String::new();
        h(1, 0).write_body(100, &mut body);
        assert_eq!(Header::parse(&body.replacen("sb1", "sb2", 1)), None);
        assert_eq!(Header::parse(&body[..HEADER_LEN - 1]), None);
        let mut damaged = body.clone().into_bytes();
        damaged[MAGIC.len() + 8] = b'_';
        assert_eq!(Header::parse(std::str::from_utf8(&damaged).unwrap()), None);
    }

    #[test]
    fn every_acknowledged_message_delivered_once_is_complete_and_clean() {
        let t = Tracker::new(None);
        t.acknowledged(0..100);
        assert!(!t.is_complete());
        t.delivered((0..100).rev().map(|s| h(s, 0)));
        assert!(t.is_complete());
        assert_eq!(t.accounting(), Accounting { acknowledged: 100, delivered: 100, ..Accounting::default() });
    }

    #[test]
    fn delivery_before_acknowledgement_still_counts() {
        let t = Tracker::new(None);
        t.delivered([h(5, 0)]);
        assert_eq!(t.accounting().unacknowledged_delivered, 1);
        t.acknowledged([5]);
        assert!(t.is_complete());
        assert_eq!(t.accounting(), Accounting { acknowledged: 1, delivered: 1, ..Accounting::default() });
    }

    #[test]
    fn missing_repeated_and_unacknowledged_deliveries_are_counted_apart() {
        let t = Tracker::new(None);
        t.acknowledged([0, 1, 2, 3, 1_000_000]);
        t.delivered([h(0, 0), h(1, 0), h(1, 0), h(1, 0), h(9, 0)]);
        assert!(!t.is_complete());
        assert_eq!(
            t.accounting(),
            Accounting {
                acknowledged: 5,
                delivered: 3,
                duplicates: 2,
                lost: 3,
                unacknowledged_delivered: 1,
                order_violations: 0
            }
        );
    }

    #[test]
    fn acknowledging_twice_counts_once() {
        let t = Tracker::new(None);
        t.acknowledged([3, 3]);
        assert_eq!(t.accounting().acknowledged, 1);
    }

    #[test]
    fn order_is_checked_per_group_only() {
        let t = Tracker::new(Some(2));
        // Group 0 in order, group 1 interleaved but in order: no violation.
        t.delivered([h(0, 0), h(1, 1), h(2, 0), h(3, 1)]);
        assert_eq!(t.accounting().order_violations, 0);
        // A late message of group 0 is a violation; its duplicate is only a duplicate.
        t.delivered([h(5, 0), h(4, 0), h(4, 0)]);
        let a = t.accounting();
        assert_eq!((a.order_violations, a.duplicates), (1, 1));
    }

    #[test]
    fn without_groups_order_is_not_checked() {
        let t = Tracker::new(None);
        t.delivered([h(9, 0), h(1, 0)]);
        assert_eq!(t.accounting().order_violations, 0);
    }
}
