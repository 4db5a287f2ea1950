//! The behavioural suite every engine must pass.
//!
//! Each check is a plain async function over `Arc<dyn Store>`; an engine's
//! `tests/` invokes `store_suite!(path::to::factory)` to run them all, so the
//! in-memory, durable and PostgreSQL engines are held to the same behaviour.

use crate::*;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Calls `$callback!(<args> ; <every behaviour of the suite>)`: the one list
/// of the suite's behaviours, for `store_suite!` and for engines that run each
/// behaviour under their own harness (the durable engine's close-and-reopen run).
#[macro_export]
macro_rules! for_each_suite_behaviour {
    ($callback:ident ! ( $($args:tt)* )) => {
        $callback!($($args)* ;
            queue_create_get_list_delete,
            create_existing_returns_existing,
            recreate_after_delete_is_refused_within_window,
            send_receive_delete,
            receive_hides_until_visibility_timeout,
            stale_receipt_does_not_delete,
            change_visibility_outcomes,
            delayed_messages_are_counted_and_released,
            dead_letter_after_max_receive_count,
            redrive_back_to_source,
            move_to_explicit_destination,
            purge_empties_queue,
            retention_drops_old_messages,
            in_flight_limit_is_reported,
            update_queue_attributes_and_tags,
            move_tasks_round_trip,
            operations_on_deleted_queue_fail,
            batch_send_is_atomic_and_ordered,
            fifo_deduplicates_and_keeps_group_order,
            fifo_dedup_scope_message_group,
        );
    };
}

/// Generates one `#[tokio::test]` per behaviour, each with a fresh store from
/// `$factory` (an `async fn() -> Arc<dyn Store>` or a closure returning a future).
#[macro_export]
macro_rules! store_suite {
    ($factory:expr) => {
        use $crate::store_suite as __sluice_store_suite_tests;
        $crate::for_each_suite_behaviour!(__sluice_store_suite_tests!(@tests $factory));
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = ($factory)().await;
                $crate::suite::$name(store).await;
            }
        )*
    };
}

const T0: u64 = 1_700_000_000_000;

/// A request to create `name` in the suite's account (`000000000000`, us-east-1),
/// no attributes or tags; engines' own tests use it too.
pub fn new_queue(name: &str, config: QueueConfig) -> NewQueue {
    NewQueue {
        name: QueueName::new("000000000000", name),
        region: "us-east-1".into(),
        attributes: BTreeMap::new(),
        config,
        tags: BTreeMap::new(),
        refuse_if_deleted_after_ms: 0,
    }
}

fn message(i: u128) -> NewMessage {
    NewMessage {
        message_id: i,
        payload: Bytes::from(format!("body-{i}")),
        delay_secs: 0,
        group_id: None,
        dedup_id: None,
    }
}

fn params(max: usize, vis: u32) -> ReceiveParams {
    ReceiveParams { max, visibility_timeout_secs: vis, inflight_limit: 120_000, attempt_id: None }
}

async fn create(store: &Arc<dyn Store>, name: &str, config: QueueConfig) -> Arc<QueueInfo> {
    match store.create_queue(new_queue(name, config), T0).await.unwrap() {
        CreateOutcome::Created(i) => i,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// Queues can be created, found by name and id, listed by prefix and deleted.
pub async fn queue_create_get_list_delete(store: Arc<dyn Store>) {
    let a = create(&store, "alpha", QueueConfig::default()).await;
    create(&store, "alpine", QueueConfig::default()).await;
    create(&store, "beta", QueueConfig::default()).await;
    create(&store, "aardvark", QueueConfig::default()).await;
    let got = store.get_queue(&QueueName::new("000000000000", "alpha")).await.unwrap().unwrap();
    assert_eq!(got.id, a.id);
    assert_eq!(store.get_queue_by_id(a.id).await.unwrap().unwrap().name.name, "alpha");
    let names = |v: Vec<Arc<QueueInfo>>| v.iter().map(|q| q.name.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(store.list_queues("000000000000", "al", None, 10).await.unwrap()), ["alpha", "alpine"]);
    assert_eq!(names(store.list_queues("000000000000", "", None, 2).await.unwrap()), ["aardvark", "alpha"]);
    assert_eq!(names(store.list_queues("000000000000", "al", Some("alpha"), 10).await.unwrap()), ["alpine"]);
    // A page token from a listing with another prefix, sorting before this one.
    assert_eq!(names(store.list_queues("000000000000", "al", Some("aa"), 10).await.unwrap()), ["alpha", "alpine"]);
    assert_eq!(names(store.list_queues("000000000000", "", Some("alpine"), 10).await.unwrap()), ["beta"]);
    assert!(store.list_queues("111111111111", "", None, 10).await.unwrap().is_empty());
    store.delete_queue(a.id, T0 + 1).await.unwrap();
    assert!(store.get_queue(&QueueName::new("000000000000", "alpha")).await.unwrap().is_none());
    assert_eq!(store.delete_queue(a.id, T0 + 2).await, Err(StoreError::QueueNotFound));
}

/// Creating a queue that exists reports it unchanged.
pub async fn create_existing_returns_existing(store: Arc<dyn Store>) {
    let a = create(&store, "q", QueueConfig::default()).await;
    let cfg = QueueConfig { visibility_timeout_secs: 99, ..Default::default() };
    match store.create_queue(new_queue("q", cfg), T0 + 5).await.unwrap() {
        CreateOutcome::Exists(i) => {
            assert_eq!(i.id, a.id);
            assert_eq!(i.config.visibility_timeout_secs, 30);
        }
        other => panic!("{other:?}"),
    }
}

/// A name deleted after `refuse_if_deleted_after_ms` cannot be reused yet.
pub async fn recreate_after_delete_is_refused_within_window(store: Arc<dyn Store>) {
    let a = create(&store, "q", QueueConfig::default()).await;
    store.delete_queue(a.id, T0 + 1000).await.unwrap();
    let mut n = new_queue("q", QueueConfig::default());
    n.refuse_if_deleted_after_ms = T0 + 500;
    assert!(matches!(store.create_queue(n.clone(), T0 + 2000).await.unwrap(), CreateOutcome::DeletedRecently));
    n.refuse_if_deleted_after_ms = T0 + 1000;
    assert!(matches!(store.create_queue(n, T0 + 61_000).await.unwrap(), CreateOutcome::Created(_)));
}

/// The basic cycle.
pub async fn send_receive_delete(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    let sent = store.send(q.id, vec![message(7)], T0).await.unwrap();
    assert_eq!(sent[0].message_id, 7);
    assert!(!sent[0].duplicate);
    let r = store.receive(q.id, params(10, 30), T0 + 1).await.unwrap();
    assert_eq!(r.messages.len(), 1);
    let m = &r.messages[0];
    assert_eq!(m.message.message_id, 7);
    assert_eq!(m.message.payload, Bytes::from("body-7"));
    assert_eq!(m.message.receive_count, 1);
    assert_eq!(m.message.sent_ms, T0);
    assert_eq!(m.message.first_receive_ms, T0 + 1);
    assert_eq!(m.receipt.generation, 1);
    let d = store.delete_messages(q.id, &[m.receipt], T0 + 2).await.unwrap();
    assert_eq!(d, vec![DeleteOutcome::Deleted]);
    assert_eq!(store.counts(q.id, T0 + 3).await.unwrap(), QueueCounts::default());
    assert!(store.receive(q.id, params(10, 30), T0 + 100_000).await.unwrap().messages.is_empty());
}

/// A received message stays hidden for the visibility timeout, then comes back
/// with its receive count increased.
pub async fn receive_hides_until_visibility_timeout(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    store.send(q.id, vec![message(1), message(2)], T0).await.unwrap();
    let r = store.receive(q.id, params(1, 10), T0).await.unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.next_visible_ms, Some(T0 + 10_000));
    let first = r.messages[0].message.message_id;
    let r2 = store.receive(q.id, params(10, 10), T0 + 1).await.unwrap();
    assert_eq!(r2.messages.len(), 1);
    assert_ne!(r2.messages[0].message.message_id, first);
    assert_eq!(store.counts(q.id, T0 + 2).await.unwrap(), QueueCounts { visible: 0, inflight: 2, delayed: 0 });
    assert!(store.receive(q.id, params(10, 10), T0 + 9_999).await.unwrap().messages.is_empty());
    let r3 = store.receive(q.id, params(10, 10), T0 + 10_000).await.unwrap();
    assert_eq!(r3.messages.len(), 1);
    assert_eq!(r3.messages[0].message.message_id, first);
    assert_eq!(r3.messages[0].message.receive_count, 2);
    assert_eq!(r3.messages[0].message.first_receive_ms, T0);
}

/// Only the latest receipt deletes.
pub async fn stale_receipt_does_not_delete(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    store.send(q.id, vec![message(1)], T0).await.unwrap();
    let old = store.receive(q.id, params(1, 1), T0).await.unwrap().messages[0].receipt;
    let new = store.receive(q.id, params(1, 1), T0 + 1000).await.unwrap().messages[0].receipt;
    assert_eq!(store.delete_messages(q.id, &[old], T0 + 1001).await.unwrap(), vec![DeleteOutcome::Stale]);
    assert_eq!(
        store.delete_messages(q.id, &[new, new], T0 + 1001).await.unwrap(),
        vec![DeleteOutcome::Deleted, DeleteOutcome::Gone]
    );
}

/// Visibility changes apply only to in-flight messages with a current receipt.
pub async fn change_visibility_outcomes(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    store.send(q.id, vec![message(1)], T0).await.unwrap();
    let rc = store.receive(q.id, params(1, 5), T0).await.unwrap().messages[0].receipt;
    assert_eq!(store.change_visibility(q.id, &[(rc, 100)], T0 + 1).await.unwrap(), vec![VisibilityOutcome::Changed]);
    assert!(store.receive(q.id, params(1, 5), T0 + 50_000).await.unwrap().messages.is_empty());
    assert_eq!(store.change_visibility(q.id, &[(rc, 0)], T0 + 50_000).await.unwrap(), vec![VisibilityOutcome::Changed]);
    assert_eq!(store.change_visibility(q.id, &[(rc, 10)], T0 + 50_001).await.unwrap(), vec![VisibilityOutcome::NotInflight]);
    let rc2 = store.receive(q.id, params(1, 5), T0 + 50_002).await.unwrap().messages[0].receipt;
    assert_eq!(store.change_visibility(q.id, &[(rc, 10)], T0 + 50_003).await.unwrap(), vec![VisibilityOutcome::Stale]);
    store.delete_messages(q.id, &[rc2], T0 + 50_004).await.unwrap();
    assert_eq!(store.change_visibility(q.id, &[(rc2, 10)], T0 + 50_005).await.unwrap(), vec![VisibilityOutcome::Gone]);
}

/// Delayed messages are counted as delayed and become visible on time.
pub async fn delayed_messages_are_counted_and_released(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    let mut m = message(1);
    m.delay_secs = 3;
    store.send(q.id, vec![m], T0).await.unwrap();
    assert_eq!(store.counts(q.id, T0).await.unwrap(), QueueCounts { visible: 0, inflight: 0, delayed: 1 });
    let r = store.receive(q.id, params(1, 5), T0 + 2_999).await.unwrap();
    assert!(r.messages.is_empty());
    assert_eq!(r.next_visible_ms, Some(T0 + 3_000));
    assert_eq!(store.receive(q.id, params(1, 5), T0 + 3_000).await.unwrap().messages.len(), 1);
}

/// A message received maxReceiveCount times moves to the dead-letter queue on the next receive.
pub async fn dead_letter_after_max_receive_count(store: Arc<dyn Store>) {
    let dlq = create(&store, "dlq", QueueConfig::default()).await;
    let cfg = QueueConfig {
        redrive: Some(Redrive { dead_letter_target: dlq.name.clone(), max_receive_count: 2 }),
        ..Default::default()
    };
    let q = create(&store, "q", cfg).await;
    store.send(q.id, vec![message(1)], T0).await.unwrap();
    assert_eq!(store.receive(q.id, params(1, 0), T0).await.unwrap().messages.len(), 1);
    assert_eq!(store.receive(q.id, params(1, 0), T0 + 1).await.unwrap().messages.len(), 1);
    assert!(store.receive(q.id, params(1, 0), T0 + 2).await.unwrap().messages.is_empty());
    assert_eq!(store.counts(q.id, T0 + 3).await.unwrap(), QueueCounts::default());
    let r = store.receive(dlq.id, params(10, 30), T0 + 3).await.unwrap();
    assert_eq!(r.messages.len(), 1);
    let m = &r.messages[0].message;
    assert_eq!(m.message_id, 1);
    assert_eq!(m.payload, Bytes::from("body-1"));
    assert_eq!(m.sent_ms, T0);
    assert_eq!(m.dead_letter_source, Some(q.id));
}

/// Redrive moves dead-lettered messages back to the queue each came from.
pub async fn redrive_back_to_source(store: Arc<dyn Store>) {
    let dlq = create(&store, "dlq", QueueConfig::default()).await;
    let cfg = QueueConfig {
        redrive: Some(Redrive { dead_letter_target: dlq.name.clone(), max_receive_count: 1 }),
        ..Default::default()
    };
    let q = create(&store, "q", cfg).await;
    store.send(q.id, vec![message(1), message(2)], T0).await.unwrap();
    store.receive(q.id, params(10, 0), T0).await.unwrap();
    assert!(store.receive(q.id, params(10, 0), T0 + 1).await.unwrap().messages.is_empty());
    assert_eq!(store.counts(dlq.id, T0 + 2).await.unwrap().visible, 2);
    let moved = store.move_messages(dlq.id, MoveDestination::OriginalSource, 10, T0 + 3).await.unwrap();
    assert_eq!(moved, 2);
    assert_eq!(store.counts(dlq.id, T0 + 4).await.unwrap().visible, 0);
    let r = store.receive(q.id, params(10, 30), T0 + 4).await.unwrap();
    let mut ids: Vec<u128> = r.messages.iter().map(|m| m.message.message_id).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
}

/// Moves to an explicit destination take only visible messages, up to the maximum.
pub async fn move_to_explicit_destination(store: Arc<dyn Store>) {
    let a = create(&store, "a", QueueConfig::default()).await;
    let b = create(&store, "b", QueueConfig::default()).await;
    store.send(a.id, (0..5).map(message).collect(), T0).await.unwrap();
    store.receive(a.id, params(1, 60), T0).await.unwrap();
    assert_eq!(store.move_messages(a.id, MoveDestination::Queue(b.id), 3, T0 + 1).await.unwrap(), 3);
    assert_eq!(store.move_messages(a.id, MoveDestination::Queue(b.id), 3, T0 + 2).await.unwrap(), 1);
    assert_eq!(store.counts(a.id, T0 + 3).await.unwrap(), QueueCounts { visible: 0, inflight: 1, delayed: 0 });
    assert_eq!(store.counts(b.id, T0 + 3).await.unwrap().visible, 4);
}

/// Purge removes every message.
pub async fn purge_empties_queue(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    store.send(q.id, (0..5).map(message).collect(), T0).await.unwrap();
    store.receive(q.id, params(2, 60), T0).await.unwrap();
    store.purge(q.id, T0 + 1).await.unwrap();
    assert_eq!(store.counts(q.id, T0 + 2).await.unwrap(), QueueCounts::default());
}

/// Messages older than the retention period are never delivered and are reclaimed.
pub async fn retention_drops_old_messages(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig { retention_secs: 60, ..Default::default() }).await;
    store.send(q.id, vec![message(1)], T0).await.unwrap();
    store.send(q.id, vec![message(2)], T0 + 30_000).await.unwrap();
    assert_eq!(store.expire(T0 + 59_999).await.unwrap(), 0);
    assert_eq!(store.expire(T0 + 60_000).await.unwrap(), 1);
    let r = store.receive(q.id, params(10, 30), T0 + 60_001).await.unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].message.message_id, 2);
    store.change_visibility(q.id, &[(r.messages[0].receipt, 0)], T0 + 60_002).await.unwrap();
    assert!(store.receive(q.id, params(10, 30), T0 + 90_000).await.unwrap().messages.is_empty());
}

/// Receives stop at the in-flight limit and say so.
pub async fn in_flight_limit_is_reported(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    store.send(q.id, (0..3).map(message).collect(), T0).await.unwrap();
    let p = ReceiveParams { max: 10, visibility_timeout_secs: 30, inflight_limit: 2, attempt_id: None };
    let r = store.receive(q.id, p.clone(), T0).await.unwrap();
    assert_eq!(r.messages.len(), 2);
    assert!(r.over_limit);
    let r = store.receive(q.id, p, T0).await.unwrap();
    assert!(r.messages.is_empty());
    assert!(r.over_limit);
}

/// Metadata updates replace attributes, configuration, tags and purge time.
pub async fn update_queue_attributes_and_tags(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    let mut attrs = BTreeMap::new();
    attrs.insert("VisibilityTimeout".to_string(), "5".to_string());
    let cfg = QueueConfig { visibility_timeout_secs: 5, ..Default::default() };
    let i = store
        .update_queue(q.id, QueueUpdate { attributes: Some((attrs.clone(), cfg.clone())), ..Default::default() }, T0 + 10)
        .await
        .unwrap();
    assert_eq!(i.attributes, attrs);
    assert_eq!(i.config, cfg);
    assert_eq!(i.last_modified_ms, T0 + 10);
    let mut tags = BTreeMap::new();
    tags.insert("team".to_string(), "a".to_string());
    store.update_queue(q.id, QueueUpdate { tags: Some(tags.clone()), last_purge_ms: Some(T0 + 20), ..Default::default() }, T0 + 20).await.unwrap();
    let i = store.get_queue_by_id(q.id).await.unwrap().unwrap();
    assert_eq!(i.tags, tags);
    assert_eq!(i.last_purge_ms, Some(T0 + 20));
    assert_eq!(i.attributes, attrs);
}

/// Move tasks are stored, replaced by handle and listed newest first.
pub async fn move_tasks_round_trip(store: Arc<dyn Store>) {
    let task = |h: &str, at: u64, status: &str| MoveTask {
        task_handle: h.into(),
        source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
        destination_arn: None,
        max_per_second: None,
        status: status.into(),
        moved: 0,
        to_move: 3,
        started_ms: at,
        failure_reason: None,
    };
    store.put_move_task(task("a", T0, "RUNNING")).await.unwrap();
    store.put_move_task(task("b", T0 + 1, "RUNNING")).await.unwrap();
    store.put_move_task(task("a", T0, "COMPLETED")).await.unwrap();
    let l = store.list_move_tasks("arn:aws:sqs:us-east-1:000000000000:dlq").await.unwrap();
    assert_eq!(l.iter().map(|t| (t.task_handle.as_str(), t.status.as_str())).collect::<Vec<_>>(), [("b", "RUNNING"), ("a", "COMPLETED")]);
    assert!(store.list_move_tasks("arn:aws:sqs:us-east-1:000000000000:other").await.unwrap().is_empty());
}

/// Every message operation on a deleted queue reports QueueNotFound.
pub async fn operations_on_deleted_queue_fail(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    store.delete_queue(q.id, T0).await.unwrap();
    assert_eq!(store.send(q.id, vec![message(1)], T0).await.unwrap_err(), StoreError::QueueNotFound);
    assert_eq!(store.receive(q.id, params(1, 1), T0).await.unwrap_err(), StoreError::QueueNotFound);
    assert_eq!(store.purge(q.id, T0).await.unwrap_err(), StoreError::QueueNotFound);
    assert_eq!(store.counts(q.id, T0).await.unwrap_err(), StoreError::QueueNotFound);
    assert!(store.notifier(q.id).is_none());
}

/// A batch gets increasing sequence numbers and is received in send order.
pub async fn batch_send_is_atomic_and_ordered(store: Arc<dyn Store>) {
    let q = create(&store, "q", QueueConfig::default()).await;
    let out = store.send(q.id, (0..10).map(message).collect(), T0).await.unwrap();
    assert_eq!(out.len(), 10);
    assert!(out.windows(2).all(|w| w[0].sequence_number < w[1].sequence_number));
    let r = store.receive(q.id, params(10, 30), T0).await.unwrap();
    assert_eq!(r.messages.iter().map(|m| m.message.message_id).collect::<Vec<_>>(), (0..10).collect::<Vec<u128>>());
}

fn fifo_config(scope_group: bool) -> QueueConfig {
    QueueConfig { fifo: true, dedup_scope_group: scope_group, ..Default::default() }
}

fn fifo_message(i: u128, group: &str, dedup: &str) -> NewMessage {
    NewMessage { group_id: Some(group.into()), dedup_id: Some(dedup.into()), ..message(i) }
}

/// FIFO: a repeated deduplication id within 5 minutes enqueues nothing and
/// returns the original id, even after the original was deleted; groups are
/// delivered in order and blocked while a message is in flight.
pub async fn fifo_deduplicates_and_keeps_group_order(store: Arc<dyn Store>) {
    let q = create(&store, "q.fifo", fifo_config(false)).await;
    let a = store.send(q.id, vec![fifo_message(1, "g1", "d1"), fifo_message(2, "g1", "d2")], T0).await.unwrap();
    let dup = store.send(q.id, vec![fifo_message(3, "g2", "d1")], T0 + 1).await.unwrap();
    assert!(dup[0].duplicate);
    assert_eq!(dup[0].message_id, 1);
    assert_eq!(dup[0].sequence_number, a[0].sequence_number);
    store.send(q.id, vec![fifo_message(4, "g2", "d4")], T0 + 2).await.unwrap();
    let fifo = |max| ReceiveParams { max, visibility_timeout_secs: 30, inflight_limit: 120_000, attempt_id: None };
    let r = store.receive(q.id, fifo(1), T0 + 3).await.unwrap();
    assert_eq!(r.messages[0].message.message_id, 1);
    let r2 = store.receive(q.id, fifo(10), T0 + 4).await.unwrap();
    assert_eq!(r2.messages.iter().map(|m| m.message.message_id).collect::<Vec<_>>(), vec![4], "g1 is blocked");
    store.delete_messages(q.id, &[r.messages[0].receipt], T0 + 5).await.unwrap();
    let dup = store.send(q.id, vec![fifo_message(5, "g1", "d1")], T0 + 6).await.unwrap();
    assert!(dup[0].duplicate, "dedup holds after delete");
    let r3 = store.receive(q.id, fifo(10), T0 + 7).await.unwrap();
    assert_eq!(r3.messages.iter().map(|m| m.message.message_id).collect::<Vec<_>>(), vec![2]);
    // After the 5-minute window the id is fresh again.
    let again = store.send(q.id, vec![fifo_message(6, "g1", "d1")], T0 + 300_000).await.unwrap();
    assert!(!again[0].duplicate);
}

/// FIFO with DeduplicationScope=messageGroup: the same id in two groups is two messages.
pub async fn fifo_dedup_scope_message_group(store: Arc<dyn Store>) {
    let q = create(&store, "q.fifo", fifo_config(true)).await;
    let a = store.send(q.id, vec![fifo_message(1, "g1", "d"), fifo_message(2, "g2", "d")], T0).await.unwrap();
    assert!(!a[0].duplicate && !a[1].duplicate);
    let b = store.send(q.id, vec![fifo_message(3, "g2", "d")], T0 + 1).await.unwrap();
    assert!(b[0].duplicate);
    assert_eq!(b[0].message_id, 2);
}
