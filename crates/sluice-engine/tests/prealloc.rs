//! Goal: preallocated segments (`LogOptions::preallocate_segments`, see the
//! engine's `prealloc` module) change where bytes sit, never what is kept: a
//! busy log rolls into prepared, zero-filled segments; a finished segment
//! holds no zeros; after a crash or a power cut inside a prepared segment,
//! recovery cuts its zeros (reported as such, not as a torn tail) and loses
//! nothing acknowledged; an idle log gives the preallocated space back; and
//! with preallocation off, or a policy that does not fsync per write, nothing
//! is prepared.
//!
//! Method: `FaultIo` with 8 KiB segments; the preparer runs on its own
//! thread, so the tests wait (bounded polls, no sleeps for time) until a
//! prepared file was taken before they cut.

mod common;

use common::*;
use sluice_engine::format::{decode_frame, segment_name, FILE_HEADER_BYTES, LOG_DIR};
use sluice_engine::{CutMode, FaultIo, FsyncPolicy, LogOptions, LogStore};
use sluice_store::*;
use std::path::PathBuf;
use std::time::Duration;

const SEGMENT: u64 = 8 << 10;

fn prealloc_opts(fs: &FaultIo) -> LogOptions {
    LogOptions { segment_bytes: SEGMENT, preallocate_segments: true, ..opts(fs) }
}

fn log_files(fs: &FaultIo) -> Vec<(PathBuf, u64)> {
    let mut v: Vec<_> = fs.files().into_iter().filter(|(p, _)| p.starts_with(data_dir().join(LOG_DIR))).collect();
    v.sort();
    v
}

fn prepared_file_exists(fs: &FaultIo) -> bool {
    log_files(fs).iter().any(|(p, _)| p.extension().is_some_and(|e| e == "tmp"))
}

/// Where the frames of a segment end (the walk stops at the first byte that
/// is not a whole frame).
fn frames_end(bytes: &[u8]) -> usize {
    let mut pos = FILE_HEADER_BYTES;
    while pos < bytes.len() {
        match decode_frame(&bytes[pos..]) {
            Ok(f) => pos += f.size,
            Err(_) => break,
        }
    }
    pos
}

/// Sends one message at a time (ids from `*next`) until the writer is in a
/// segment made from a prepared file and has written into it; returns the
/// acknowledged ids.
async fn fill_into_a_prepared_segment(fs: &FaultIo, store: &LogStore, q: QueueId, next: &mut u128) -> Vec<u128> {
    let mut acked = Vec::new();
    let before = store.stats().segments_preallocated;
    for _ in 0..10_000 {
        store.send(q, vec![message(*next)], T0).await.unwrap();
        acked.push(*next);
        *next += 1;
        if store.stats().segments_preallocated > before {
            // Taken: a few more records into it.
            for _ in 0..3 {
                store.send(q, vec![message(*next)], T0).await.unwrap();
                acked.push(*next);
                *next += 1;
            }
            return acked;
        }
        // Past half a segment the writer has asked for the next one: give
        // the preparer its turn before the writer rolls (it never waits).
        let active = log_files(fs).into_iter().rfind(|(p, _)| p.extension().is_some_and(|e| e == "seg"));
        let fill = active.and_then(|(p, _)| fs.read_file(&p)).map_or(0, |b| frames_end(&b) as u64);
        if fill >= SEGMENT / 2 {
            let prepared = || log_files(fs).iter().any(|(p, len)| p.extension().is_some_and(|e| e == "tmp") && *len >= SEGMENT);
            assert!(wait_until(prepared).await, "timed out waiting until a prepared file exists");
        }
    }
    panic!("no prepared segment was taken after 10,000 sends");
}

fn stored_ids(store: &LogStore) -> Vec<u128> {
    let mut v: Vec<u128> = store.dump(T0).queues.iter().flat_map(|q| q.messages.iter().map(|m| m.message.message_id)).collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn given_a_busy_log_segments_are_prepared_and_finished_segments_hold_no_zeros() {
    let fs = FaultIo::new();
    let store = LogStore::open(&data_dir(), prealloc_opts(&fs)).unwrap();
    let q = create(store.as_ref(), "q", QueueConfig::default()).await;
    let mut next = 1;
    let mut acked = Vec::new();
    for _ in 0..3 {
        acked.extend(fill_into_a_prepared_segment(&fs, &store, q.id, &mut next).await);
    }
    assert!(store.stats().segments_preallocated >= 3);
    // The active segment is preallocated: its file is longer than its records.
    let (active, len) = log_files(&fs).into_iter().rfind(|(p, _)| p.extension().is_some_and(|e| e == "seg")).unwrap();
    let bytes = fs.read_file(&active).unwrap();
    assert!(len >= SEGMENT && frames_end(&bytes) < len as usize, "active segment {} of {len} bytes", active.display());
    store.close().await.unwrap();
    drop(store);
    // After a clean close every segment, the last included, ends at its
    // last frame (its seal): the zeros were cut before the seal.
    assert!(!prepared_file_exists(&fs), "close removes the prepared file");
    for (p, len) in log_files(&fs) {
        let bytes = fs.read_file(&p).unwrap();
        assert_eq!(frames_end(&bytes) as u64, len, "{} holds bytes after its frames", p.display());
    }
    let store = LogStore::open(&data_dir(), prealloc_opts(&fs)).unwrap();
    let report = store.recovery_report();
    assert!(report.clean_shutdown);
    assert_eq!((report.preallocated_bytes_cut, report.torn_tail.clone()), (0, None));
    assert_eq!(stored_ids(&store), acked);
}

#[tokio::test]
async fn given_a_crash_inside_a_prepared_segment_recovery_cuts_its_zeros_and_keeps_every_acknowledged_message() {
    let modes = [(CutMode::DropUnsynced, false), (CutMode::KeepPrefix, true), (CutMode::DropPages, true)];
    for (i, (mode, drop_dirents)) in modes.into_iter().enumerate() {
        for power in [false, true] {
            let fs = FaultIo::new();
            let store = LogStore::open(&data_dir(), prealloc_opts(&fs)).unwrap();
            let q = create(store.as_ref(), "q", QueueConfig::default()).await;
            let mut next = 1;
            let acked = fill_into_a_prepared_segment(&fs, &store, q.id, &mut next).await;
            let segment = store.stats().segments_created;
            if power {
                fs.power_cut(mode, drop_dirents, i as u64);
            } else {
                fs.kill_process();
            }
            drop(store);
            fs.reboot();
            let store = LogStore::open(&data_dir(), prealloc_opts(&fs)).unwrap();
            let what = format!("{mode:?}, power cut {power}");
            let report = store.recovery_report().clone();
            assert!(report.preallocated_bytes_cut > 0, "{what}: {report:?}");
            assert_eq!(report.torn_tail, None, "{what}: zeros are not a torn tail");
            assert!(!report.clean_shutdown, "{what}");
            assert_eq!(stored_ids(&store), acked, "{what}: every acknowledged send, nothing else");
            assert!(!prepared_file_exists(&fs), "{what}: recovery removes a prepared file");
            // The cut segment was sealed: it ends at its last frame now.
            let seg = data_dir().join(LOG_DIR).join(segment_name(segment));
            let bytes = fs.read_file(&seg).unwrap_or_else(|| panic!("{what}: {} missing", seg.display()));
            assert_eq!(frames_end(&bytes), bytes.len(), "{what}");
            // The log goes on, and a second reopen finds it clean.
            store.send(q.id, vec![message(next)], T0).await.unwrap();
            store.close().await.unwrap();
            drop(store);
            let store = LogStore::open(&data_dir(), prealloc_opts(&fs)).unwrap();
            assert!(store.recovery_report().clean_shutdown, "{what}");
            assert_eq!(stored_ids(&store).len(), acked.len() + 1, "{what}");
        }
    }
}

#[tokio::test]
async fn given_the_log_goes_idle_the_preallocated_space_is_given_back() {
    let fs = FaultIo::new();
    let o = LogOptions {
        checkpoint_every_bytes: Some(1 << 30),
        idle_checkpoint_after: Some(Duration::from_millis(50)),
        ..prealloc_opts(&fs)
    };
    let store = LogStore::open(&data_dir(), o).unwrap();
    let q = create(store.as_ref(), "q", QueueConfig::default()).await;
    let mut next = 1;
    let acked = fill_into_a_prepared_segment(&fs, &store, q.id, &mut next).await;
    // Keep sending until the next segment is being prepared as well.
    while !prepared_file_exists(&fs) {
        store.send(q.id, vec![message(next)], T0).await.unwrap();
        next += 1;
    }
    let r = store.receive(q.id, params(10, 30), T0).await.unwrap();
    let receipts: Vec<Receipt> = r.messages.iter().map(|m| m.receipt).collect();
    store.delete_messages(q.id, &receipts, T0).await.unwrap();
    let before = store.dump(T0);
    assert!(acked.len() > 10);
    // Idle: no prepared file, and every segment ends at its frames (the
    // active one too: the idle checkpoint rolled to an empty segment).
    let given_back = wait_until(|| {
        store.stats().idle_periods > 0
            && !prepared_file_exists(&fs)
            && log_files(&fs).iter().all(|(p, len)| fs.read_file(p).is_some_and(|b| frames_end(&b) as u64 == *len))
    })
    .await;
    assert!(given_back, "timed out waiting until the preallocation is given back: {:?}", store.stats());
    assert_eq!(store.dump(T0), before);
}

#[tokio::test]
async fn given_preallocation_off_or_a_policy_without_fsyncs_no_segment_is_prepared() {
    let interval = FsyncPolicy::Interval(Duration::from_millis(5));
    for (what, preallocate_segments, fsync) in [("off", false, FsyncPolicy::Always), ("never", true, FsyncPolicy::Never), ("interval", true, interval)] {
        let fs = FaultIo::new();
        let store = LogStore::open(&data_dir(), LogOptions { preallocate_segments, fsync, ..prealloc_opts(&fs) }).unwrap();
        let q = create(store.as_ref(), "q", QueueConfig::default()).await;
        for i in 0..300 {
            store.send(q.id, vec![message(i)], T0).await.unwrap();
        }
        let stats = store.stats();
        assert!(stats.segments_created > 3, "{what}");
        assert_eq!(stats.segments_preallocated, 0, "{what}");
        assert!(!prepared_file_exists(&fs), "{what}");
    }
}

/// Regression (found by `perf trace` of `sqs-send`): a checkpoint rolls the
/// log twice, at its start and at its end, a few milliseconds apart under
/// load. The segment between the two rolls was made from the prepared file
/// whenever one was ready, and the second roll then cut its tens of
/// megabytes of unused zeros on the writer's path (2 – 14 ms with the file
/// system's online discard) and wasted the preparer's writes. The segment
/// between a checkpoint's rolls is made empty; the prepared file waits for
/// the segment after it.
#[tokio::test]
async fn given_a_prepared_file_when_a_checkpoint_runs_the_segment_between_its_rolls_should_not_take_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let fs = FaultIo::new();
    // Holds the checkpoint after its first range, between its two rolls.
    let RangeGate { armed, mut ranges, go_on, hook } = range_gate();
    let store = LogStore::open(&data_dir(), LogOptions { checkpoint_range_hook: Some(hook), ..prealloc_opts(&fs) }).unwrap();
    let q = create(store.as_ref(), "q", QueueConfig::default()).await.id;
    let mut next = 1;
    let mut acked = fill_into_a_prepared_segment(&fs, &store, q, &mut next).await;
    // On past half of that segment (where the writer asks for the next
    // one), then wait until the preparer has made the next one ready.
    let prepared = store.stats().segments_prepared;
    let mut sent = 0;
    while !prepared_file_exists(&fs) {
        store.send(q, vec![message(next)], T0).await.unwrap();
        acked.push(next);
        next += 1;
        sent += 1;
        assert!(sent < 10_000, "the next segment's preparation was not asked for");
    }
    assert!(wait_until(|| store.stats().segments_prepared > prepared).await, "timed out waiting until the next segment is prepared");
    let taken = store.stats().segments_preallocated;
    armed.store(true, SeqCst);
    let store2 = store.clone();
    let checkpoint = tokio::spawn(async move { store2.checkpoint().await });
    let hit = tokio::time::timeout(Duration::from_secs(60), ranges.recv()).await;
    assert!(matches!(hit, Ok(Some(()))), "the checkpoint reached its first range");
    // Between the rolls: these go into the checkpoint's first segment.
    for _ in 0..3 {
        store.send(q, vec![message(next)], T0).await.unwrap();
        acked.push(next);
        next += 1;
    }
    assert_eq!(store.stats().segments_preallocated, taken, "the segment between a checkpoint's rolls took the prepared file");
    armed.store(false, SeqCst);
    go_on.send(()).unwrap();
    checkpoint.await.unwrap().unwrap();
    // After the second roll the prepared file is taken.
    let mut after = 0;
    while store.stats().segments_preallocated == taken {
        store.send(q, vec![message(next)], T0).await.unwrap();
        acked.push(next);
        next += 1;
        after += 1;
        assert!(after < 10_000, "the prepared file was not taken after the checkpoint");
    }
    assert_eq!(stored_ids(&store), acked);
    store.close().await.unwrap();
    drop(store);
    let store = LogStore::open(&data_dir(), prealloc_opts(&fs)).unwrap();
    assert_eq!(stored_ids(&store), acked);
}
