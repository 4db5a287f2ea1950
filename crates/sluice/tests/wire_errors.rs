//! Bad input on the wire: malformed bodies, unknown operations and missing
//! parameters get AWS's error in the protocol's shape and change nothing.
//!
//! Method: raw HTTP requests (no SDK would send these) against the real binary,
//! checking status, error code and shape, then checking the server still works.

use sluice_testkit::{http_post, Engine, TestServer};

fn server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_sluice").as_ref(), Engine::Memory, &[])
}

const JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[test]
fn json_protocol_errors_have_type_and_query_error_header() {
    let s = server();
    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.GetQueueUrl"), ("x-amzn-query-mode", "true")], br#"{"QueueName":"nope"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-amzn-query-error"), Some("AWS.SimpleQueueService.NonExistentQueue;Sender"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
    assert!(v["message"].as_str().unwrap().contains("does not exist"));
    assert!(r.header("x-amzn-requestid").is_some());

    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")], b"{not json");
    assert_eq!(r.status, 400);
    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.NoSuchOp")], b"{}");
    assert_eq!(r.status, 400);
    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")], b"{}");
    assert_eq!(r.status, 400);
    assert!(r.header("x-amzn-query-error").unwrap().starts_with("MissingParameter;"));
    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")], br#"{"QueueName": 5}"#);
    assert_eq!(r.status, 400);
    let deep = "[".repeat(100_000);
    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")], deep.as_bytes());
    assert_eq!(r.status, 400);
    // Nothing was created by any of the above.
    let r = http_post(s.addr, "/", &[JSON, ("X-Amz-Target", "AmazonSQS.ListQueues")], b"{}");
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("QueueUrl"), "{}", r.body);
}

#[test]
fn query_protocol_errors_are_xml_error_responses() {
    let s = server();
    let r = http_post(s.addr, "/", &[FORM], b"Action=GetQueueUrl&Version=2012-11-05&QueueName=nope");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("<ErrorResponse"), "{}", r.body);
    assert!(r.body.contains("<Type>Sender</Type>"));
    assert!(r.body.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"));
    assert!(r.body.contains("<RequestId>"));
    let r = http_post(s.addr, "/", &[FORM], b"Action=Bogus&Version=2012-11-05");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("<Code>InvalidAction</Code>"), "{}", r.body);
    let r = http_post(s.addr, "/", &[FORM], b"Version=2012-11-05");
    assert_eq!(r.status, 400);
    let r = http_post(s.addr, "/", &[FORM], b"Action=CreateQueue&Version=2012-11-05&QueueName=q1&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=abc");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("InvalidAttributeValue"), "{}", r.body);
    // A well-formed request works, addressed by the queue URL path.
    let r = http_post(s.addr, "/", &[FORM], b"Action=CreateQueue&Version=2012-11-05&QueueName=q1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<CreateQueueResponse"), "{}", r.body);
    let r = http_post(s.addr, "/000000000000/q1", &[FORM], b"Action=SendMessage&Version=2012-11-05&MessageBody=hi%0D%0A");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<MD5OfMessageBody>"), "{}", r.body);
    let r = http_post(s.addr, "/000000000000/q1", &[FORM], b"Action=ReceiveMessage&Version=2012-11-05");
    assert!(r.body.contains("<Body>hi&#xD;\n</Body>") || r.body.contains("<Body>hi&#13;\n</Body>"), "{}", r.body);
}

#[test]
fn sts_get_caller_identity_reports_the_account() {
    let s = server();
    let r = http_post(s.addr, "/", &[FORM], b"Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<Account>000000000000</Account>"), "{}", r.body);
}

#[test]
fn graceful_shutdown_on_sigterm_exits_zero() {
    let mut s = server();
    let r = http_post(s.addr, "/", &[FORM], b"Action=CreateQueue&Version=2012-11-05&QueueName=q1");
    assert_eq!(r.status, 200);
    assert_eq!(s.stop(), Some(0));
}
