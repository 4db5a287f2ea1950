//! A long poll's wake-up is not lost when it lands on a poll that is already
//! taking messages.
//!
//! A poll registers on the queue's notifier before each attempt, so it stays
//! registered while the attempt runs; with the durable engine the attempt
//! waits for its own fsync. A send's `notify_one` can pick that poll, which
//! then returns its earlier messages and never uses the wake-up, while
//! another poll stays parked with the new message in the queue. The wake-up
//! must reach that poll: tokio's `Notified`, dropped woken but unused, hands
//! it to the next waiter, and the receive loop must leave it so (consuming
//! the woken `Notified` before dropping it would lose the wake-up).
//!
//! Method: a store wrapper holds the first poll inside an attempt that has
//! taken a message (as an fsync wait would), a second poll parks, a send
//! wakes one waiter (the first registered), and then the first attempt is let
//! go. On tokio's paused clock a lost wake-up shows as the second poll
//! running out its 20 s wait and answering empty.

use async_trait::async_trait;
use serde_json::{json, Value};
use sluice_core::ManualClock;
use sluice_sqs::{RequestContext, Sqs, SqsConfig};
use sluice_store::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

const URL: &str = "http://127.0.0.1:4566/000000000000/q";

/// The in-memory store, except that once armed, the next receive that takes
/// messages signals `entered` and then waits for `release`.
struct Held {
    inner: MemoryStore,
    armed: AtomicBool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Store for Held {
    fn engine_name(&self) -> &'static str {
        "held"
    }
    async fn create_queue(&self, new: NewQueue, now_ms: u64) -> Result<CreateOutcome, StoreError> {
        self.inner.create_queue(new, now_ms).await
    }
    async fn delete_queue(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError> {
        self.inner.delete_queue(id, now_ms).await
    }
    async fn get_queue(&self, name: &QueueName) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        self.inner.get_queue(name).await
    }
    async fn get_queue_by_id(&self, id: QueueId) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        self.inner.get_queue_by_id(id).await
    }
    async fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<QueueInfo>>, StoreError> {
        self.inner.list_queues(account, prefix, after, limit).await
    }
    async fn update_queue(&self, id: QueueId, update: QueueUpdate, now_ms: u64) -> Result<Arc<QueueInfo>, StoreError> {
        self.inner.update_queue(id, update, now_ms).await
    }
    async fn send(&self, id: QueueId, messages: Vec<NewMessage>, now_ms: u64) -> Result<Vec<SendOutcome>, StoreError> {
        self.inner.send(id, messages, now_ms).await
    }
    async fn receive(&self, id: QueueId, params: ReceiveParams, now_ms: u64) -> Result<ReceiveOutcome, StoreError> {
        let out = self.inner.receive(id, params, now_ms).await?;
        if !out.messages.is_empty() && self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        Ok(out)
    }
    async fn delete_messages(&self, id: QueueId, receipts: &[Receipt], now_ms: u64) -> Result<Vec<DeleteOutcome>, StoreError> {
        self.inner.delete_messages(id, receipts, now_ms).await
    }
    async fn change_visibility(
        &self,
        id: QueueId,
        changes: &[(Receipt, u32)],
        now_ms: u64,
    ) -> Result<Vec<VisibilityOutcome>, StoreError> {
        self.inner.change_visibility(id, changes, now_ms).await
    }
    async fn purge(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError> {
        self.inner.purge(id, now_ms).await
    }
    async fn counts(&self, id: QueueId, now_ms: u64) -> Result<QueueCounts, StoreError> {
        self.inner.counts(id, now_ms).await
    }
    async fn move_messages(&self, source: QueueId, dest: MoveDestination, max: usize, now_ms: u64) -> Result<usize, StoreError> {
        self.inner.move_messages(source, dest, max, now_ms).await
    }
    async fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.inner.expire(now_ms).await
    }
    async fn put_move_task(&self, task: MoveTask) -> Result<(), StoreError> {
        self.inner.put_move_task(task).await
    }
    async fn list_move_tasks(&self, source_arn: &str) -> Result<Vec<MoveTask>, StoreError> {
        self.inner.list_move_tasks(source_arn).await
    }
    fn notifier(&self, id: QueueId) -> Option<Arc<Notify>> {
        self.inner.notifier(id)
    }
}

async fn call(sqs: &Arc<Sqs>, ctx: &RequestContext, op: &str, input: Value) -> Value {
    sqs.dispatch(op, input, ctx).await.unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn long_poll(sqs: &Arc<Sqs>, ctx: &RequestContext) -> tokio::task::JoinHandle<Option<String>> {
    let (sqs, ctx) = (sqs.clone(), ctx.clone());
    tokio::spawn(async move {
        let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL, "WaitTimeSeconds": 20, "MaxNumberOfMessages": 1})).await;
        r["Messages"][0]["Body"].as_str().map(str::to_string)
    })
}

#[tokio::test(start_paused = true)]
async fn given_wake_up_lands_on_a_poll_already_taking_messages_should_reach_the_parked_poll() {
    let store = Arc::new(Held { inner: MemoryStore::new(), armed: AtomicBool::new(false), entered: Notify::new(), release: Notify::new() });
    let sqs = Sqs::new(store.clone(), Arc::new(ManualClock::new(1_700_000_000_000)), SqsConfig::new("127.0.0.1:4566", [3; 32]));
    let ctx = RequestContext { account: "000000000000".into(), region: "us-east-1".into(), host: None, path: "/".into(), access_key: None };
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q"})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "first"})).await;
    // That send found no poll waiting and left the notifier a permit; a
    // receive takes it (and leaves "first" visible), so the poll below is
    // registered as a waiter, not answered by the permit.
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL, "VisibilityTimeout": 0})).await;
    assert_eq!(r["Messages"][0]["Body"], "first");

    store.armed.store(true, Ordering::SeqCst);
    let taking = long_poll(&sqs, &ctx);
    store.entered.notified().await;
    let parked = long_poll(&sqs, &ctx);
    while sqs.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    // Wakes one registered poll: the one holding "first" registered first.
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "second"})).await;
    store.release.notify_one();

    assert_eq!(taking.await.unwrap().as_deref(), Some("first"));
    // Lost, the wake-up would leave it parked to the end of its 20 s wait
    // ("first" stays in flight for 30 s, so no earlier timer wakes it), and
    // its last attempt would then find "second": the clock tells the two
    // apart. It is tokio's paused clock, which moves only when every task
    // waits for a timer, so this reads no real time.
    let parked_at = tokio::time::Instant::now();
    assert_eq!(parked.await.unwrap().as_deref(), Some("second"));
    assert_eq!(parked_at.elapsed(), std::time::Duration::ZERO, "the parked poll ran out its wait: the wake-up was lost");
}
