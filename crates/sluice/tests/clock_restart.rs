//! Goal (RELIABILITY.md R15): a restart with the wall clock set back a day
//! — every stored time now lies in the future — starts, loses nothing,
//! expires nothing early, does not freeze in-flight or delayed messages or
//! stretch the FIFO deduplication window by the day, and FIFO sequence
//! numbers continue above the persisted maximum.
//!
//! Method: the SQS service over the durable engine, wired as `main.rs` wires
//! it. The first run uses a `ManualClock` one day ahead of the "wall clock";
//! the engine is closed (or checkpointed first) and reopened, and the second
//! run uses `SystemClock::with_source(wall, store.time_floor_ms())` over a
//! hand-moved `ManualTime` standing at the wall clock. Without the floor the
//! second run's clock would stand a day behind the stored deadlines and the
//! visibility, delay and deduplication checks below would fail.

use serde_json::{json, Value};
use sluice_core::{Clock, ManualClock, ManualTime, SystemClock};
use sluice_engine::{FsyncPolicy, LogOptions, LogStore, StdIo};
use sluice_sqs::{RequestContext, Sqs, SqsConfig};
use sluice_store::Store;
use std::path::Path;
use std::sync::Arc;

const WALL: u64 = 1_700_000_000_000;
const DAY_MS: u64 = 24 * 3_600_000;
const URL: &str = "http://127.0.0.1:4566/000000000000/q";
const FIFO_URL: &str = "http://127.0.0.1:4566/000000000000/f.fifo";

fn open(dir: &Path) -> Arc<LogStore> {
    let mut o = LogOptions::new(Arc::new(StdIo));
    o.fsync = FsyncPolicy::Always;
    LogStore::open(dir, o).unwrap()
}

fn service(store: &Arc<LogStore>, clock: Arc<dyn Clock>) -> Arc<Sqs> {
    Sqs::new(store.clone() as Arc<dyn Store>, clock, SqsConfig::new("127.0.0.1:4566", [7; 32]))
}

fn ctx() -> RequestContext {
    RequestContext { account: "000000000000".into(), region: "us-east-1".into(), host: None, path: "/".into(), access_key: None }
}

async fn call(sqs: &Arc<Sqs>, op: &str, input: Value) -> Value {
    sqs.dispatch(op, input, &ctx()).await.unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn bodies(sqs: &Arc<Sqs>, url: &str) -> Vec<String> {
    let r = call(sqs, "ReceiveMessage", json!({"QueueUrl": url, "MaxNumberOfMessages": 10})).await;
    let mut out: Vec<String> = r["Messages"].as_array().map_or(vec![], |ms| ms.iter().map(|m| m["Body"].as_str().unwrap().to_string()).collect());
    out.sort();
    out
}

async fn counts(sqs: &Arc<Sqs>, url: &str) -> (u64, u64, u64) {
    let a = call(
        sqs,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]}),
    )
    .await;
    let n = |k: &str| a["Attributes"][k].as_str().unwrap().parse::<u64>().unwrap();
    (n("ApproximateNumberOfMessages"), n("ApproximateNumberOfMessagesNotVisible"), n("ApproximateNumberOfMessagesDelayed"))
}

fn seq(v: &Value) -> u128 {
    v["SequenceNumber"].as_str().unwrap().parse().unwrap()
}

async fn restart_with_clock_set_back(checkpoint_first: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let future = WALL + DAY_MS;

    // First run: the clock stands a day ahead of the wall clock.
    let store = open(tmp.path());
    let ahead = ManualClock::new(future);
    let sqs = service(&store, Arc::new(ahead.clone()));
    call(&sqs, "CreateQueue", json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "30", "MessageRetentionPeriod": "120"}})).await;
    call(&sqs, "CreateQueue", json!({"QueueName": "f.fifo", "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}})).await;
    for b in ["a", "b", "c"] {
        call(&sqs, "SendMessage", json!({"QueueUrl": URL, "MessageBody": b})).await;
    }
    call(&sqs, "SendMessage", json!({"QueueUrl": URL, "MessageBody": "delayed", "DelaySeconds": 10})).await;
    let mut fifo_sent = Vec::new();
    for b in ["f0", "f1", "f2"] {
        fifo_sent.push(call(&sqs, "SendMessage", json!({"QueueUrl": FIFO_URL, "MessageBody": b, "MessageGroupId": "g"})).await);
    }
    ahead.advance_ms(5_000);
    // "a", "b", "c" go in flight until future + 35 s.
    assert_eq!(bodies(&sqs, URL).await, ["a", "b", "c"]);
    let persisted_max = ahead.now_ms();
    if checkpoint_first {
        store.checkpoint().await.unwrap();
    }
    drop(sqs);
    store.close().await.unwrap();
    drop(store);

    // Second run: the wall clock is a day behind everything stored.
    let store = open(tmp.path());
    let floor = store.time_floor_ms();
    assert!(floor >= persisted_max, "floor {floor} below the latest persisted time {persisted_max}");
    let wall = ManualTime::new(WALL);
    let clock = Arc::new(SystemClock::with_source(Arc::new(wall.clone()), floor));
    assert!(clock.now_ms() >= floor);
    assert_eq!(clock.start_ahead_of_wall_ms(), floor - WALL);
    let sqs = service(&store, clock.clone());

    // Nothing lost, nothing expired (retention 120 s, sent 5 s before the floor).
    assert_eq!(sqs.store().expire(clock.now_ms()).await.unwrap(), 0);
    assert_eq!(counts(&sqs, URL).await, (0, 3, 1));
    assert_eq!(counts(&sqs, FIFO_URL).await, (3, 0, 0));

    // The delayed message appears after the rest of its delay (5 s of 10),
    // the in-flight ones after the rest of their 30 s: not a day later.
    wall.elapse_ms(5_000);
    assert_eq!(bodies(&sqs, URL).await, ["delayed"]);
    wall.elapse_ms(25_000);
    assert_eq!(bodies(&sqs, URL).await, ["a", "b", "c"]);

    // FIFO: the deduplication window ends 5 min after the first run's sends,
    // measured from the floor; sequence numbers continue above the stored ones.
    let dup = call(&sqs, "SendMessage", json!({"QueueUrl": FIFO_URL, "MessageBody": "f0", "MessageGroupId": "g"})).await;
    assert_eq!(dup["MessageId"], fifo_sent[0]["MessageId"], "a duplicate within the window answers with the original");
    wall.elapse_ms(300_000);
    let again = call(&sqs, "SendMessage", json!({"QueueUrl": FIFO_URL, "MessageBody": "f0", "MessageGroupId": "g"})).await;
    let max_stored = fifo_sent.iter().map(seq).max().unwrap();
    assert!(seq(&again) > max_stored, "sequence number {} not above the stored maximum {max_stored}", seq(&again));
    assert_eq!(counts(&sqs, FIFO_URL).await.0, 4, "the resend after the window must be enqueued");

    // Retention runs from the stored send times on the floor-based clock.
    wall.elapse_ms(120_000);
    assert!(sqs.store().expire(clock.now_ms()).await.unwrap() >= 4);
    drop(sqs);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_restart_from_log_with_wall_clock_set_back_a_day_nothing_is_lost_or_frozen() {
    restart_with_clock_set_back(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_restart_from_checkpoint_with_wall_clock_set_back_a_day_nothing_is_lost_or_frozen() {
    restart_with_clock_set_back(true).await;
}
