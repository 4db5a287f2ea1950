//! Goal (RELIABILITY.md R15): after a restart, `Store::time_floor_ms` is the
//! latest "now" the data directory holds, so that the binary can start its
//! clock there even when the wall clock was set back.
//!
//! Method: operations at chosen times on `FaultIo`, a clean reopen, and the
//! floor compared with the latest time passed to a persisted operation, for a
//! replay from the log and for a replay from a checkpoint. Deadlines
//! (visibility, delay, deduplication expiry) lie ahead of their "now" and must
//! not raise the floor.

mod common;

use common::*;
use sluice_engine::FaultIo;
use sluice_store::*;

#[tokio::test]
async fn given_empty_data_directory_floor_is_zero() {
    let fs = FaultIo::new();
    let store = open(&fs);
    assert_eq!(store.time_floor_ms(), 0);
    store.close().await.unwrap();
}

/// Creates a queue at T0, sends at T0+10 s (one message delayed 15 min),
/// receives at T0+20 s with a 12 h visibility timeout and changes a
/// visibility at T0+25 s, all through `store`; returns the queue.
async fn history(store: &sluice_engine::LogStore) -> QueueId {
    let q = create(store, "q", QueueConfig { fifo: true, ..QueueConfig::default() }).await.id;
    let mut delayed = message(2);
    delayed.delay_secs = 900;
    let mut sends = vec![message(1), delayed, message(3)];
    for (i, m) in sends.iter_mut().enumerate() {
        m.group_id = Some(format!("g{i}"));
        m.dedup_id = Some(format!("d{i}"));
    }
    store.send(q, sends, T0 + 10_000).await.unwrap();
    let r = store.receive(q, params(10, 43_200), T0 + 20_000).await.unwrap();
    assert_eq!(r.messages.len(), 2);
    let out = store.change_visibility(q, &[(r.messages[0].receipt, 43_000)], T0 + 25_000).await.unwrap();
    assert_eq!(out.len(), 1);
    q
}

#[tokio::test]
async fn given_log_replay_floor_is_the_latest_persisted_now_not_a_deadline() {
    let fs = FaultIo::new();
    let store = open(&fs);
    history(&store).await;
    assert_eq!(store.time_floor_ms(), T0 + 25_000, "live: the latest now passed");
    store.close().await.unwrap();
    drop(store);

    let store = open(&fs);
    // The visibility change at T0+25 s is the latest now in the log; the
    // deadlines (T0+20 s + 12 h, T0+10 s + 15 min, dedup T0+10 s + 5 min) are not.
    assert_eq!(store.time_floor_ms(), T0 + 25_000);
    store.close().await.unwrap();
}

#[tokio::test]
async fn given_checkpoint_replay_floor_is_the_latest_now_its_state_shows() {
    let fs = FaultIo::new();
    let store = open(&fs);
    let q = history(&store).await;
    store.checkpoint().await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = open(&fs);
    assert!(store.recovery_report().checkpoint.is_some(), "{:?}", store.recovery_report());
    // The checkpoint carries the engine's latest now (`CheckpointClock`):
    // the visibility change at T0+25 s, which no message state shows.
    assert_eq!(store.time_floor_ms(), T0 + 25_000);

    // Operations after the checkpoint raise it again, from the log.
    store.send(q, vec![NewMessage { group_id: Some("g9".into()), dedup_id: Some("d9".into()), ..message(9) }], T0 + 40_000).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = open(&fs);
    assert_eq!(store.time_floor_ms(), T0 + 40_000);
    store.close().await.unwrap();
}

#[tokio::test]
async fn given_deleted_queue_floor_includes_its_deletion_time() {
    let fs = FaultIo::new();
    let store = open(&fs);
    let q = create(store.as_ref(), "gone", QueueConfig::default()).await.id;
    store.delete_queue(q, T0 + 90_000).await.unwrap();
    store.checkpoint().await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = open(&fs);
    assert_eq!(store.time_floor_ms(), T0 + 90_000);
    store.close().await.unwrap();
}
