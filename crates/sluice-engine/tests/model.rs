//! Goal (RELIABILITY R6): `LogStore` is observationally identical to the
//! reference `MemoryStore`, across restarts, power cuts and checkpoints.
//!
//! Method: proptest generates sequences of operations (create/delete/update
//! queue, send with delays, groups and dedup ids, receive with attempt ids,
//! delete, visibility change, purge, move to a queue or back to the source,
//! expiry, move tasks, counts) interleaved with restarts, power cuts (fsync
//! always, so nothing acknowledged may go) and checkpoints. Both stores get the
//! same calls with the same `now_ms` (a clock that only moves forward); every
//! answer is compared, and at the end every queue's counts and messages.
//! `CheckpointDuring` runs operations between the ranges of a fuzzy
//! checkpoint (a test hook pauses it after each), so that recovery replays a
//! window of records logged while it was taken.
//! Attempt ids are never reused across a restart: the attempt table is not
//! durable (see the crate docs). 10 000 cases normally (RELIABILITY R6); `SLUICE_LONG_TESTS=1`
//! runs 100 000 (`SLUICE_SEEDS=n` overrides).

mod common;

use common::*;
use proptest::prelude::*;
use sluice_engine::{CutMode, FaultIo, LogOptions, LogStore};
use sluice_store::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
enum Op {
    Create { name: u8, fifo: bool, dlq: Option<(u8, u8)> },
    DeleteQueue { q: u8 },
    Update { q: u8, vis: u8, short_retention: bool },
    Send { q: u8, n: u8, delay: u8, group: u8, dedup: Option<u8> },
    Receive { q: u8, max: u8, vis: u8, attempt: Option<u8> },
    Delete { pick: u16 },
    ChangeVis { pick: u16, secs: u8 },
    Purge { q: u8 },
    Move { q: u8, to: Option<u8>, max: u8 },
    Expire,
    PutTask { h: u8, status: u8 },
    Counts { q: u8 },
    Advance { ms: u32 },
    Restart,
    Crash { mode: u8, dirents: bool },
    Checkpoint,
    /// A checkpoint during which these operations run, one after each
    /// range it writes (as requests would meanwhile); then `after`: nothing,
    /// a restart or a power cut, so the window is replayed.
    CheckpointDuring { ops: Vec<Op>, after: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => state_op(),
        3 => Just(Op::Restart),
        3 => (0..3u8, any::<bool>()).prop_map(|(mode, dirents)| Op::Crash { mode, dirents }),
        1 => Just(Op::Checkpoint),
        4 => (proptest::collection::vec(state_op(), 1..10), 0..3u8).prop_map(|(ops, after)| Op::CheckpointDuring { ops, after }),
    ]
}

/// Operations on the state (no restart, crash or checkpoint).
fn state_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4u8, any::<bool>(), proptest::option::of((0..4u8, 1..4u8))).prop_map(|(name, fifo, dlq)| Op::Create { name, fifo, dlq }),
        1 => (0..8u8).prop_map(|q| Op::DeleteQueue { q }),
        1 => (0..8u8, 0..40u8, any::<bool>()).prop_map(|(q, vis, short_retention)| Op::Update { q, vis, short_retention }),
        8 => (0..8u8, 1..4u8, prop_oneof![4 => Just(0u8), 1 => 1..5u8], 0..3u8, proptest::option::of(0..6u8))
            .prop_map(|(q, n, delay, group, dedup)| Op::Send { q, n, delay, group, dedup }),
        6 => (0..8u8, 1..5u8, prop_oneof![Just(0u8), 1..40u8], proptest::option::of(0..3u8))
            .prop_map(|(q, max, vis, attempt)| Op::Receive { q, max, vis, attempt }),
        4 => any::<u16>().prop_map(|pick| Op::Delete { pick }),
        2 => (any::<u16>(), 0..30u8).prop_map(|(pick, secs)| Op::ChangeVis { pick, secs }),
        1 => (0..8u8).prop_map(|q| Op::Purge { q }),
        2 => (0..8u8, proptest::option::of(0..8u8), 1..6u8).prop_map(|(q, to, max)| Op::Move { q, to, max }),
        1 => Just(Op::Expire),
        1 => (0..3u8, 0..3u8).prop_map(|(h, status)| Op::PutTask { h, status }),
        2 => (0..8u8).prop_map(|q| Op::Counts { q }),
        4 => (0..70_000u32).prop_map(|ms| Op::Advance { ms }),
    ]
}

struct Harness {
    fs: FaultIo,
    opts: LogOptions,
    log: Arc<LogStore>,
    mem: MemoryStore,
    queues: Vec<QueueId>,
    receipts: Vec<(QueueId, Receipt)>,
    now: u64,
    next_id: u128,
    epoch: u32,
    /// While set, the checkpoint's range hook reports each range and waits.
    armed: Arc<AtomicBool>,
    ranges: tokio::sync::mpsc::UnboundedReceiver<()>,
    go_on: std::sync::mpsc::Sender<()>,
}

fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[i % v.len()])
}

/// Compares the answers of both stores for one call.
macro_rules! both {
    ($h:expr, $what:expr, |$s:ident| $call:expr) => {{
        let a = {
            let $s: &dyn Store = &$h.mem;
            $call.await
        };
        let b = {
            let $s: &dyn Store = $h.log.as_ref();
            $call.await
        };
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{} diverged", $what);
        a
    }};
}

impl Harness {
    fn new() -> Harness {
        let fs = FaultIo::new();
        let mut opts = opts(&fs);
        opts.segment_bytes = 8 << 10;
        // Small ranges: a queue of a few messages takes several.
        opts.checkpoint_range_seqs = 3;
        let armed = Arc::new(AtomicBool::new(false));
        let (range_tx, ranges) = tokio::sync::mpsc::unbounded_channel();
        let (go_on, go_rx) = std::sync::mpsc::channel();
        let go_rx = Mutex::new(go_rx);
        let a = armed.clone();
        opts.checkpoint_range_hook = Some(Arc::new(move || {
            if a.load(Ordering::SeqCst) && range_tx.send(()).is_ok() {
                let _ = go_rx.lock().unwrap().recv();
            }
        }));
        let log = LogStore::open(&data_dir(), opts.clone()).unwrap();
        Harness {
            fs,
            opts,
            log,
            mem: MemoryStore::new(),
            queues: Vec::new(),
            receipts: Vec::new(),
            now: T0,
            next_id: 1,
            epoch: 0,
            armed,
            ranges,
            go_on,
        }
    }

    fn q(&self, i: u8) -> QueueId {
        pick(&self.queues, i as usize).unwrap_or(999)
    }

    async fn reopen(&mut self, crash: Option<(CutMode, bool)>) {
        match crash {
            None => self.log.close().await.unwrap(),
            Some((mode, dirents)) => self.fs.power_cut(mode, dirents, self.now),
        }
        // Drop the old store before the new one touches the files.
        let old = std::mem::replace(&mut self.log, LogStore::open(&data_dir(), LogOptions { io: Arc::new(FaultIo::new()), ..self.opts.clone() }).unwrap());
        drop(old);
        self.fs.reboot();
        self.log = LogStore::open(&data_dir(), self.opts.clone()).unwrap_or_else(|e| panic!("reopen failed: {e}"));
        // A visible checkpoint is always whole: none may be set aside (the
        // fallback would hide a checkpoint that recovery cannot read).
        let report = self.log.recovery_report();
        assert!(report.rejected_checkpoints.is_empty(), "{report:?}");
        self.epoch += 1;
    }

    async fn step(&mut self, op: &Op) {
        let now = self.now;
        match op.clone() {
            Op::Create { name, fifo, dlq } => {
                let mut config = QueueConfig { fifo, ..Default::default() };
                if let Some((d, n)) = dlq {
                    config.redrive = Some(Redrive { dead_letter_target: QueueName::new("000000000000", format!("q{d}")), max_receive_count: n.into() });
                }
                let mut nq = new_queue(&format!("q{name}"), config);
                nq.refuse_if_deleted_after_ms = now.saturating_sub(60_000);
                let r = both!(self, "create", |s| s.create_queue(nq.clone(), now));
                if let Ok(CreateOutcome::Created(i)) = r {
                    self.queues.push(i.id);
                }
            }
            Op::DeleteQueue { q } => {
                let q = self.q(q);
                let _ = both!(self, "delete queue", |s| s.delete_queue(q, now));
            }
            Op::Update { q, vis, short_retention } => {
                let q = self.q(q);
                let info = self.mem.get_queue_by_id(q).await.unwrap();
                let Some(info) = info else { return };
                let mut config = info.config.clone();
                config.visibility_timeout_secs = vis.into();
                config.retention_secs = if short_retention { 60 } else { 345_600 };
                let attrs = BTreeMap::from([("VisibilityTimeout".to_string(), vis.to_string())]);
                let u = QueueUpdate { attributes: Some((attrs, config)), tags: None, last_purge_ms: None };
                let _ = both!(self, "update", |s| s.update_queue(q, u.clone(), now));
            }
            Op::Send { q, n, delay, group, dedup } => {
                let q = self.q(q);
                let msgs: Vec<NewMessage> = (0..n)
                    .map(|j| {
                        let id = self.next_id + u128::from(j);
                        let mut m = message(id);
                        m.delay_secs = delay.into();
                        m.group_id = Some(format!("g{group}"));
                        m.dedup_id = dedup.map(|d| format!("d{}", d + j));
                        m
                    })
                    .collect();
                self.next_id += u128::from(n);
                let _ = both!(self, "send", |s| s.send(q, msgs.clone(), now));
            }
            Op::Receive { q, max, vis, attempt } => {
                let q = self.q(q);
                let p = ReceiveParams {
                    max: max.into(),
                    visibility_timeout_secs: vis.into(),
                    inflight_limit: 120_000,
                    attempt_id: attempt.map(|a| format!("e{}-a{a}", self.epoch)),
                };
                if let Ok(out) = both!(self, "receive", |s| s.receive(q, p.clone(), now)) {
                    self.receipts.extend(out.messages.iter().map(|m| (q, m.receipt)));
                }
            }
            Op::Delete { pick: i } => {
                if let Some((q, r)) = pick(&self.receipts, i.into()) {
                    let _ = both!(self, "delete", |s| s.delete_messages(q, &[r], now));
                }
            }
            Op::ChangeVis { pick: i, secs } => {
                if let Some((q, r)) = pick(&self.receipts, i.into()) {
                    let _ = both!(self, "change visibility", |s| s.change_visibility(q, &[(r, secs.into())], now));
                }
            }
            Op::Purge { q } => {
                let q = self.q(q);
                let _ = both!(self, "purge", |s| s.purge(q, now));
            }
            Op::Move { q, to, max } => {
                let q = self.q(q);
                let dest = match to {
                    Some(t) => MoveDestination::Queue(self.q(t)),
                    None => MoveDestination::OriginalSource,
                };
                let _ = both!(self, "move", |s| s.move_messages(q, dest, max.into(), now));
            }
            Op::Expire => {
                let _ = both!(self, "expire", |s| s.expire(now));
            }
            Op::PutTask { h, status } => {
                let task = MoveTask {
                    task_handle: format!("h{h}"),
                    source_arn: "arn:aws:sqs:us-east-1:000000000000:q0".into(),
                    destination_arn: None,
                    max_per_second: Some(h.into()),
                    status: ["RUNNING", "COMPLETED", "CANCELLED"][status as usize].into(),
                    moved: status.into(),
                    to_move: 3,
                    started_ms: now,
                    failure_reason: None,
                };
                let _ = both!(self, "put move task", |s| s.put_move_task(task.clone()));
            }
            Op::Counts { q } => {
                let q = self.q(q);
                let _ = both!(self, "counts", |s| s.counts(q, now));
            }
            Op::Advance { ms } => self.now += u64::from(ms),
            Op::Restart => self.reopen(None).await,
            Op::Crash { mode, dirents } => {
                let mode = [CutMode::DropUnsynced, CutMode::KeepPrefix, CutMode::DropPages][mode as usize];
                self.reopen(Some((mode, dirents))).await;
            }
            Op::Checkpoint => {
                self.log.checkpoint().await.unwrap();
            }
            Op::CheckpointDuring { ops, after } => {
                self.armed.store(true, Ordering::SeqCst);
                let log = self.log.clone();
                let mut ck = tokio::spawn(async move { log.checkpoint().await });
                let mut next = 0;
                loop {
                    let range_done = tokio::select! {
                        r = self.ranges.recv() => r.is_some(),
                        r = &mut ck => {
                            r.unwrap().unwrap();
                            break;
                        }
                    };
                    assert!(range_done);
                    if let Some(op) = ops.get(next) {
                        Box::pin(self.step(op)).await;
                        next += 1;
                    }
                    self.go_on.send(()).unwrap();
                }
                self.armed.store(false, Ordering::SeqCst);
                for op in &ops[next..] {
                    Box::pin(self.step(op)).await;
                }
                match after {
                    0 => {}
                    1 => self.reopen(None).await,
                    _ => self.reopen(Some((CutMode::DropPages, true))).await,
                }
            }
        }
    }

    async fn compare_all(&self) {
        let now = self.now;
        let a = self.mem.list_queues("000000000000", "", None, 1000).await.unwrap();
        let b = self.log.list_queues("000000000000", "", None, 1000).await.unwrap();
        assert_eq!(a, b, "queues diverged");
        assert_eq!(
            self.mem.list_move_tasks("arn:aws:sqs:us-east-1:000000000000:q0").await.unwrap(),
            self.log.list_move_tasks("arn:aws:sqs:us-east-1:000000000000:q0").await.unwrap()
        );
        for q in &self.queues {
            let ca = self.mem.counts(*q, now).await;
            let cb = self.log.counts(*q, now).await;
            assert_eq!(ca, cb, "counts of {q} diverged");
        }
    }
}

fn run(ops: Vec<Op>) {
    let rt = runtime();
    rt.block_on(async {
        let mut h = Harness::new();
        for op in &ops {
            h.step(op).await;
        }
        h.compare_all().await;
        // A last restart must not change anything either.
        h.reopen(Some((CutMode::DropPages, true))).await;
        h.compare_all().await;
        // Drain every queue far in the future: same messages, same order.
        let later = h.now + 10_000_000;
        for q in h.queues.clone() {
            let p = ReceiveParams { max: 10, visibility_timeout_secs: 30_000, inflight_limit: 120_000, attempt_id: None };
            loop {
                let r = both!(h, "final drain", |s| s.receive(q, p.clone(), later));
                if !r.map(|o| !o.messages.is_empty()).unwrap_or(false) {
                    break;
                }
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: iterations(10_000, 100_000) as u32,
        max_shrink_iters: 2000,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct("tests/model.proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn given_any_operation_sequence_with_restarts_log_store_should_match_the_memory_store(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
