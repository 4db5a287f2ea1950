//! Goal: a checkpoint taken while requests keep running (a fuzzy checkpoint:
//! ranges under each queue's lock, a short tail under the freeze) restores
//! exactly the state the store had, with real concurrency rather than the
//! paused hook of `model.rs`: records land at the very position a range was
//! taken at, dead-letter moves cross queues between their ranges, and
//! compaction moves bodies meanwhile.
//!
//! Method: four tasks send, receive (a short visibility timeout, so that
//! messages come back and reach the dead-letter queue), delete and change
//! visibility on a standard queue with a dead-letter queue and on a FIFO
//! queue, while a blocking thread takes checkpoints in a loop with small
//! ranges. Once the load stops, the state is dumped; a power cut (fsync
//! always: nothing acknowledged may go) and a restart must give the same
//! dump, bodies included, and so must a second restart.

mod common;

use common::*;
use sluice_engine::{CutMode, FaultIo, LogOptions, LogStore};
use sluice_store::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const WORKERS: u64 = 4;

async fn work(store: Arc<LogStore>, queues: [QueueId; 2], fifo: QueueId, worker: u64, rounds: u64, clock: Arc<AtomicU64>) {
    let mut id = u128::from(worker) << 64;
    for round in 0..rounds {
        let now = clock.fetch_add(1, Ordering::SeqCst);
        let q = queues[(round % 2) as usize];
        let batch: Vec<NewMessage> = (0..5)
            .map(|_| {
                id += 1;
                message(id)
            })
            .collect();
        store.send(q, batch, now).await.unwrap();
        let fifo_batch: Vec<NewMessage> = (0..3)
            .map(|j| {
                id += 1;
                NewMessage { group_id: Some(format!("g{}", (round + j) % 3)), dedup_id: Some(format!("d{id}")), ..message(id) }
            })
            .collect();
        store.send(fifo, fifo_batch, now).await.unwrap();
        // Visibility 0 or 1 s on a clock of 1 ms a call: messages come
        // back soon and are dead-lettered after their third receive.
        let got = store.receive(q, params(10, (round % 2) as u32), now).await.unwrap();
        for (k, m) in got.messages.iter().enumerate() {
            match k % 3 {
                0 => {
                    store.delete_messages(q, &[m.receipt], now).await.unwrap();
                }
                1 => {
                    store.change_visibility(q, &[(m.receipt, 0)], now).await.unwrap();
                }
                _ => {}
            }
        }
        let got = store.receive(fifo, params(10, 30), now).await.unwrap();
        let receipts: Vec<Receipt> = got.messages.iter().map(|m| m.receipt).collect();
        if round % 4 != 3 {
            store.delete_messages(fifo, &receipts, now).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_load_during_checkpoints_a_power_cut_and_restart_should_restore_the_same_state() {
    let fs = FaultIo::new();
    let o = LogOptions { checkpoint_range_seqs: 16, body_cache_bytes: 0, ..opts(&fs) };
    let store = LogStore::open(&data_dir(), o.clone()).unwrap();
    let dlq = create(store.as_ref(), "dlq", QueueConfig::default()).await;
    let redrive = Some(Redrive { dead_letter_target: dlq.name.clone(), max_receive_count: 3 });
    let a = create(store.as_ref(), "a", QueueConfig { redrive: redrive.clone(), ..QueueConfig::default() }).await.id;
    let b = create(store.as_ref(), "b", QueueConfig { redrive, ..QueueConfig::default() }).await.id;
    let fifo = create(store.as_ref(), "f.fifo", QueueConfig { fifo: true, ..QueueConfig::default() }).await.id;
    // A backlog for the ranges, spread over many segments.
    for k in 0..40u128 {
        let batch: Vec<NewMessage> = (0..10).map(|j| message(1_000_000 + k * 10 + j)).collect();
        store.send(if k % 2 == 0 { a } else { b }, batch, T0).await.unwrap();
    }
    let clock = Arc::new(AtomicU64::new(T0 + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let checkpointer = {
        let (s, stop) = (store.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                s.checkpoint_blocking().unwrap();
                n += 1;
            }
            n
        })
    };
    let rounds = iterations(150, 1_500);
    let workers: Vec<_> = (0..WORKERS).map(|w| tokio::spawn(work(store.clone(), [a, b], fifo, w, rounds, clock.clone()))).collect();
    for w in workers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let checkpoints = checkpointer.await.unwrap();
    assert!(checkpoints >= 2, "checkpoints ran during the load: {checkpoints}");
    let now = clock.load(Ordering::SeqCst) + 5_000;
    let before = store.dump(now);
    let dead = before.queues.iter().find(|q| q.info.id == dlq.id).map_or(0, |q| q.messages.len());
    assert!(dead > 0, "the load dead-lettered messages");
    assert!(before.queues.iter().flat_map(|q| &q.messages).all(|m| !m.message.payload.starts_with(b"<unreadable")));

    fs.power_cut(CutMode::DropPages, true, 7);
    drop(store);
    fs.reboot();
    let store = LogStore::open(&data_dir(), o.clone()).unwrap();
    let report = store.recovery_report();
    assert!(report.checkpoint.is_some() && report.rejected_checkpoints.is_empty(), "the newest checkpoint was used: {report:?}");
    assert_eq!(store.dump(now), before, "state after the power cut");
    store.close().await.unwrap();
    drop(store);
    let store = LogStore::open(&data_dir(), o).unwrap();
    assert_eq!(store.dump(now), before, "state after a second restart");
    eprintln!(
        "{checkpoints} checkpoints under load; {} messages, {dead} dead-lettered",
        before.queues.iter().map(|q| q.messages.len()).sum::<usize>()
    );
}

/// The store and queue the hook works on, once open.
type Target = Option<(Arc<LogStore>, QueueId)>;

/// A store whose only checkpoint has a window: while its ranges are written,
/// the hook sends one message and deletes one of the backlog (ids 0..60) per
/// range, through the runtime `handle`.
fn store_with_a_window(fs: &FaultIo, handle: tokio::runtime::Handle) -> (Arc<LogStore>, QueueId, LogOptions) {
    let slot: Arc<std::sync::Mutex<Target>> = Arc::default();
    let armed = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let hook = {
        let (slot, armed, next, handle) = (slot.clone(), armed.clone(), next.clone(), handle.clone());
        move || {
            if !armed.load(Ordering::SeqCst) {
                return;
            }
            let Some((s, q)) = slot.lock().unwrap().clone() else { return };
            let k = next.fetch_add(1, Ordering::SeqCst);
            handle.block_on(async {
                s.send(q, vec![message(u128::from(1_000 + k))], T0 + k).await.unwrap();
                let got = s.receive(q, params(1, 30), T0 + k).await.unwrap();
                s.delete_messages(q, &[got.messages[0].receipt], T0 + k).await.unwrap();
            });
        }
    };
    let o = LogOptions { checkpoint_range_seqs: 8, checkpoint_range_hook: Some(Arc::new(hook)), ..opts(fs) };
    let store = LogStore::open(&data_dir(), o.clone()).unwrap();
    let q = handle.block_on(async {
        let q = create(store.as_ref(), "q", QueueConfig::default()).await.id;
        for i in 0..60 {
            store.send(q, vec![message(i)], T0).await.unwrap();
        }
        q
    });
    *slot.lock().unwrap() = Some((store.clone(), q));
    armed.store(true, Ordering::SeqCst);
    let report = store.checkpoint_blocking().unwrap();
    armed.store(false, Ordering::SeqCst);
    assert!(report.tail_segment > report.start_segment, "records were logged during the checkpoint: {report:?}");
    slot.lock().unwrap().take();
    (store, q, o)
}

#[test]
fn given_a_checkpoint_with_a_window_salvage_should_copy_it_whole_or_fall_back_when_it_is_damaged() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let fs = FaultIo::new();
    let (store, q, o) = std::thread::scope(|s| s.spawn(|| store_with_a_window(&fs, rt.handle().clone())).join().unwrap());
    // More records after the tail, then a clean stop.
    rt.block_on(store.send(q, vec![message(5_000)], T0 + 100)).unwrap();
    let before = store.dump(T0 + 200);
    rt.block_on(store.close()).unwrap();
    drop(store);
    let kept = before.queues[0].messages.len();
    assert_eq!(kept, 61, "60, then 8 sent and 8 deleted during the checkpoint, then 1 more");

    // Intact: the checkpoint anchors the salvage, its window is copied.
    let out = std::path::PathBuf::from("/salvaged");
    let report = sluice_engine::salvage(fs.as_io().as_ref(), &data_dir(), &out).unwrap();
    assert!(report.checkpoint.is_some() && report.rejected_checkpoints.is_empty(), "{report:?}");
    let salvaged = LogStore::open(&out, LogOptions { io: fs.as_io(), ..o.clone() }).unwrap();
    assert_eq!(salvaged.dump(T0 + 200), before);
    drop(salvaged);

    // A damaged window segment: that checkpoint cannot anchor it.
    let ck = report.checkpoint.clone().unwrap();
    let n: u64 = ck.trim_start_matches("checkpoint/").split('.').next().unwrap().parse().unwrap();
    let seg = data_dir().join("log").join(format!("{n:020}.seg"));
    let len = fs.read_file(&seg).expect("the window's first segment").len() as u64;
    assert!(fs.flip_bit(&seg, len - 20, 1));
    let out2 = std::path::PathBuf::from("/salvaged-2");
    let report = sluice_engine::salvage(fs.as_io().as_ref(), &data_dir(), &out2).unwrap();
    assert_eq!(report.rejected_checkpoints, vec![ck], "{report:?}");
    assert!(LogStore::open(&out2, LogOptions { io: fs.as_io(), ..o }).is_ok());
}
