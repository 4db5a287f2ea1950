//! The state machine of one queue: which messages exist, which are visible,
//! delayed or in flight, and the effect of every queue operation on them.
//!
//! It is pure (no locks, no I/O, time passed in) and deterministic, so that the
//! in-memory engine uses it directly and the durable engine replays its log
//! through the same methods and arrives at the same state.
//!
//! Cost: every operation is O(log n) in the number of stored messages; nothing
//! scans the backlog on the request path.

use crate::types::*;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Visible: can be received now.
    Visible,
    /// Not yet delivered, waiting for its delay to pass.
    Delayed {
        /// When it becomes visible.
        until_ms: u64,
    },
    /// Received and not deleted; invisible until the visibility timeout passes.
    Inflight {
        /// When it becomes visible again.
        until_ms: u64,
    },
}

/// A stored message with its delivery state.
#[derive(Debug, Clone)]
pub struct CoreMessage {
    /// MessageId.
    pub message_id: u128,
    /// Encoded body and attributes.
    pub payload: Bytes,
    /// Enqueue time.
    pub sent_ms: u64,
    /// Sequence number in this queue.
    pub seq: u64,
    /// Times received.
    pub receive_count: u32,
    /// First receive time, 0 when never received.
    pub first_receive_ms: u64,
    /// FIFO group.
    pub group_id: Option<String>,
    /// FIFO deduplication id.
    pub dedup_id: Option<String>,
    /// Dead-letter source queue.
    pub dead_letter_source: Option<QueueId>,
    /// Delivery state.
    pub state: MessageState,
}

impl CoreMessage {
    /// The interface view of this message.
    pub fn to_stored(&self) -> StoredMessage {
        StoredMessage {
            message_id: self.message_id,
            payload: self.payload.clone(),
            sent_ms: self.sent_ms,
            receive_count: self.receive_count,
            first_receive_ms: self.first_receive_ms,
            sequence_number: self.seq,
            group_id: self.group_id.clone(),
            dedup_id: self.dedup_id.clone(),
            dead_letter_source: self.dead_letter_source,
        }
    }
}

/// What one receive decided; the durable engine logs exactly these effects.
#[derive(Debug, Default)]
pub struct CoreReceive {
    /// Sequence numbers delivered, in order, each now in flight.
    pub delivered: Vec<u64>,
    /// The visibility deadline given to the delivered messages.
    pub until_ms: u64,
    /// Messages removed because they reached maxReceiveCount (to be put into the dead-letter queue).
    pub dead_lettered: Vec<CoreMessage>,
    /// Sequence numbers dropped because their retention period passed.
    pub expired: Vec<u64>,
    /// The in-flight limit stopped the receive.
    pub over_limit: bool,
}

/// One queue's messages.
#[derive(Debug, Default)]
pub struct QueueCore {
    next_seq: u64,
    messages: HashMap<u64, CoreMessage>,
    visible: BTreeSet<u64>,
    delayed: BTreeSet<(u64, u64)>,
    inflight: BTreeSet<(u64, u64)>,
}

impl QueueCore {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence number the next inserted message gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is stored.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// A stored message.
    pub fn get(&self, seq: u64) -> Option<&CoreMessage> {
        self.messages.get(&seq)
    }

    /// Builds a new message with the next sequence number (not yet inserted).
    pub fn prepare(&mut self, m: &NewMessage, delay_secs: u32, now_ms: u64) -> CoreMessage {
        let seq = self.next_seq;
        self.next_seq += 1;
        let state = if delay_secs > 0 {
            MessageState::Delayed { until_ms: now_ms + u64::from(delay_secs) * 1000 }
        } else {
            MessageState::Visible
        };
        CoreMessage {
            message_id: m.message_id,
            payload: m.payload.clone(),
            sent_ms: now_ms,
            seq,
            receive_count: 0,
            first_receive_ms: 0,
            group_id: m.group_id.clone(),
            dedup_id: m.dedup_id.clone(),
            dead_letter_source: None,
            state,
        }
    }

    /// Inserts a message (new, moved in, or replayed); its `seq` must be unused.
    pub fn insert(&mut self, m: CoreMessage) {
        assert!(!self.messages.contains_key(&m.seq), "sequence number {} reused", m.seq);
        if m.seq >= self.next_seq {
            self.next_seq = m.seq + 1;
        }
        self.index(&m);
        self.messages.insert(m.seq, m);
    }

    /// Gives a message moved in from another queue a fresh sequence number here.
    pub fn renumber(&mut self, mut m: CoreMessage) -> CoreMessage {
        m.seq = self.next_seq;
        self.next_seq += 1;
        m.state = MessageState::Visible;
        m
    }

    fn index(&mut self, m: &CoreMessage) {
        match m.state {
            MessageState::Visible => {
                self.visible.insert(m.seq);
            }
            MessageState::Delayed { until_ms } => {
                self.delayed.insert((until_ms, m.seq));
            }
            MessageState::Inflight { until_ms } => {
                self.inflight.insert((until_ms, m.seq));
            }
        }
    }

    fn unindex(&mut self, seq: u64, state: MessageState) {
        match state {
            MessageState::Visible => {
                self.visible.remove(&seq);
            }
            MessageState::Delayed { until_ms } => {
                self.delayed.remove(&(until_ms, seq));
            }
            MessageState::Inflight { until_ms } => {
                self.inflight.remove(&(until_ms, seq));
            }
        }
    }

    fn set_state(&mut self, seq: u64, state: MessageState) {
        let Some(old) = self.messages.get(&seq).map(|m| m.state) else { return };
        self.unindex(seq, old);
        if let Some(m) = self.messages.get_mut(&seq) {
            m.state = state;
        }
        match state {
            MessageState::Visible => {
                self.visible.insert(seq);
            }
            MessageState::Delayed { until_ms } => {
                self.delayed.insert((until_ms, seq));
            }
            MessageState::Inflight { until_ms } => {
                self.inflight.insert((until_ms, seq));
            }
        }
    }

    /// Makes every delayed or in-flight message whose time has come visible.
    pub fn promote(&mut self, now_ms: u64) {
        while let Some(&(until, seq)) = self.delayed.first() {
            if until > now_ms {
                break;
            }
            self.set_state(seq, MessageState::Visible);
        }
        while let Some(&(until, seq)) = self.inflight.first() {
            if until > now_ms {
                break;
            }
            self.set_state(seq, MessageState::Visible);
        }
    }

    /// Removes a message, whatever its state.
    pub fn remove(&mut self, seq: u64) -> Option<CoreMessage> {
        let m = self.messages.remove(&seq)?;
        self.unindex(seq, m.state);
        Some(m)
    }

    /// Receives up to `max` visible messages.
    ///
    /// A message that has already been received `max_receive_count` times is
    /// dead-lettered instead of delivered (AWS: "when the ReceiveCount for a
    /// message exceeds the maxReceiveCount"), and one older than the retention
    /// period is dropped.
    pub fn receive(
        &mut self,
        max: usize,
        visibility_timeout_secs: u32,
        max_receive_count: Option<u32>,
        retention_secs: u32,
        inflight_limit: usize,
        now_ms: u64,
    ) -> CoreReceive {
        self.promote(now_ms);
        let until_ms = now_ms + u64::from(visibility_timeout_secs) * 1000;
        let mut out = CoreReceive { until_ms, ..Default::default() };
        let retention_ms = u64::from(retention_secs) * 1000;
        while out.delivered.len() < max {
            if self.inflight.len() >= inflight_limit {
                out.over_limit = true;
                break;
            }
            let Some(&seq) = self.visible.first() else { break };
            let Some(m) = self.messages.get(&seq) else {
                // The index and the map disagree: a programmer error. Repair the
                // index rather than loop forever.
                self.visible.remove(&seq);
                continue;
            };
            if m.sent_ms + retention_ms <= now_ms {
                self.remove(seq);
                out.expired.push(seq);
                continue;
            }
            if let Some(limit) = max_receive_count {
                if m.receive_count >= limit {
                    if let Some(m) = self.remove(seq) {
                        out.dead_lettered.push(m);
                    }
                    continue;
                }
            }
            self.apply_receive(seq, until_ms, now_ms);
            out.delivered.push(seq);
        }
        out
    }

    /// Marks one message received now, invisible until `until_ms`.
    pub fn apply_receive(&mut self, seq: u64, until_ms: u64, now_ms: u64) {
        if let Some(m) = self.messages.get_mut(&seq) {
            m.receive_count += 1;
            if m.first_receive_ms == 0 {
                m.first_receive_ms = now_ms;
            }
        }
        self.set_state(seq, MessageState::Inflight { until_ms });
    }

    /// Checks a receipt against the message it names.
    pub fn check_receipt(&self, r: Receipt) -> Result<&CoreMessage, DeleteOutcome> {
        let m = self.messages.get(&r.sequence_number).ok_or(DeleteOutcome::Gone)?;
        if m.receive_count != r.generation {
            return Err(DeleteOutcome::Stale);
        }
        Ok(m)
    }

    /// Deletes by receipt. The latest receipt deletes even after the visibility
    /// timeout expired, as long as nobody received the message since.
    pub fn delete(&mut self, r: Receipt) -> DeleteOutcome {
        match self.check_receipt(r) {
            Ok(_) => {
                self.remove(r.sequence_number);
                DeleteOutcome::Deleted
            }
            Err(o) => o,
        }
    }

    /// Changes the visibility timeout of an in-flight message; 0 makes it visible now.
    pub fn change_visibility(&mut self, r: Receipt, timeout_secs: u32, now_ms: u64) -> VisibilityOutcome {
        let m = match self.check_receipt(r) {
            Ok(m) => m,
            Err(DeleteOutcome::Stale) => return VisibilityOutcome::Stale,
            Err(_) => return VisibilityOutcome::Gone,
        };
        match m.state {
            MessageState::Inflight { until_ms } if until_ms > now_ms => {}
            _ => return VisibilityOutcome::NotInflight,
        }
        self.apply_visibility(r.sequence_number, timeout_secs, now_ms);
        VisibilityOutcome::Changed
    }

    /// Sets a message's visibility deadline (replay and `change_visibility`).
    pub fn apply_visibility(&mut self, seq: u64, timeout_secs: u32, now_ms: u64) {
        let state = if timeout_secs == 0 {
            MessageState::Visible
        } else {
            MessageState::Inflight { until_ms: now_ms + u64::from(timeout_secs) * 1000 }
        };
        self.set_state(seq, state);
    }

    /// Removes every message.
    pub fn purge(&mut self) -> usize {
        let n = self.messages.len();
        self.messages.clear();
        self.visible.clear();
        self.delayed.clear();
        self.inflight.clear();
        n
    }

    /// Counts by state.
    pub fn counts(&mut self, now_ms: u64) -> QueueCounts {
        self.promote(now_ms);
        QueueCounts {
            visible: self.visible.len() as u64,
            inflight: self.inflight.len() as u64,
            delayed: self.delayed.len() as u64,
        }
    }

    /// The earliest moment a delayed or in-flight message becomes visible.
    pub fn next_visible_ms(&self) -> Option<u64> {
        let a = self.delayed.first().map(|x| x.0);
        let b = self.inflight.first().map(|x| x.0);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes up to `max` visible messages (oldest first) for a move.
    pub fn take_visible(&mut self, max: usize, now_ms: u64) -> Vec<CoreMessage> {
        self.promote(now_ms);
        let mut out = Vec::new();
        while out.len() < max {
            let Some(&seq) = self.visible.first() else { break };
            match self.remove(seq) {
                Some(m) => out.push(m),
                None => {
                    self.visible.remove(&seq);
                }
            }
        }
        out
    }

    /// Sequence numbers of messages past retention (any state), oldest first.
    pub fn expired(&self, retention_secs: u32, now_ms: u64) -> Vec<u64> {
        let retention_ms = u64::from(retention_secs) * 1000;
        let mut seqs: Vec<u64> = self
            .messages
            .values()
            .filter(|m| m.sent_ms + retention_ms <= now_ms)
            .map(|m| m.seq)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Every message (for checkpoints and tests), in sequence order.
    pub fn messages(&self) -> Vec<&CoreMessage> {
        let mut v: Vec<&CoreMessage> = self.messages.values().collect();
        v.sort_by_key(|m| m.seq);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(core: &mut QueueCore, delay: u32, now: u64) -> u64 {
        let m = core.prepare(
            &NewMessage { message_id: 1, payload: Bytes::from_static(b"x"), delay_secs: delay, group_id: None, dedup_id: None },
            delay,
            now,
        );
        let seq = m.seq;
        core.insert(m);
        seq
    }

    #[test]
    fn given_inflight_message_when_timeout_expires_should_reappear() {
        let mut c = QueueCore::new();
        let s = msg(&mut c, 0, 1000);
        let r = c.receive(10, 30, None, 100, 1000, 1000);
        assert_eq!(r.delivered, vec![s]);
        assert!(c.receive(10, 30, None, 100, 1000, 30_999).delivered.is_empty());
        let r = c.receive(10, 30, None, 100, 1000, 31_000);
        assert_eq!(r.delivered, vec![s]);
        assert_eq!(c.get(s).unwrap().receive_count, 2);
    }

    #[test]
    fn given_stale_receipt_when_deleting_should_not_delete() {
        let mut c = QueueCore::new();
        let s = msg(&mut c, 0, 0);
        c.receive(1, 0, None, 100, 1000, 0);
        c.receive(1, 0, None, 100, 1000, 0);
        assert_eq!(c.delete(Receipt { sequence_number: s, generation: 1 }), DeleteOutcome::Stale);
        assert_eq!(c.delete(Receipt { sequence_number: s, generation: 2 }), DeleteOutcome::Deleted);
        assert_eq!(c.delete(Receipt { sequence_number: s, generation: 2 }), DeleteOutcome::Gone);
    }

    #[test]
    fn given_max_receive_count_when_exceeded_should_dead_letter() {
        let mut c = QueueCore::new();
        msg(&mut c, 0, 0);
        assert_eq!(c.receive(1, 0, Some(2), 100, 1000, 0).delivered.len(), 1);
        assert_eq!(c.receive(1, 0, Some(2), 100, 1000, 0).delivered.len(), 1);
        let r = c.receive(1, 0, Some(2), 100, 1000, 0);
        assert!(r.delivered.is_empty());
        assert_eq!(r.dead_lettered.len(), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn given_delayed_message_should_be_counted_delayed_then_visible() {
        let mut c = QueueCore::new();
        msg(&mut c, 5, 0);
        assert_eq!(c.counts(0), QueueCounts { visible: 0, inflight: 0, delayed: 1 });
        assert_eq!(c.next_visible_ms(), Some(5000));
        assert_eq!(c.counts(5000), QueueCounts { visible: 1, inflight: 0, delayed: 0 });
    }

    #[test]
    fn given_retention_passed_should_drop_on_receive() {
        let mut c = QueueCore::new();
        msg(&mut c, 0, 0);
        let r = c.receive(1, 30, None, 60, 1000, 60_000);
        assert!(r.delivered.is_empty());
        assert_eq!(r.expired.len(), 1);
    }

    #[test]
    fn given_inflight_limit_should_report_over_limit() {
        let mut c = QueueCore::new();
        msg(&mut c, 0, 0);
        msg(&mut c, 0, 0);
        let r = c.receive(10, 30, None, 100, 1, 0);
        assert_eq!(r.delivered.len(), 1);
        assert!(r.over_limit);
    }

    #[test]
    fn given_visibility_zero_should_be_visible_again() {
        let mut c = QueueCore::new();
        let s = msg(&mut c, 0, 0);
        c.receive(1, 30, None, 100, 1000, 0);
        let rc = Receipt { sequence_number: s, generation: 1 };
        assert_eq!(c.change_visibility(rc, 0, 10), VisibilityOutcome::Changed);
        assert_eq!(c.change_visibility(rc, 10, 10), VisibilityOutcome::NotInflight);
        assert_eq!(c.receive(1, 30, None, 100, 1000, 10).delivered, vec![s]);
    }
}
