//! The long-poll waiter cap (`--max-waiters`, RELIABILITY.md R18 and S16):
//! past the cap a long poll is refused at once with `RequestThrottled` (HTTP
//! 403, legacy code `RequestThrottled`) in the shape of its protocol, never
//! parked and never answered early-empty; receives that do not park are
//! still served; and once the parked polls end, new ones are accepted again.
//!
//! Method: a server with `--max-waiters 5`; five raw-HTTP long polls are
//! parked on an empty queue (`/health` reports `long_poll_waiters`, so the
//! test knows when they are parked, without sleeping on a guess); the sixth
//! is sent in the JSON and the query protocol and through the Rust SDK.

use sluice_testkit::{http_get, http_post, Engine, RawResponse, TestServer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
/// The parked polls' wait: long enough for the checks below to run while they wait.
const PARKED_WAIT_SECS: u32 = 6;
/// How long the test waits for a condition the server reports before failing.
const PATIENCE: Duration = Duration::from_secs(30);

fn json(addr: SocketAddr, op: &str, body: &str) -> RawResponse {
    let target = format!("AmazonSQS.{op}");
    http_post(addr, "/", &[JSON, ("X-Amz-Target", &target), ("x-amzn-query-mode", "true")], body.as_bytes())
}

fn waiters(addr: SocketAddr) -> u64 {
    let r = http_get(addr, "/health").expect("/health answers");
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("/health is JSON");
    v["long_poll_waiters"].as_u64().expect("/health reports long_poll_waiters")
}

fn wait_for_waiters(addr: SocketAddr, n: u64) {
    let start = Instant::now();
    while waiters(addr) != n {
        assert!(start.elapsed() < PATIENCE, "the server never reported {n} parked long polls");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_cap_reached_when_another_long_poll_arrives_should_refuse_it_with_request_throttled() {
    let s = TestServer::start(env!("CARGO_BIN_EXE_sluice").as_ref(), Engine::Memory, &["--max-waiters", "5"]);
    let addr = s.addr;
    let url = format!("http://{addr}/000000000000/parked");
    assert_eq!(json(addr, "CreateQueue", r#"{"QueueName":"parked"}"#).status, 200);
    assert_eq!(json(addr, "CreateQueue", r#"{"QueueName":"full"}"#).status, 200);
    let full_url = format!("http://{addr}/000000000000/full");
    let sent = json(addr, "SendMessage", &format!(r#"{{"QueueUrl":"{full_url}","MessageBody":"ready"}}"#));
    assert_eq!(sent.status, 200, "{}", sent.body);

    let poll = format!(r#"{{"QueueUrl":"{url}","WaitTimeSeconds":{PARKED_WAIT_SECS}}}"#);
    let parked: Vec<_> = (0..5)
        .map(|_| {
            let poll = poll.clone();
            std::thread::spawn(move || json(addr, "ReceiveMessage", &poll))
        })
        .collect();
    wait_for_waiters(addr, 5);

    // The sixth, AWS JSON 1.0: 403, the modelled type, the legacy code in the header.
    let r = json(addr, "ReceiveMessage", &format!(r#"{{"QueueUrl":"{url}","WaitTimeSeconds":20}}"#));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-amzn-query-error"), Some("RequestThrottled;Sender"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["__type"], "com.amazonaws.sqs#RequestThrottled");
    assert!(v["message"].as_str().unwrap().contains("--max-waiters"), "{}", r.body);

    // The sixth, query protocol: an XML ErrorResponse with the legacy code.
    let form = format!("Action=ReceiveMessage&Version=2012-11-05&QueueUrl={url}&WaitTimeSeconds=20");
    let r = http_post(addr, "/", &[FORM], form.as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("<Code>RequestThrottled</Code>"), "{}", r.body);
    assert!(r.body.contains("<Type>Sender</Type>"), "{}", r.body);

    // The Rust SDK (JSON, query-compatible) sees the code its retry classifier
    // lists as throttling.
    let sdk = s.sqs().await;
    let e = sdk.receive_message().queue_url(&url).wait_time_seconds(20).send().await.expect_err("refused");
    assert_eq!(aws_sdk_sqs::error::ProvideErrorMetadata::code(&e), Some("RequestThrottled"), "{e:?}");

    // Receives that do not park are still served: no wait, or messages at hand.
    let r = json(addr, "ReceiveMessage", &format!(r#"{{"QueueUrl":"{url}","WaitTimeSeconds":0}}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = json(addr, "ReceiveMessage", &format!(r#"{{"QueueUrl":"{full_url}","WaitTimeSeconds":20}}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("ready"), "{}", r.body);
    assert_eq!(waiters(addr), 5, "refusals and immediate answers hold no place");

    // The parked polls end empty at their wait; then long polls are accepted again.
    for p in parked {
        let r = p.join().expect("poll thread");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(!r.body.contains("Messages"), "{}", r.body);
    }
    wait_for_waiters(addr, 0);
    let r = json(addr, "ReceiveMessage", &format!(r#"{{"QueueUrl":"{url}","WaitTimeSeconds":1}}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = sdk.receive_message().queue_url(&url).wait_time_seconds(1).send().await;
    assert!(e.is_ok(), "{e:?}");
}
