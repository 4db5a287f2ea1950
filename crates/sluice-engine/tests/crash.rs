//! Goal: with fsync=always a power cut at any moment loses nothing that was
//! acknowledged (RELIABILITY R3), a crash during a checkpoint or segment roll
//! recovers exactly the state before it (R5), and concurrent writers share
//! fsyncs without any answer leaving before its fsync (R4, group commit).
//!
//! Method: seeded scenarios on `FaultIo`. Four concurrent clients send,
//! receive, delete, change visibility, move and checkpoint against three
//! queues (one FIFO, one with a dead-letter queue); the file system cuts the
//! power at a random I/O operation (dropping every unsynced write, or keeping
//! a random prefix with a torn last write, or dropping random unsynced pages;
//! with or without losing unsynced directory entries). After reboot the store
//! must open, and the checker compares it with the log of acknowledgements:
//! every acknowledged send present unless its delete was acknowledged, no
//! acknowledged delete (or "already gone") resurrected, every body intact, no
//! message twice. `SLUICE_SEEDS=n` or `SLUICE_LONG_TESTS=1` run more seeds.

mod common;

use common::*;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_engine::{CutMode, FaultIo, LogOptions, LogStore};
use sluice_store::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Acks {
    attempted: HashSet<u128>,
    sent: HashSet<u128>,
    deleted_ids: HashSet<u128>,
    /// Deletes attempted, acknowledged or not: a delete answered with an error
    /// has an unknown outcome (like any 5xx) and may have taken effect.
    delete_tried: HashSet<u128>,
    gone: HashSet<(QueueId, u64)>,
    receipts: Vec<(QueueId, Receipt, u128)>,
    /// What each client did, kept only under SLUICE_DEBUG=1.
    events: Vec<String>,
    debug: bool,
}

impl Acks {
    fn event(&mut self, e: impl FnOnce() -> String) {
        if self.debug {
            self.events.push(e());
        }
    }
}

#[derive(Default, Debug)]
struct Totals {
    seeds: u64,
    acked_sends: u64,
    acked_deletes: u64,
    present: u64,
    unacked_lost_or_kept: u64,
    cuts_during_run: u64,
    direct_seeds: u64,
    direct_writes: u64,
}

async fn client(store: Arc<LogStore>, queues: Vec<QueueId>, acks: Arc<Mutex<Acks>>, clock: Arc<AtomicU64>, seed: u64, worker: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(worker));
    let now = || T0 + clock.fetch_add(100, Ordering::Relaxed);
    for k in 0..12u64 {
        let roll = rng.random_range(0..100);
        let r: Result<(), StoreError> = if roll < 35 {
            let qi = rng.random_range(0..2);
            let n = rng.random_range(1..=3u64);
            let msgs: Vec<NewMessage> = (0..n)
                .map(|j| {
                    let id = u128::from(seed) << 64 | u128::from(worker << 32 | k << 8 | j);
                    let mut m = message(id);
                    if qi == 1 {
                        m.group_id = Some(format!("g{}", id % 3));
                        m.dedup_id = Some(format!("d{id}"));
                    }
                    m
                })
                .collect();
            acks.lock().attempted.extend(msgs.iter().map(|m| m.message_id));
            let ids: Vec<u128> = msgs.iter().map(|m| m.message_id).collect();
            acks.lock().event(|| format!("w{worker} k{k} send {ids:?} to {}", queues[qi]));
            store.send(queues[qi], msgs, now()).await.map(|out| {
                let mut a = acks.lock();
                for o in out {
                    assert!(!o.duplicate, "dedup ids are unique");
                    a.sent.insert(o.message_id);
                }
            })
        } else if roll < 60 {
            let q = queues[rng.random_range(0..3)];
            let vis = if rng.random_bool(0.3) { 0 } else { rng.random_range(1..30) };
            store.receive(q, params(rng.random_range(1..=3), vis), now()).await.map(|out| {
                let mut a = acks.lock();
                a.event(|| format!("w{worker} k{k} received from {q}: {:?}", out.messages.iter().map(|m| (m.message.message_id, m.receipt)).collect::<Vec<_>>()));
                for m in out.messages {
                    assert!(payload_ok(m.message.message_id, &m.message.payload), "corrupted body served");
                    a.receipts.push((q, m.receipt, m.message.message_id));
                }
            })
        } else if roll < 80 {
            let pick = {
                let mut a = acks.lock();
                if a.receipts.is_empty() {
                    None
                } else {
                    let i = rng.random_range(0..a.receipts.len());
                    let pick = a.receipts.swap_remove(i);
                    a.delete_tried.insert(pick.2);
                    Some(pick)
                }
            };
            match pick {
                None => Ok(()),
                Some((q, r, id)) => store.delete_messages(q, &[r], now()).await.map(|out| {
                    let mut a = acks.lock();
                    match out[0] {
                        DeleteOutcome::Deleted => {
                            a.deleted_ids.insert(id);
                            a.gone.insert((q, r.sequence_number));
                        }
                        DeleteOutcome::Gone => {
                            a.gone.insert((q, r.sequence_number));
                        }
                        DeleteOutcome::Stale | DeleteOutcome::Expired => {}
                    }
                }),
            }
        } else if roll < 90 {
            let pick = {
                let a = acks.lock();
                (!a.receipts.is_empty()).then(|| a.receipts[rng.random_range(0..a.receipts.len())])
            };
            match pick {
                None => Ok(()),
                Some((q, r, _)) => store.change_visibility(q, &[(r, rng.random_range(0..20))], now()).await.map(|_| ()),
            }
        } else if roll < 96 {
            let (src, dst) = if rng.random_bool(0.5) {
                (queues[2], MoveDestination::OriginalSource)
            } else {
                (queues[0], MoveDestination::Queue(queues[2]))
            };
            store.move_messages(src, dst, 2, now()).await.map(|_| ())
        } else {
            store.checkpoint().await.map(|_| ())
        };
        acks.lock().event(|| format!("w{worker} k{k} roll {roll}: {r:?}"));
        if r.is_err() {
            return;
        }
    }
}

async fn run_seed(seed: u64, totals: &mut Totals) {
    let fs = FaultIo::new();
    // Every other group of six seeds (all cut modes, with and without
    // dropped entries) writes the log directly, as on a real file system.
    let direct = (seed / 6) & 1 == 1;
    fs.set_direct(direct);
    let mut o = opts(&fs);
    o.segment_bytes = 8 << 10;
    o.checkpoint_every_bytes = Some(24 << 10);
    let store = LogStore::open(&data_dir(), o.clone()).unwrap();
    let dlq = create(store.as_ref(), "dlq", QueueConfig::default()).await;
    let cfg = QueueConfig { redrive: Some(Redrive { dead_letter_target: dlq.name.clone(), max_receive_count: 2 }), ..Default::default() };
    let q = create(store.as_ref(), "q", cfg).await;
    let fifo = create(store.as_ref(), "f.fifo", QueueConfig { fifo: true, ..Default::default() }).await;
    let queues = vec![q.id, fifo.id, dlq.id];

    let mut rng = StdRng::seed_from_u64(seed);
    let mode = [CutMode::DropUnsynced, CutMode::KeepPrefix, CutMode::DropPages][(seed % 3) as usize];
    let drop_dirents = (seed / 3) & 1 == 0;
    fs.crash_at_op(rng.random_range(1..160), mode, drop_dirents, seed);

    let acks = Arc::new(Mutex::new(Acks { debug: std::env::var("SLUICE_DEBUG").is_ok(), ..Default::default() }));
    let clock = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..4).map(|w| tokio::spawn(client(store.clone(), queues.clone(), acks.clone(), clock.clone(), seed, w))).collect();
    for t in tasks {
        t.await.unwrap();
    }
    if fs.is_powered_off() {
        totals.cuts_during_run += 1;
    } else {
        fs.power_cut(mode, drop_dirents, seed);
    }
    let live = store.dump(T0 + clock.load(Ordering::Relaxed));
    let _ = store.close().await;
    drop(store);
    fs.reboot();

    let store = LogStore::open(&data_dir(), o).unwrap_or_else(|e| panic!("seed {seed}: open after power cut failed: {e}"));
    if std::env::var("SLUICE_DEBUG").is_ok() {
        eprintln!("report {:#?}", store.recovery_report());
        eprintln!("files {:?}", fs.files());
    }
    let dump = store.dump(T0 + clock.load(Ordering::Relaxed));
    check(seed, mode, drop_dirents, &acks.lock(), &dump, &live, totals);
    store.close().await.unwrap();
    let (made, misaligned) = fs.direct_write_counts();
    assert_eq!(misaligned, 0, "seed {seed}: a misaligned direct write");
    totals.direct_writes += made;
    if direct {
        totals.direct_seeds += 1;
    }
}

fn check(seed: u64, mode: CutMode, drop_dirents: bool, a: &Acks, dump: &sluice_engine::StateDump, live: &sluice_engine::StateDump, totals: &mut Totals) {
    let mut present: HashMap<u128, (QueueId, u64)> = HashMap::new();
    for qd in &dump.queues {
        for m in &qd.messages {
            let id = m.message.message_id;
            assert!(a.attempted.contains(&id), "seed {seed}: message {id} was never sent");
            assert!(payload_ok(id, &m.message.payload), "seed {seed}: body of {id} corrupted");
            assert!(present.insert(id, (qd.info.id, m.message.sequence_number)).is_none(), "seed {seed}: {id} present twice");
            assert!(!a.gone.contains(&(qd.info.id, m.message.sequence_number)), "seed {seed}: acknowledged delete of {id} resurrected");
        }
    }
    for id in &a.sent {
        if !a.delete_tried.contains(id) {
            if !present.contains_key(id) {
                for e in &a.events {
                    eprintln!("{e}");
                }
                eprintln!("LIVE {:?}", live.queues.iter().map(|q| (q.info.id, q.messages.iter().map(|m| (m.message.sequence_number, m.state, m.message.receive_count)).collect::<Vec<_>>())).collect::<Vec<_>>());
                eprintln!("RECOVERED {:?}", dump.queues.iter().map(|q| (q.info.id, q.messages.iter().map(|m| (m.message.sequence_number, m.state, m.message.receive_count)).collect::<Vec<_>>())).collect::<Vec<_>>());
                eprintln!("{:#?}", dump.queues.iter().map(|q| (q.info.id, q.messages.iter().map(|m| (m.message.message_id, m.message.sequence_number)).collect::<Vec<_>>())).collect::<Vec<_>>());
            }
            assert!(present.contains_key(id), "seed {seed}: acknowledged send {id} lost ({mode:?}, drop_dirents {drop_dirents})");
        }
    }
    for id in &a.deleted_ids {
        assert!(!present.contains_key(id), "seed {seed}: deleted {id} resurrected");
    }
    totals.seeds += 1;
    totals.acked_sends += a.sent.len() as u64;
    totals.acked_deletes += a.deleted_ids.len() as u64;
    totals.present += present.len() as u64;
    totals.unacked_lost_or_kept += (a.attempted.len() - a.sent.len()) as u64;
}

#[test]
fn given_power_cut_at_any_point_with_fsync_always_should_lose_nothing_acknowledged() {
    let n = iterations(10_000, 100_000);
    let rt = runtime();
    let mut totals = Totals::default();
    let started = std::time::Instant::now();
    rt.block_on(async {
        let first = std::env::var("SLUICE_SEED_FROM").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        for seed in first..first + n {
            run_seed(seed, &mut totals).await;
        }
    });
    println!("R3 power loss: {totals:?} in {:?}", started.elapsed());
    assert_eq!(totals.seeds, n);
    assert!(totals.cuts_during_run > n / 2, "most cuts should land while clients run: {totals:?}");
    if n >= 12 {
        assert!(totals.direct_seeds >= n / 3 && totals.direct_writes > totals.direct_seeds, "direct writes ran: {totals:?}");
    }
}

/// R5: a crash at each I/O step of a checkpoint (temp file, fsync, rename,
/// directory fsync, pruning) recovers exactly the state before it.
#[test]
fn given_crash_at_every_step_of_a_checkpoint_should_recover_the_same_state() {
    let rt = runtime();
    rt.block_on(async {
        // Through the page cache, then with direct writes.
        for direct in [false, true] {
            let fs = FaultIo::new();
            fs.set_direct(direct);
            let mut o = opts(&fs);
            o.segment_bytes = 4 << 10;
            let store = LogStore::open(&data_dir(), o.clone()).unwrap();
            let q = create(store.as_ref(), "q", QueueConfig::default()).await;
            for round in 0..3u128 {
                store.send(q.id, (0..20).map(|i| message(round * 100 + i)).collect(), T0).await.unwrap();
                let r = store.receive(q.id, params(5, 30), T0 + 1).await.unwrap();
                store.delete_messages(q.id, &[r.messages[0].receipt], T0 + 2).await.unwrap();
                store.checkpoint().await.unwrap();
            }
            store.send(q.id, vec![message(999)], T0 + 3).await.unwrap();
            let before = store.dump(T0 + 3);
            store.close().await.unwrap();
            drop(store);
            let mut completed = false;
            for k in 1..200 {
                let f = fs.fork();
                let s = LogStore::open(&data_dir(), LogOptions { io: f.as_io(), ..o.clone() }).unwrap();
                f.crash_at_op(k, CutMode::KeepPrefix, k % 2 == 0, k);
                let ok = s.checkpoint().await.is_ok() && !f.is_powered_off();
                if !f.is_powered_off() {
                    f.power_cut(CutMode::DropUnsynced, true, k);
                }
                drop(s);
                f.reboot();
                let s = LogStore::open(&data_dir(), LogOptions { io: f.as_io(), ..o.clone() }).unwrap_or_else(|e| panic!("crash at op {k}: {e}"));
                assert_eq!(s.dump(T0 + 3), before, "crash at checkpoint op {k}");
                assert_eq!(f.direct_write_counts().1, 0, "crash at checkpoint op {k}");
                if ok {
                    let into_checkpoints = f.direct_writes_under(&data_dir().join("checkpoint"));
                    assert_eq!(into_checkpoints > 0, direct, "the checkpoint's index written directly: {into_checkpoints}");
                    completed = true;
                    break;
                }
            }
            assert!(completed, "the checkpoint never completed");
            assert_eq!(fs.direct_write_counts().1, 0);
        }
    });
}

/// A store over `fs` with a queue; large segments: these tests count commit
/// fsyncs, not segment rolls.
async fn store_and_queue(fs: &FaultIo) -> (Arc<LogStore>, QueueId) {
    let store = LogStore::open(&data_dir(), LogOptions { segment_bytes: 64 << 20, ..opts(fs) }).unwrap();
    let q = create(store.as_ref(), "q", QueueConfig::default()).await.id;
    (store, q)
}

/// R4 and group commit: 100 senders arriving while one fsync is held open
/// share the next fsync; none is answered before the fsync covering it.
#[test]
fn given_many_concurrent_senders_should_share_fsyncs_and_answer_only_after_them() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let fs = FaultIo::new();
        let (store, q) = store_and_queue(&fs).await;
        let before = store.stats();
        fs.pause_fsyncs(true);
        let first = {
            let s = store.clone();
            tokio::spawn(async move { s.send(q, vec![message(0)], T0).await })
        };
        while fs.fsyncs_blocked() == 0 {
            tokio::task::yield_now().await;
        }
        let senders: Vec<_> = (1..=100u128)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.send(q, vec![message(i)], T0).await })
            })
            .collect();
        while store.stats().records < before.records + 101 {
            tokio::task::yield_now().await;
        }
        assert!(!first.is_finished(), "answered before its fsync returned");
        assert!(senders.iter().all(|t| !t.is_finished()), "answered before the fsync covering it");
        fs.pause_fsyncs(false);
        first.await.unwrap().unwrap();
        for t in senders {
            t.await.unwrap().unwrap();
        }
        let after = store.stats();
        let fsyncs = after.fsyncs - before.fsyncs;
        println!("group commit: 101 sends, {fsyncs} fsyncs, {} writer rounds", after.rounds - before.rounds);
        assert!(fsyncs <= 3, "101 sends took {fsyncs} fsyncs");
        assert!(fsyncs < 101);
    });
}

/// Waits, yielding, until `done` holds; panics with `what` if it does not
/// within a minute (a hang guard, not a timing check).
async fn until(what: &str, done: impl Fn() -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "{what}");
        tokio::task::yield_now().await;
    }
}

type Sending = tokio::task::JoinHandle<Result<Vec<SendOutcome>, StoreError>>;

/// Starts two sends while the log's writes are held, so the writer finds
/// the second appended when the first is written; then, with fsyncs held,
/// lets the first round's writes go: it goes to the syncer, whose fsync
/// blocks; then the second round's, written meanwhile. Returns the two
/// sends once both rounds are written; the first fsync is still held and
/// covers only the first round.
async fn two_rounds_one_fsync_held(
    store: &Arc<LogStore>,
    fs: &FaultIo,
    q: QueueId,
    writes_per_round: u64,
) -> (Sending, Sending) {
    let before = store.stats();
    fs.pause_writes(true);
    fs.pause_fsyncs(true);
    let send = |id: u128| {
        let s = store.clone();
        tokio::spawn(async move { s.send(q, vec![message(id)], T0).await })
    };
    let first = send(1);
    until("the first round's write never started", || fs.writes_blocked() == 1).await;
    let writes = fs.write_count();
    let second = send(2);
    until("the second send was not appended", || store.stats().records == before.records + 2).await;
    fs.pause_writes_after(writes_per_round);
    until("the first round's fsync never started", || fs.fsyncs_blocked() == 1).await;
    assert_eq!(fs.write_count(), writes + writes_per_round);
    fs.pause_writes(false);
    until("the second round was not written while the first fsync was held", || fs.write_count() == writes + 2 * writes_per_round).await;
    assert_eq!(store.stats().rounds, before.rounds + 2);
    (first, second)
}

/// With `fsync always` the syncer fsyncs a round while the writer writes the
/// next: a send that arrives during a round is written while that round's
/// fsync is held open, and answered only after an fsync issued after its
/// write returned. `FaultIo`'s fsync makes durable only what was written
/// before it was called, as a device's cache flush does, so answering the
/// second send on the strength of the first fsync would show as a loss
/// after the power cut.
#[test]
fn given_a_send_written_during_an_fsync_should_answer_it_only_after_a_later_fsync() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for (seed, direct) in [(1, false), (2, true)] {
            let fs = FaultIo::new();
            fs.set_direct(direct);
            let o = LogOptions { segment_bytes: 64 << 20, ..opts(&fs) };
            let store = LogStore::open(&data_dir(), o.clone()).unwrap();
            let q = create(store.as_ref(), "q", QueueConfig::default()).await.id;
            let before = store.stats();
            // A buffered round writes its marker and its records; a direct one
            // both in one write.
            let (first, second) = two_rounds_one_fsync_held(&store, &fs, q, if direct { 1 } else { 2 }).await;
            assert_eq!(fs.fsyncs_blocked(), 1, "one fsync at a time");
            assert!(!first.is_finished() && !second.is_finished(), "answered before an fsync covering it returned");
            fs.pause_fsyncs(false);
            first.await.unwrap().unwrap();
            second.await.unwrap().unwrap();
            let fsyncs = store.stats().fsyncs - before.fsyncs;
            assert_eq!(fsyncs, 2, "the second send needs an fsync of its own");
            let live = store.dump(T0);
            assert_eq!(live.queues[0].messages.len(), 2);
            fs.power_cut(CutMode::DropUnsynced, true, seed);
            let _ = store.close().await;
            drop(store);
            fs.reboot();
            let store = LogStore::open(&data_dir(), o).unwrap_or_else(|e| panic!("open after the cut: {e}"));
            assert_eq!(store.dump(T0), live, "direct writes {direct}: both acknowledged sends survive");
        }
    });
}

/// R7 with a round written while the failing fsync is held open: both sends
/// fail, nothing is fsynced after the failure (fsyncgate), and the log stays
/// failed.
#[test]
fn given_an_fsync_error_while_the_next_round_is_written_should_fail_both_and_fsync_nothing_after() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let fs = FaultIo::new();
        let (store, q) = store_and_queue(&fs).await;
        let (first, second) = two_rounds_one_fsync_held(&store, &fs, q, 2).await;
        fs.fail_nth_fsync(1);
        // The held fsync is counted when it returns.
        let fsyncs = fs.fsync_count();
        fs.pause_fsyncs(false);
        assert!(matches!(first.await.unwrap(), Err(StoreError::Unavailable(_))));
        assert!(matches!(second.await.unwrap(), Err(StoreError::Unavailable(_))));
        assert!(matches!(store.send(q, vec![message(3)], T0).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(store.health(), sluice_engine::Health::Failed(_)));
        assert!(store.close().await.is_err(), "close reports the failure");
        assert_eq!(fs.fsync_count(), fsyncs + 1, "fail-stop: no fsync after the failed one");
    });
}

/// A round with nothing after it is fsynced by the writer itself, one
/// handed over by the syncer: either way, one send at a time takes one round
/// and one fsync, never a second one from the other thread.
#[test]
fn given_one_send_at_a_time_each_should_take_one_round_and_one_fsync() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let fs = FaultIo::new();
        let (store, q) = store_and_queue(&fs).await;
        let before = store.stats();
        for i in 0..20 {
            store.send(q, vec![message(i)], T0).await.unwrap();
        }
        let after = store.stats();
        assert_eq!(after.fsyncs - before.fsyncs, 20);
        assert_eq!(after.rounds - before.rounds, 20);
    });
}

/// Direct writes (`O_DIRECT`) rewrite the block the log ends in and pad each
/// round to a block's end. Records of every size, rounds of one or several
/// batches, writes of many blocks at any offset, a round so large that the
/// writer's buffer shrinks after it, and segment rolls all come back exactly
/// after a power cut of each kind: every send was acknowledged, so every one
/// must be there, byte for byte.
#[test]
fn given_direct_writes_of_every_size_a_power_cut_should_keep_every_acknowledged_record() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for (seed, mode) in [(1, CutMode::DropUnsynced), (2, CutMode::KeepPrefix), (3, CutMode::DropPages)] {
            let fs = FaultIo::new();
            fs.set_direct(true);
            let o = LogOptions { segment_bytes: 1 << 20, ..opts(&fs) };
            let store = LogStore::open(&data_dir(), o.clone()).unwrap();
            let q = create(store.as_ref(), "q", QueueConfig::default()).await;
            let sizes = [1usize, 100, 4000, 4096, 4097, 9000, 20_000, 3, 8192, 12_345, 600_000];
            let mut next = 0u128;
            for round in 0..60usize {
                // Three sends at once: often one round of several batches.
                let mut tasks = Vec::new();
                for k in 0..3 {
                    let n = 1 + (round + k) % 3;
                    let msgs: Vec<NewMessage> = (0..n)
                        .map(|j| {
                            next += 1;
                            let size = sizes[(round * 3 + k + j) % sizes.len()];
                            let body: Vec<u8> = (0..size).map(|i| (next as usize * 31 + i) as u8).collect();
                            NewMessage { message_id: next, payload: body.into(), delay_secs: 0, group_id: None, dedup_id: None }
                        })
                        .collect();
                    let s = store.clone();
                    let id = q.id;
                    tasks.push(tokio::spawn(async move { s.send(id, msgs, T0).await }));
                }
                for t in tasks {
                    t.await.unwrap().unwrap();
                }
            }
            let live = store.dump(T0);
            assert_eq!(live.queues[0].messages.len() as u128, next);
            fs.power_cut(mode, true, seed);
            let _ = store.close().await;
            drop(store);
            fs.reboot();
            let store = LogStore::open(&data_dir(), o).unwrap_or_else(|e| panic!("{mode:?}: open after the cut: {e}"));
            assert_eq!(store.dump(T0), live, "{mode:?}: every acknowledged record, byte for byte");
            let (made, misaligned) = fs.direct_write_counts();
            assert_eq!(misaligned, 0);
            assert!(made > 60, "direct writes made: {made}");
            assert!(store.recovery_report().segments_replayed > 8, "{:?}", store.recovery_report());
        }
    });
}
