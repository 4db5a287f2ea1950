//! A SendMessageBatch decoded into its shape (`sluice_protocol::decode_typed`,
//! `Sqs::dispatch_typed`) answers exactly as the same request decoded into a
//! `serde_json::Value` (`decode`, `Sqs::dispatch`): the same output or the
//! same error, and the same messages stored.
//!
//! Method: two services over fresh in-memory stores with the same manual
//! clock and the same queues; every body below goes through the general
//! path on one and the typed path on the other (the test checks that the
//! typed path took it), and the answers are compared with MessageIds (random)
//! blanked; then both queues are received and compared the same way.

use http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::{json, Value};
use sluice_core::{AwsError, ManualClock};
use sluice_sqs::{RequestContext, Sqs, SqsConfig};
use sluice_store::MemoryStore;
use std::sync::Arc;

const URL: &str = "http://127.0.0.1:4566/000000000000/q";
const FIFO_URL: &str = "http://127.0.0.1:4566/000000000000/f.fifo";

fn service() -> Arc<Sqs> {
    Sqs::new(Arc::new(MemoryStore::new()), Arc::new(ManualClock::new(1_700_000_000_000)), SqsConfig::new("127.0.0.1:4566", [3; 32]))
}

fn ctx() -> RequestContext {
    RequestContext { account: "000000000000".into(), region: "us-east-1".into(), host: None, path: "/".into(), access_key: None }
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.SendMessageBatch"));
    h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    h
}

/// The answer with every MessageId blanked, or the error's code and message.
fn comparable(r: Result<Value, sluice_sqs::SqsError>) -> Result<Value, String> {
    fn blank(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "MessageId" || k == "ReceiptHandle" {
                        *x = Value::String("-".into());
                    } else {
                        blank(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(blank),
            _ => {}
        }
    }
    r.map(|mut v| {
        blank(&mut v);
        v
    })
    .map_err(|e| format!("{} {}: {}", e.code(), e.status(), e.message()))
}

#[tokio::test]
async fn given_the_same_send_message_batch_the_typed_path_should_answer_and_store_as_the_general_path_does() {
    let (general, typed, ctx) = (service(), service(), ctx());
    for sqs in [&general, &typed] {
        sqs.dispatch("CreateQueue", json!({"QueueName": "q"}), &ctx).await.unwrap();
        sqs.dispatch("CreateQueue", json!({"QueueName": "f.fifo", "Attributes": {"FifoQueue": "true"}}), &ctx).await.unwrap();
    }
    let big = "x".repeat(100_000);
    let eleven: Vec<Value> = (0..11).map(|i| json!({"Id": format!("e{i}"), "MessageBody": "b"})).collect();
    let bodies: Vec<Value> = vec![
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two \u{e9} \u{1F600}", "DelaySeconds": 5}]}),
        json!({"Entries": [{"Id": "a", "MessageBody": "one"}], "QueueUrl": URL}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "one"}, {"Id": "a", "MessageBody": "two"}]}),
        json!({"QueueUrl": URL, "Entries": []}),
        json!({"QueueUrl": URL}),
        json!({"QueueUrl": URL, "Entries": eleven}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "bad id!", "MessageBody": "one"}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a"}, {"Id": "b", "MessageBody": ""}, {"Id": "c", "MessageBody": "ok"}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "late", "DelaySeconds": 901}, {"Id": "b", "MessageBody": "x", "DelaySeconds": -1}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "nul \u{0} inside"}, {"Id": "b", "MessageBody": "\u{ffff}"}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": big}, {"Id": "b", "MessageBody": big}, {"Id": "c", "MessageBody": big}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "b", "MessageDeduplicationId": "d"}, {"Id": "b", "MessageBody": "b", "MessageGroupId": "g"}]}),
        json!({"QueueUrl": "http://127.0.0.1:4566/000000000000/nope", "Entries": [{"Id": "a", "MessageBody": "b"}]}),
        json!({"QueueUrl": "not a url", "Entries": [{"Id": "a", "MessageBody": "b"}]}),
        json!({"Entries": [{"Id": "a", "MessageBody": "b"}]}),
        json!({"QueueUrl": FIFO_URL, "Entries": [{"Id": "a", "MessageBody": "b"}]}),
        json!({"QueueUrl": FIFO_URL, "Entries": [{"Id": "a", "MessageBody": "b", "MessageGroupId": "g"}]}),
        json!({"QueueUrl": FIFO_URL, "Entries": [{"Id": "a", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "d1"}, {"Id": "b", "MessageBody": "c", "MessageGroupId": "g", "MessageDeduplicationId": "d1"}, {"Id": "c", "MessageBody": "c", "MessageGroupId": "bad group", "MessageDeduplicationId": "d2"}]}),
        json!({"QueueUrl": FIFO_URL, "Entries": [{"Id": "a", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "d3", "DelaySeconds": 5}]}),
    ];
    let uri = Uri::from_static("http://127.0.0.1:4566/");
    for body in &bodies {
        let bytes = serde_json::to_vec(body).unwrap();
        let g = sluice_protocol::decode(&Method::POST, &uri, &headers(), &bytes).unwrap();
        let t = sluice_protocol::decode_typed(&Method::POST, &uri, &headers(), &bytes).unwrap();
        assert!(g.typed.is_none());
        let typed_input = t.typed.unwrap_or_else(|| panic!("the typed path takes {body}"));
        assert_eq!(typed_input.to_value(), g.input, "{body}");
        let a = comparable(general.dispatch(&g.operation, g.input, &ctx).await);
        let b = comparable(typed.dispatch_typed(typed_input, &ctx).await);
        assert_eq!(a, b, "{body}");
    }
    // A FIFO group's first message blocks the rest of it while in flight.
    for (url, least) in [(URL, 3), (FIFO_URL, 1)] {
        let receive = json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "AttributeNames": ["All"], "MessageAttributeNames": ["All"]});
        let mut seen = 0;
        loop {
            let a = comparable(general.dispatch("ReceiveMessage", receive.clone(), &ctx).await).unwrap();
            let b = comparable(typed.dispatch("ReceiveMessage", receive.clone(), &ctx).await).unwrap();
            assert_eq!(a, b, "{url}");
            let Some(m) = a["Messages"].as_array() else { break };
            seen += m.len();
        }
        assert!(seen >= least, "{url}: {seen} messages received");
    }
}

#[test]
fn given_message_attributes_or_unknown_members_the_request_should_take_the_general_path() {
    let uri = Uri::from_static("http://127.0.0.1:4566/");
    for body in [
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "b", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "b", "Unknown": 1}]}),
        json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "b", "DelaySeconds": 1.5}]}),
        json!({"QueueUrl": URL, "Entries": [["a", "b"]]}),
    ] {
        let bytes = serde_json::to_vec(&body).unwrap();
        let t = sluice_protocol::decode_typed(&Method::POST, &uri, &headers(), &bytes);
        match t {
            Ok(r) => assert!(r.typed.is_none(), "{body}"),
            Err(e) => assert_eq!(e.code(), "SerializationException", "{body}"),
        }
    }
}

#[tokio::test]
async fn given_the_same_delete_message_batch_the_typed_path_should_answer_and_delete_as_the_general_path_does() {
    let (general, typed, ctx) = (service(), service(), ctx());
    let mut handles: Vec<Vec<String>> = Vec::new();
    for sqs in [&general, &typed] {
        sqs.dispatch("CreateQueue", json!({"QueueName": "q"}), &ctx).await.unwrap();
        let entries: Vec<Value> = (0..10).map(|i| json!({"Id": format!("s{i}"), "MessageBody": format!("m{i}")})).collect();
        sqs.dispatch("SendMessageBatch", json!({"QueueUrl": URL, "Entries": entries}), &ctx).await.unwrap();
        let r = sqs.dispatch("ReceiveMessage", json!({"QueueUrl": URL, "MaxNumberOfMessages": 10}), &ctx).await.unwrap();
        let h: Vec<String> = r["Messages"].as_array().unwrap().iter().map(|m| m["ReceiptHandle"].as_str().unwrap().to_owned()).collect();
        assert_eq!(h.len(), 10);
        handles.push(h);
    }
    // Each case is built from one service's own receipt handles.
    let cases: Vec<fn(&[String]) -> Value> = vec![
        |h| json!({"QueueUrl": URL, "Entries": [{"Id": "a", "ReceiptHandle": h[0]}, {"Id": "b", "ReceiptHandle": h[1]}]}),
        |h| json!({"QueueUrl": URL, "Entries": [{"Id": "a", "ReceiptHandle": h[0]}]}),
        |h| json!({"QueueUrl": URL, "Entries": [{"Id": "a", "ReceiptHandle": h[2]}, {"Id": "a", "ReceiptHandle": h[3]}]}),
        |_| json!({"QueueUrl": URL, "Entries": []}),
        |_| json!({"QueueUrl": URL}),
        |h| json!({"QueueUrl": URL, "Entries": [{"Id": "a"}, {"Id": "b", "ReceiptHandle": "garbage"}, {"Id": "c", "ReceiptHandle": h[4]}]}),
        |h| json!({"QueueUrl": URL, "Entries": [{"Id": "bad id!", "ReceiptHandle": h[5]}]}),
        |h| json!({"QueueUrl": URL, "Entries": (0..11).map(|i| json!({"Id": format!("e{i}"), "ReceiptHandle": h[6]})).collect::<Vec<_>>()}),
        |h| json!({"QueueUrl": "http://127.0.0.1:4566/000000000000/nope", "Entries": [{"Id": "a", "ReceiptHandle": h[6]}]}),
        |h| json!({"Entries": [{"Id": "a", "ReceiptHandle": h[6]}]}),
        |h| json!({"QueueUrl": URL, "Entries": h[6..].iter().enumerate().map(|(i, h)| json!({"Id": format!("d{i}"), "ReceiptHandle": h})).collect::<Vec<_>>()}),
    ];
    let uri = Uri::from_static("http://127.0.0.1:4566/");
    let mut headers = headers();
    headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.DeleteMessageBatch"));
    for case in &cases {
        let (gb, tb) = (case(&handles[0]), case(&handles[1]));
        let g = sluice_protocol::decode(&Method::POST, &uri, &headers, &serde_json::to_vec(&gb).unwrap()).unwrap();
        let t = sluice_protocol::decode_typed(&Method::POST, &uri, &headers, &serde_json::to_vec(&tb).unwrap()).unwrap();
        let typed_input = t.typed.unwrap_or_else(|| panic!("the typed path takes {tb}"));
        assert_eq!(typed_input.to_value(), tb, "{tb}");
        let a = comparable(general.dispatch(&g.operation, g.input, &ctx).await);
        let b = comparable(typed.dispatch_typed(typed_input, &ctx).await);
        assert_eq!(a, b, "{gb}");
    }
    let count = json!({"QueueUrl": URL, "AttributeNames": ["ApproximateNumberOfMessagesNotVisible"]});
    let a = general.dispatch("GetQueueAttributes", count.clone(), &ctx).await.unwrap();
    let b = typed.dispatch("GetQueueAttributes", count, &ctx).await.unwrap();
    assert_eq!(a, b);
    // Left in flight: the three handles only batches refused whole named.
    assert_eq!(a["Attributes"]["ApproximateNumberOfMessagesNotVisible"], "3");
}
