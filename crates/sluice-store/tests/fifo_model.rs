//! Property test of the FIFO rules against a simple model.
//!
//! Method: proptest generates random sequences of sends (to a few groups),
//! receives, deletes, visibility resets and time jumps past the visibility
//! timeout, applies them to `QueueCore` with FIFO rules, and checks after each
//! receive what AWS promises: a group's messages are delivered in send order,
//! a message is never delivered while an earlier message of its group is in
//! flight (AWS blocks only what comes after an in-flight message), and a
//! receive that could deliver does.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_store::queue_core::{MessageState, QueueCore, ReceiveRules};
use sluice_store::{NewMessage, Receipt};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
enum Op {
    Send(u8),
    Receive(usize),
    Delete(usize),
    Reset(usize),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Send),
        3 => (1usize..5).prop_map(Op::Receive),
        3 => (0usize..8).prop_map(Op::Delete),
        1 => (0usize..8).prop_map(Op::Reset),
        1 => Just(Op::Expire),
    ]
}

const VIS_SECS: u32 = 30;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn fifo_core_follows_the_group_rules(ops in proptest::collection::vec(op(), 1..80)) {
        let mut core = QueueCore::new();
        let mut now = 1_000_000u64;
        // Model: per group, the sequence numbers not yet deleted, in send order.
        let mut pending: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
        // Model: in-flight messages and their receipts.
        let mut inflight: Vec<(u8, Receipt)> = Vec::new();
        let mut group_of: HashMap<u64, u8> = HashMap::new();
        let mut next_id = 0u128;
        for op in ops {
            match op {
                Op::Send(g) => {
                    next_id += 1;
                    let m = NewMessage {
                        message_id: next_id,
                        payload: Bytes::from_static(b"x"),
                        delay_secs: 0,
                        group_id: Some(format!("g{g}")),
                        dedup_id: None,
                    };
                    let cm = core.prepare(&m, 0, now);
                    let seq = cm.seq;
                    core.insert(cm);
                    pending.entry(g).or_default().push(seq);
                    group_of.insert(seq, g);
                }
                Op::Receive(max) => {
                    let rules = ReceiveRules {
                        max,
                        visibility_timeout_secs: VIS_SECS,
                        max_receive_count: None,
                        retention_secs: 1_209_600,
                        inflight_limit: 120_000,
                        fifo: true,
                        attempt_id: None,
                    };
                    // The deliverable messages of each group: its pending
                    // messages before the first one in flight, in order.
                    let in_flight: std::collections::HashSet<u64> = inflight.iter().map(|(_, r)| r.sequence_number).collect();
                    let allowed: BTreeMap<u8, Vec<u64>> = pending
                        .iter()
                        .map(|(g, v)| (*g, v.iter().copied().take_while(|s| !in_flight.contains(s)).collect()))
                        .collect();
                    let could = allowed.values().any(|v| !v.is_empty());
                    let r = core.receive(&rules, now);
                    prop_assert!(r.delivered.len() <= max);
                    prop_assert_eq!(could, !r.delivered.is_empty(), "a receive that could deliver must deliver");
                    let mut per_group: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
                    for seq in &r.delivered {
                        per_group.entry(group_of[seq]).or_default().push(*seq);
                    }
                    for (g, got) in per_group {
                        let ok = allowed[&g].len() >= got.len() && allowed[&g][..got.len()] == got[..];
                        prop_assert!(ok, "group {} delivered {:?}, deliverable {:?}", g, got, allowed[&g]);
                    }
                    for seq in r.delivered {
                        let m = core.get(seq).unwrap();
                        let in_flight = matches!(m.state, MessageState::Inflight { .. });
                        prop_assert!(in_flight, "delivered message must be in flight");
                        inflight.push((group_of[&seq], Receipt { sequence_number: seq, generation: m.receive_count }));
                    }
                }
                Op::Delete(k) => {
                    if inflight.is_empty() {
                        continue;
                    }
                    let (g, r) = inflight.remove(k % inflight.len());
                    core.delete(r);
                    pending.get_mut(&g).unwrap().retain(|s| *s != r.sequence_number);
                }
                Op::Reset(k) => {
                    if inflight.is_empty() {
                        continue;
                    }
                    let (_, r) = inflight.remove(k % inflight.len());
                    core.change_visibility(r, 0, now);
                }
                Op::Expire => {
                    now += u64::from(VIS_SECS) * 1000;
                    inflight.clear();
                }
            }
        }
    }
}
