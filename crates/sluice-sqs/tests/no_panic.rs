//! No request can panic: arbitrary inputs through the protocol decoder and
//! every SQS operation must produce an answer or an AWS error, never a panic.
//!
//! Method: proptest generates arbitrary JSON-shaped inputs (mixing the member
//! names the operations read with random values) for every operation against
//! an in-memory store with one queue, and arbitrary bodies and headers for
//! `sluice_protocol::decode`.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sluice_core::ManualClock;
use sluice_sqs::{ops::OPERATIONS, RequestContext, Sqs, SqsConfig};
use sluice_store::MemoryStore;
use std::sync::Arc;

const MEMBERS: &[&str] = &[
    "QueueUrl", "QueueName", "Attributes", "tags", "Tags", "TagKeys", "MessageBody", "DelaySeconds", "MessageAttributes",
    "MessageSystemAttributes", "MessageGroupId", "MessageDeduplicationId", "Entries", "Id", "ReceiptHandle", "VisibilityTimeout",
    "MaxNumberOfMessages", "WaitTimeSeconds", "AttributeNames", "MessageAttributeNames", "MessageSystemAttributeNames",
    "ReceiveRequestAttemptId", "Label", "AWSAccountIds", "Actions", "SourceArn", "DestinationArn", "MaxNumberOfMessagesPerSecond",
    "TaskHandle", "MaxResults", "NextToken", "QueueNamePrefix", "QueueOwnerAWSAccountId", "DataType", "StringValue", "BinaryValue",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-5i64..50).prop_map(|n| json!(n)),
        (0i64..21).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("http://127.0.0.1:4566/000000000000/q")),
        Just(json!("q.fifo")),
        Just(json!("All")),
        Just(json!("arn:aws:sqs:us-east-1:000000000000:q")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(MEMBERS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn input() -> impl Strategy<Value = Value> {
    proptest::collection::vec((proptest::sample::select(MEMBERS), value()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn sqs_operations_never_panic(op in proptest::sample::select(OPERATIONS), input in input()) {
        let rt = rt();
        rt.block_on(async {
            let store = Arc::new(MemoryStore::new());
            let sqs = Sqs::new(store, Arc::new(ManualClock::new(1_700_000_000_000)), SqsConfig::new("127.0.0.1:4566", [1; 32]));
            let ctx = RequestContext {
                account: "000000000000".into(),
                region: "us-east-1".into(),
                host: None,
                path: "/".into(),
                access_key: None,
            };
            sqs.dispatch("CreateQueue", json!({"QueueName": "q"}), &ctx).await.unwrap();
            let _ = sqs.dispatch(op, input, &ctx).await;
        });
    }

    #[test]
    fn protocol_decode_never_panics(
        target in proptest::option::of(".{0,40}"),
        content_type in proptest::sample::select(vec!["application/x-amz-json-1.0", "application/x-www-form-urlencoded", "application/x-amz-cbor-1.1", "text/plain", ""]),
        path in "/[a-zA-Z0-9/._%-]{0,30}",
        body in proptest::collection::vec(any::<u8>(), 0..300),
        form in "(Action=[A-Za-z]{0,20}&)?(Version=2012-11-05&)?([A-Za-z.0-9]{1,20}=[^&]{0,10}&){0,6}",
    ) {
        let mut headers = http::HeaderMap::new();
        if let Some(t) = target.as_deref().and_then(|t| http::HeaderValue::from_str(t).ok()) {
            headers.insert("x-amz-target", t);
        }
        if !content_type.is_empty() {
            headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        }
        let uri: http::Uri = path.parse().unwrap_or_else(|_| "/".parse().unwrap());
        let _ = sluice_protocol::decode(&http::Method::POST, &uri, &headers, &body);
        let _ = sluice_protocol::decode(&http::Method::POST, &uri, &headers, form.as_bytes());
    }
}
