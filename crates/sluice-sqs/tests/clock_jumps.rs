//! Goal (RELIABILITY.md R14): SQS semantics under the real `SystemClock` do
//! not move when the wall clock jumps ±1 h or −1 day: visibility timeouts,
//! delays, the FIFO deduplication window, retention and long polls run on
//! monotonic time.
//!
//! Method: the service over the in-memory store with a `SystemClock` whose
//! `TimeSource` is moved by hand (`ManualTime`): the wall clock jumps while
//! monotonic time stands still, then monotonic time passes. A clock that read
//! the wall clock would make a message visible early after a forward jump, or
//! freeze it after a backward one, and these tests would fail. The long-poll
//! test runs on tokio's paused (virtual) time.

use serde_json::{json, Value};
use sluice_core::{ManualTime, SystemClock, TimeSource};
use sluice_sqs::{RequestContext, Sqs, SqsConfig};
use sluice_store::MemoryStore;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T0: u64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const URL: &str = "http://127.0.0.1:4566/000000000000/q";
const FIFO_URL: &str = "http://127.0.0.1:4566/000000000000/f.fifo";

fn setup_with(source: Arc<dyn TimeSource>) -> (Arc<Sqs>, Arc<SystemClock>, RequestContext) {
    let clock = Arc::new(SystemClock::with_source(source, 0));
    let sqs = Sqs::new(
        Arc::new(MemoryStore::new()),
        clock.clone(),
        SqsConfig::new("127.0.0.1:4566".to_string(), [3; 32]),
    );
    let ctx = RequestContext { account: "000000000000".into(), region: "us-east-1".into(), host: None, path: "/".into(), access_key: None };
    (sqs, clock, ctx)
}

fn setup() -> (Arc<Sqs>, ManualTime, RequestContext) {
    let t = ManualTime::new(T0);
    let (sqs, _, ctx) = setup_with(Arc::new(t.clone()));
    (sqs, t, ctx)
}

async fn call(sqs: &Arc<Sqs>, ctx: &RequestContext, op: &str, input: Value) -> Value {
    sqs.dispatch(op, input, ctx).await.unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn receive(sqs: &Arc<Sqs>, ctx: &RequestContext, url: &str) -> Option<String> {
    let r = call(sqs, ctx, "ReceiveMessage", json!({"QueueUrl": url, "AttributeNames": ["All"]})).await;
    r["Messages"][0]["Body"].as_str().map(str::to_string)
}

async fn visible_count(sqs: &Arc<Sqs>, ctx: &RequestContext) -> String {
    let a = call(sqs, ctx, "GetQueueAttributes", json!({"QueueUrl": URL, "AttributeNames": ["ApproximateNumberOfMessages"]})).await;
    a["Attributes"]["ApproximateNumberOfMessages"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn given_inflight_message_when_wall_clock_jumps_should_reappear_after_its_timeout_of_elapsed_time() {
    let (sqs, t, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "30"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "m"})).await;
    assert_eq!(receive(&sqs, &ctx, URL).await.as_deref(), Some("m"));
    // Forward jumps must not make it visible early.
    t.jump_wall_ms(HOUR_MS);
    assert_eq!(receive(&sqs, &ctx, URL).await, None, "visible after a +1 h wall jump");
    t.elapse_ms(29_999);
    t.jump_wall_ms(DAY_MS);
    assert_eq!(receive(&sqs, &ctx, URL).await, None, "visible early after a +1 day wall jump");
    // Backward jumps must not freeze it.
    t.jump_wall_ms(-DAY_MS - HOUR_MS);
    t.jump_wall_ms(-DAY_MS);
    t.elapse_ms(1);
    assert_eq!(receive(&sqs, &ctx, URL).await.as_deref(), Some("m"), "frozen by a -1 day wall jump");
}

#[tokio::test]
async fn given_delayed_message_when_wall_clock_jumps_should_appear_after_its_delay_of_elapsed_time() {
    let (sqs, t, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"DelaySeconds": "10"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "later"})).await;
    t.jump_wall_ms(HOUR_MS);
    assert_eq!(receive(&sqs, &ctx, URL).await, None, "delay cut short by a +1 h wall jump");
    t.jump_wall_ms(-HOUR_MS - DAY_MS);
    t.elapse_ms(10_000);
    assert_eq!(receive(&sqs, &ctx, URL).await.as_deref(), Some("later"), "delay stretched by a -1 day wall jump");
}

#[tokio::test]
async fn given_fifo_dedup_when_wall_clock_jumps_window_is_five_minutes_of_elapsed_time() {
    let (sqs, t, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "f.fifo", "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}})).await;
    let send = || call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": FIFO_URL, "MessageBody": "x", "MessageGroupId": "g"}));
    let a = send().await;
    t.jump_wall_ms(HOUR_MS);
    assert_eq!(send().await["MessageId"], a["MessageId"], "window cut short by a +1 h wall jump");
    t.elapse_ms(299_999);
    t.jump_wall_ms(-HOUR_MS - DAY_MS);
    assert_eq!(send().await["MessageId"], a["MessageId"], "window cut short");
    t.elapse_ms(1);
    let c = send().await;
    assert_ne!(c["MessageId"], a["MessageId"], "window stretched by a -1 day wall jump");
    let seq = |v: &Value| v["SequenceNumber"].as_str().unwrap().parse::<u128>().unwrap();
    assert!(seq(&c) > seq(&a), "sequence numbers must increase: {a} then {c}");
}

#[tokio::test]
async fn given_retention_when_wall_clock_jumps_forward_message_is_kept_until_its_period_has_elapsed() {
    let (sqs, t, ctx) = setup();
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"MessageRetentionPeriod": "60"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "keep"})).await;
    t.jump_wall_ms(DAY_MS);
    t.elapse_ms(59_999);
    assert_eq!(sqs.store().expire(sqs.clock().now_ms()).await.unwrap(), 0, "expired early after a +1 day wall jump");
    assert_eq!(visible_count(&sqs, &ctx).await, "1");
    t.jump_wall_ms(-2 * DAY_MS);
    t.elapse_ms(1);
    assert_eq!(sqs.store().expire(sqs.clock().now_ms()).await.unwrap(), 1, "retention stretched by a -2 day wall jump");
    assert_eq!(visible_count(&sqs, &ctx).await, "0");
}

/// Wall clock = T0 + tokio's virtual elapsed time + hand-made jumps;
/// monotonic clock = tokio's virtual elapsed time.
#[derive(Debug)]
struct TokioTime {
    origin: tokio::time::Instant,
    jump_ms: AtomicI64,
}

impl TimeSource for TokioTime {
    fn wall_ms(&self) -> u64 {
        (T0 + self.origin.elapsed().as_millis() as u64).saturating_add_signed(self.jump_ms.load(Ordering::SeqCst))
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

#[tokio::test(start_paused = true)]
async fn given_long_poll_when_wall_clock_jumps_back_should_wake_when_inflight_message_reappears() {
    let time = Arc::new(TokioTime { origin: tokio::time::Instant::now(), jump_ms: AtomicI64::new(0) });
    let (sqs, _, ctx) = setup_with(time.clone());
    call(&sqs, &ctx, "CreateQueue", json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "2"}})).await;
    call(&sqs, &ctx, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "m"})).await;
    assert_eq!(receive(&sqs, &ctx, URL).await.as_deref(), Some("m"));
    let jumper = {
        let time = time.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            time.jump_ms.store(-DAY_MS, Ordering::SeqCst);
        })
    };
    let started = tokio::time::Instant::now();
    let r = call(&sqs, &ctx, "ReceiveMessage", json!({"QueueUrl": URL, "WaitTimeSeconds": 20})).await;
    jumper.await.unwrap();
    assert_eq!(r["Messages"][0]["Body"], "m");
    // Virtual time, so deterministic: the poll ended when the message
    // reappeared (2 s, give or take the timer's millisecond), not at its 20 s
    // wait time nor a day later.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(3), "the long poll woke after {waited:?}");
}
