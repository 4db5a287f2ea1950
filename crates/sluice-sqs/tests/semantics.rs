//! SQS semantics over the in-memory store with a manual clock: visibility
//! expiry, retention and delays are driven by moving the clock, never by sleeping.

use serde_json::{json, Value};
use sluice_core::ManualClock;
use sluice_sqs::{RequestContext, Sqs, SqsConfig};
use sluice_store::MemoryStore;
use std::sync::Arc;

const URL: &str = "http://127.0.0.1:4566/000000000000/q";

fn setup() -> (Arc<Sqs>, ManualClock, RequestContext) {
    let clock = ManualClock::new(1_700_000_000_000);
    let sqs = Sqs::new(
        Arc::new(MemoryStore::new()),
        Arc::new(clock.clone()),
        SqsConfig::new("127.0.0.1:4566", [3; 32]),
    );
    let ctx = RequestContext { account: "000000000000".into(), region: "us-east-1".into(), host: None, path: "/".into(), access_key: None };
    (sqs, clock, ctx)
}

async fn call(sqs: &Arc<Sqs>, ctx: &RequestContext, op: &str, input: Value) -> Value {
    sqs.dispatch(op, input, ctx).await.unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn receive_count(v: &Value) -> Option<String> {
    v["Messages"][0]["Attributes"]["ApproximateReceiveCount"].as_str().map(str::to_string)
}

#[tokio::test]
async fn given_inflight_message_when_timeout_expires_should_reappear_with_higher_receive_count() {
    let (sqs, clock, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "30"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "hi"})).await;
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL, "AttributeNames": ["All"]})).await;
    assert_eq!(receive_count(&r).as_deref(), Some("1"));
    clock.advance_ms(29_999);
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL})).await;
    assert!(r.get("Messages").is_none(), "still invisible: {r}");
    clock.advance_ms(1);
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL, "AttributeNames": ["All"]})).await;
    assert_eq!(receive_count(&r).as_deref(), Some("2"));
}

#[tokio::test]
async fn given_retention_period_passed_message_is_gone() {
    let (sqs, clock, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"MessageRetentionPeriod": "60"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "old"})).await;
    clock.advance_ms(60_000);
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL})).await;
    assert!(r.get("Messages").is_none(), "{r}");
}

#[tokio::test]
async fn given_queue_delay_message_appears_after_it() {
    let (sqs, clock, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"DelaySeconds": "10"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "later"})).await;
    let a = call(&sqs, &ctx, "GetQueueAttributes", json!({"QueueUrl": URL, "AttributeNames": ["ApproximateNumberOfMessagesDelayed"]})).await;
    assert_eq!(a["Attributes"]["ApproximateNumberOfMessagesDelayed"], "1");
    assert!(call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL})).await.get("Messages").is_none());
    clock.advance_ms(10_000);
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL})).await;
    assert_eq!(r["Messages"][0]["Body"], "later");
}

#[tokio::test]
async fn purge_cooldown_is_sixty_seconds() {
    let (sqs, clock, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q"})).await;
    call(&sqs, &ctx, "PurgeQueue", json!({"QueueUrl": URL})).await;
    clock.advance_ms(59_999);
    let e = sqs.dispatch("PurgeQueue", json!({"QueueUrl": URL}), &ctx).await.unwrap_err();
    assert_eq!(sluice_core::AwsError::code(&e), "PurgeQueueInProgress");
    clock.advance_ms(1);
    call(&sqs, &ctx, "PurgeQueue", json!({"QueueUrl": URL})).await;
}

#[tokio::test]
async fn fifo_dedup_window_is_five_minutes() {
    let (sqs, clock, ctx) = setup();
    let url = "http://127.0.0.1:4566/000000000000/f.fifo";
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "f.fifo", "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}})).await;
    let a = call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": url, "MessageBody": "x", "MessageGroupId": "g"})).await;
    clock.advance_ms(299_999);
    let b = call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": url, "MessageBody": "x", "MessageGroupId": "g"})).await;
    assert_eq!(a["MessageId"], b["MessageId"]);
    clock.advance_ms(1);
    let c = call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": url, "MessageBody": "x", "MessageGroupId": "g"})).await;
    assert_ne!(a["MessageId"], c["MessageId"]);
}

/// The waiter cap (`--max-waiters`): a long poll that would park past it is refused at once
/// with RequestThrottled; receives that do not park are answered; the place is given back
/// when the parked poll is answered.
#[tokio::test]
async fn given_waiter_cap_reached_when_another_long_poll_would_park_should_refuse_it_at_once() {
    use sluice_core::AwsError;
    let clock = ManualClock::new(1_700_000_000_000);
    let sqs = Sqs::new(
        Arc::new(MemoryStore::new()),
        Arc::new(clock),
        SqsConfig { max_waiters: 1, ..SqsConfig::new("127.0.0.1:4566", [3; 32]) },
    );
    let ctx = RequestContext { account: "000000000000".into(), region: "us-east-1".into(), host: None, path: "/".into(), access_key: None };
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q"})).await;
    let parked = {
        let (sqs, ctx) = (sqs.clone(), ctx.clone());
        tokio::spawn(async move { sqs.dispatch("ReceiveMessage", json!({"QueueUrl": URL, "WaitTimeSeconds": 20}), &ctx).await })
    };
    while sqs.waiting() < 1 {
        tokio::task::yield_now().await;
    }
    let e = sqs.dispatch("ReceiveMessage", json!({"QueueUrl": URL, "WaitTimeSeconds": 20}), &ctx).await.unwrap_err();
    assert_eq!((e.code(), e.query_code(), e.status()), ("RequestThrottled", "RequestThrottled", 403));
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL, "WaitTimeSeconds": 0})).await;
    assert!(r.get("Messages").is_none(), "answered without parking: {r}");
    assert_eq!(sqs.waiting(), 1, "a refusal takes no place");

    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "wake"})).await;
    let r = parked.await.unwrap().unwrap();
    assert_eq!(r["Messages"][0]["Body"], "wake");
    assert_eq!(sqs.waiting(), 0, "the answered poll gave its place back");
}
