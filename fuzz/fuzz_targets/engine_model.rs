//! Fuzz target: the durable engine against its model, redb style: a sequence of store
//! operations with restarts, power cuts and checkpoints, run on `LogStore` over
//! `FaultIo` (fsync always) and on the reference `MemoryStore`.
//!
//! Input: four bytes per operation (`opcode, a, b, c`), at most 64 operations; the
//! opcode picks create/delete/update queue, send (delays, groups, dedup ids), receive
//! (attempt ids), delete, visibility change, purge, move, expire, move task, counts,
//! clock advance, clean restart, power cut (three cut modes, directory entries kept or
//! dropped) and checkpoint. It is the coverage-guided twin of the engine's proptest
//! `tests/model.rs`, whose harness it follows.
//!
//! Oracle: every answer of the two stores is equal (an acknowledged write survives any
//! later power cut, since fsync is always); at the end, and after one more power cut,
//! queues, move tasks and counts are equal, and draining every queue far in the future
//! gives the same messages in the same order.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_engine::{CutMode, FaultIo, FsyncPolicy, LogOptions, LogStore};
use sluice_store::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T0: u64 = 1_700_000_000_000;
const OPS_MAX: usize = 64;

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
}

fn decode_ops(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(4)
        .take(OPS_MAX)
        .map(|c| {
            let (op, a, b, x) = (c[0], c[1], c[2], c[3]);
            let pick = u16::from_le_bytes([a, b]);
            match op % 20 {
                0 | 1 => Op::Create { name: a % 4, fifo: b & 1 == 1, dlq: (b & 2 == 2).then_some((x % 4, 1 + x / 4 % 3)) },
                2 => Op::DeleteQueue { q: a % 8 },
                3 => Op::Update { q: a % 8, vis: b % 40, short_retention: x & 1 == 1 },
                4..=6 => Op::Send {
                    q: a % 8,
                    n: 1 + b % 3,
                    delay: if b & 0x80 != 0 { 1 + x % 4 } else { 0 },
                    group: x % 3,
                    dedup: (x & 0x40 != 0).then_some(b / 4 % 6),
                },
                7 | 8 => Op::Receive { q: a % 8, max: 1 + b % 4, vis: if x & 1 == 0 { 0 } else { x % 40 }, attempt: (b & 0x80 != 0).then_some(x % 3) },
                9 | 10 => Op::Delete { pick },
                11 => Op::ChangeVis { pick, secs: x % 30 },
                12 => Op::Purge { q: a % 8 },
                13 => Op::Move { q: a % 8, to: (b & 1 == 1).then_some(x % 8), max: 1 + b / 2 % 5 },
                14 => Op::Expire,
                15 => Op::PutTask { h: a % 3, status: b % 3 },
                16 => Op::Counts { q: a % 8 },
                17 => Op::Advance { ms: u32::from(pick) * 2 },
                18 => {
                    if a & 1 == 0 {
                        Op::Restart
                    } else {
                        Op::Crash { mode: b % 3, dirents: x & 1 == 1 }
                    }
                }
                _ => Op::Checkpoint,
            }
        })
        .collect()
}

fn opts(fs: &FaultIo) -> LogOptions {
    LogOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes: 8 << 10,
        checkpoint_every_bytes: None,
        checkpoint_every_records: None,
        idle_checkpoint_after: None,
        quiet_log_bytes: sluice_engine::limits::QUIET_LOG_BYTES_DEFAULT,
        enospc_retry: Duration::from_millis(20),
        body_cache_bytes: 4 << 10,
        // Small checkpoint ranges: a few messages make several.
        checkpoint_range_seqs: 3,
        ..LogOptions::new(fs.as_io())
    }
}

fn new_queue(name: &str, config: QueueConfig) -> NewQueue {
    NewQueue {
        name: QueueName::new("000000000000", name),
        region: "us-east-1".into(),
        attributes: BTreeMap::new(),
        config,
        tags: BTreeMap::new(),
        refuse_if_deleted_after_ms: 0,
    }
}

fn message(id: u128) -> NewMessage {
    let body = format!("m{id}:{}", "x".repeat((id % 97) as usize * 7));
    NewMessage { message_id: id, payload: Bytes::from(body), delay_secs: 0, group_id: None, dedup_id: None }
}

struct Harness {
    fs: FaultIo,
    log: Arc<LogStore>,
    mem: MemoryStore,
    queues: Vec<QueueId>,
    receipts: Vec<(QueueId, Receipt)>,
    now: u64,
    next_id: u128,
    epoch: u32,
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
        let log = LogStore::open(Path::new("/data"), opts(&fs)).expect("open an empty directory");
        Harness { fs, log, mem: MemoryStore::new(), queues: Vec::new(), receipts: Vec::new(), now: T0, next_id: 1, epoch: 0 }
    }

    fn q(&self, i: u8) -> QueueId {
        pick(&self.queues, i as usize).unwrap_or(999)
    }

    async fn reopen(&mut self, crash: Option<(CutMode, bool)>) {
        match crash {
            None => self.log.close().await.expect("clean close"),
            Some((mode, dirents)) => self.fs.power_cut(mode, dirents, self.now),
        }
        // Drop the old store (its threads stop on the dead file system) before the
        // new one touches the files.
        let old = std::mem::replace(&mut self.log, LogStore::open(Path::new("/data"), opts(&FaultIo::new())).expect("open an empty directory"));
        drop(old);
        self.fs.reboot();
        self.log = LogStore::open(Path::new("/data"), opts(&self.fs)).unwrap_or_else(|e| panic!("reopen failed: {e}"));
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
                let Some(info) = self.mem.get_queue_by_id(q).await.expect("memory store") else { return };
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
                        let mut m = message(self.next_id + u128::from(j));
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
                    // Attempt ids are not durable: never reuse one across a restart.
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
                self.log.checkpoint().await.expect("checkpoint");
            }
        }
    }

    async fn compare_all(&self) {
        let now = self.now;
        let a = self.mem.list_queues("000000000000", "", None, 1000).await.expect("memory store");
        let b = self.log.list_queues("000000000000", "", None, 1000).await.expect("log store");
        assert_eq!(a, b, "queues diverged");
        assert_eq!(
            self.mem.list_move_tasks("arn:aws:sqs:us-east-1:000000000000:q0").await.expect("memory store"),
            self.log.list_move_tasks("arn:aws:sqs:us-east-1:000000000000:q0").await.expect("log store")
        );
        for q in &self.queues {
            assert_eq!(self.mem.counts(*q, now).await, self.log.counts(*q, now).await, "counts of {q} diverged");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let ops = decode_ops(data);
    if ops.is_empty() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut h = Harness::new();
        for op in &ops {
            h.step(op).await;
        }
        h.compare_all().await;
        h.reopen(Some((CutMode::DropPages, true))).await;
        h.compare_all().await;
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
        h.log.close().await.expect("final close");
    });
});
