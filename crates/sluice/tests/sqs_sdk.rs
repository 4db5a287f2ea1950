//! End-to-end tests of SQS standard queues through the official Rust SDK
//! (AWS JSON 1.0 with `x-amzn-query-mode`), against the real binary.
//!
//! Method: each test starts its own server (durable engine, temp dir) on a free loopback port
//! and drives it only through `aws-sdk-sqs`, checking results, digests and
//! the error codes the SDK surfaces. No sleeps decide outcomes: visibility is
//! driven with timeouts of 0 and ChangeMessageVisibility.

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use sluice_testkit::{Engine, TestServer};
use std::collections::HashSet;

fn server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_sluice").as_ref(), Engine::DurableTemp, &[])
}

fn code<E: ProvideErrorMetadata>(e: &aws_sdk_sqs::error::SdkError<E>) -> String {
    e.as_service_error().and_then(|s| s.code()).unwrap_or("<no service error>").to_string()
}

async fn queue(c: &Client, name: &str) -> String {
    c.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

fn md5_hex(b: &[u8]) -> String {
    // Independent MD5 (RFC 1321) so the test does not trust the server's digest code.
    let mut s: [u32; 64] = [0; 64];
    let shifts = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    for (i, x) in s.iter_mut().enumerate() {
        *x = shifts[(i / 16) * 4 + i % 4];
    }
    let k: Vec<u32> = (0..64).map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32).collect();
    let (mut a0, mut b0, mut c0, mut d0) = (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = b.to_vec();
    let bits = (b.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk.chunks(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f2 = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f2.rotate_left(s[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0].iter().flat_map(|x| x.to_le_bytes()).map(|x| format!("{x:02x}")).collect()
}

fn attr_digest(attrs: &[(&str, &str, u8, &[u8])]) -> String {
    let mut sorted = attrs.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut buf = Vec::new();
    for (name, ty, transport, value) in sorted {
        buf.extend_from_slice(&(name.len() as u32).to_be_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&(ty.len() as u32).to_be_bytes());
        buf.extend_from_slice(ty.as_bytes());
        buf.push(transport);
        buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
        buf.extend_from_slice(value);
    }
    md5_hex(&buf)
}

#[tokio::test]
async fn queue_lifecycle_create_get_list_attributes_delete() {
    let s = server();
    let c = s.sqs().await;
    let url = c
        .create_queue()
        .queue_name("jobs")
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .attributes(QueueAttributeName::DelaySeconds, "2")
        .tags("team", "core")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert!(url.ends_with("/000000000000/jobs"), "{url}");
    // Same name, same attributes: the existing URL.
    let again = c.create_queue().queue_name("jobs").attributes(QueueAttributeName::VisibilityTimeout, "45").send().await.unwrap();
    assert_eq!(again.queue_url.unwrap(), url);
    // Same name, different attributes: QueueNameExists (legacy code QueueAlreadyExists).
    let e = c.create_queue().queue_name("jobs").attributes(QueueAttributeName::VisibilityTimeout, "46").send().await.unwrap_err();
    assert_eq!(code(&e), "QueueAlreadyExists");
    // Invalid names.
    for bad in ["", "has space", "dot.ted", &"x".repeat(81)] {
        let e = c.create_queue().queue_name(bad).send().await.unwrap_err();
        assert!(["InvalidParameterValue", "MissingParameter"].contains(&code(&e).as_str()), "{bad}: {}", code(&e));
    }
    assert_eq!(c.get_queue_url().queue_name("jobs").send().await.unwrap().queue_url.unwrap(), url);
    assert_eq!(
        c.get_queue_url().queue_name("jobs").queue_owner_aws_account_id("000000000000").send().await.unwrap().queue_url.unwrap(),
        url
    );
    let e = c.get_queue_url().queue_name("nope").send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.NonExistentQueue");

    let attrs = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let a = attrs.attributes.unwrap();
    assert_eq!(a[&QueueAttributeName::VisibilityTimeout], "45");
    assert_eq!(a[&QueueAttributeName::DelaySeconds], "2");
    assert_eq!(a[&QueueAttributeName::MaximumMessageSize], "1048576");
    assert_eq!(a[&QueueAttributeName::MessageRetentionPeriod], "345600");
    assert_eq!(a[&QueueAttributeName::ReceiveMessageWaitTimeSeconds], "0");
    assert_eq!(a[&QueueAttributeName::QueueArn], "arn:aws:sqs:us-east-1:000000000000:jobs");
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert!(a[&QueueAttributeName::CreatedTimestamp].parse::<u64>().unwrap() > 1_600_000_000);
    assert!(a.contains_key(&QueueAttributeName::LastModifiedTimestamp));
    // One attribute only.
    let one = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    assert_eq!(one.attributes.unwrap().len(), 1);

    c.set_queue_attributes().queue_url(&url).attributes(QueueAttributeName::VisibilityTimeout, "5").send().await.unwrap();
    let a = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::VisibilityTimeout).send().await.unwrap();
    assert_eq!(a.attributes.unwrap()[&QueueAttributeName::VisibilityTimeout], "5");
    let e = c.set_queue_attributes().queue_url(&url).attributes(QueueAttributeName::VisibilityTimeout, "43201").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidAttributeValue");
    let e = c.set_queue_attributes().queue_url(&url).attributes(QueueAttributeName::QueueArn, "x").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidAttributeName");

    assert_eq!(c.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap()["team"], "core");

    c.delete_queue().queue_url(&url).send().await.unwrap();
    let e = c.get_queue_url().queue_name("jobs").send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.NonExistentQueue");
    let e = c.send_message().queue_url(&url).message_body("x").send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.NonExistentQueue");
    // Re-creating the name within 60 s is refused.
    let e = c.create_queue().queue_name("jobs").send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.QueueDeletedRecently");
}

#[tokio::test]
async fn list_queues_by_prefix_with_pagination() {
    let s = server();
    let c = s.sqs().await;
    for i in 0..7 {
        queue(&c, &format!("page-{i}")).await;
    }
    queue(&c, "other").await;
    let all = c.list_queues().queue_name_prefix("page-").send().await.unwrap();
    assert_eq!(all.queue_urls.unwrap().len(), 7);
    assert!(all.next_token.is_none());
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let r = c.list_queues().queue_name_prefix("page-").max_results(3).set_next_token(token).send().await.unwrap();
        seen.extend(r.queue_urls.unwrap_or_default());
        token = r.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    let e = c.list_queues().max_results(1001).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
}

#[tokio::test]
async fn send_receive_delete_with_attributes_and_exact_md5s() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "msgs").await;
    let body = "héllo\r\nworld 😀";
    let sent = c
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .message_attributes("s", MessageAttributeValue::builder().data_type("String").string_value("v1").build().unwrap())
        .message_attributes("n", MessageAttributeValue::builder().data_type("Number.int").string_value("42").build().unwrap())
        .message_attributes(
            "b",
            MessageAttributeValue::builder().data_type("Binary").binary_value(aws_sdk_sqs::primitives::Blob::new(vec![0u8, 1, 2, 255])).build().unwrap(),
        )
        .message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder().data_type("String").string_value("Root=1-5759e988-bd862e3fe1be46a994272793").build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.md5_of_message_body.as_deref(), Some(md5_hex(body.as_bytes()).as_str()));
    let expected_attrs = attr_digest(&[("s", "String", 1, b"v1"), ("n", "Number.int", 1, b"42"), ("b", "Binary", 2, &[0, 1, 2, 255])]);
    assert_eq!(sent.md5_of_message_attributes.as_deref(), Some(expected_attrs.as_str()));
    let expected_sys = attr_digest(&[("AWSTraceHeader", "String", 1, b"Root=1-5759e988-bd862e3fe1be46a994272793")]);
    assert_eq!(sent.md5_of_message_system_attributes.as_deref(), Some(expected_sys.as_str()));

    let r = c
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let msgs = r.messages.unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.body.as_deref(), Some(body));
    assert_eq!(m.message_id, sent.message_id);
    assert_eq!(m.md5_of_body.as_deref(), Some(md5_hex(body.as_bytes()).as_str()));
    assert_eq!(m.md5_of_message_attributes.as_deref(), Some(expected_attrs.as_str()));
    let ma = m.message_attributes.as_ref().unwrap();
    assert_eq!(ma["b"].binary_value.as_ref().unwrap().as_ref(), &[0u8, 1, 2, 255]);
    assert_eq!(ma["n"].string_value.as_deref(), Some("42"));
    let sa = m.attributes.as_ref().unwrap();
    assert_eq!(sa[&MessageSystemAttributeName::ApproximateReceiveCount], "1");
    assert_eq!(sa[&MessageSystemAttributeName::AwsTraceHeader], "Root=1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(sa[&MessageSystemAttributeName::SenderId], "AKIDTEST");
    assert!(sa[&MessageSystemAttributeName::SentTimestamp].parse::<u64>().unwrap() > 1_600_000_000_000);
    assert!(sa.contains_key(&MessageSystemAttributeName::ApproximateFirstReceiveTimestamp));

    // Attribute selection: `x.*` is a prefix match on `x` (AWS strips the `.*`), others exact.
    c.change_message_visibility().queue_url(&url).receipt_handle(m.receipt_handle.clone().unwrap()).visibility_timeout(0).send().await.unwrap();
    let r = c.receive_message().queue_url(&url).message_attribute_names("x.*").message_attribute_names("n").send().await.unwrap();
    let m2 = &r.messages.unwrap()[0];
    let names: HashSet<_> = m2.message_attributes.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(names, HashSet::from(["n".to_string()]));
    assert_eq!(m2.md5_of_message_attributes.as_deref(), Some(attr_digest(&[("n", "Number.int", 1, b"42")]).as_str()));
    c.change_message_visibility().queue_url(&url).receipt_handle(m2.receipt_handle.clone().unwrap()).visibility_timeout(0).send().await.unwrap();
    let r = c.receive_message().queue_url(&url).message_attribute_names("s.*").send().await.unwrap();
    let m2 = &r.messages.unwrap()[0];
    let names: HashSet<_> = m2.message_attributes.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(names, HashSet::from(["s".to_string()]));
    assert!(m2.attributes.is_none());

    c.delete_message().queue_url(&url).receipt_handle(m2.receipt_handle.clone().unwrap()).send().await.unwrap();
    let e = c.delete_message().queue_url(&url).receipt_handle("garbage").send().await.unwrap_err();
    assert_eq!(code(&e), "ReceiptHandleIsInvalid");
    let r = c.receive_message().queue_url(&url).send().await.unwrap();
    assert!(r.messages.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn bad_messages_are_rejected_and_change_nothing() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "bad").await;
    let e = c.send_message().queue_url(&url).message_body("bad \u{1} char").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidMessageContents");
    let e = c.send_message().queue_url(&url).message_body("x".repeat(1_048_577)).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c.send_message().queue_url(&url).message_body("x").delay_seconds(901).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_attributes("AWS.reserved", MessageAttributeValue::builder().data_type("String").string_value("v").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_attributes("n", MessageAttributeValue::builder().data_type("Number").string_value("abc").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    for n in [0, 11] {
        let e = c.receive_message().queue_url(&url).max_number_of_messages(n).send().await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterValue");
    }
    let e = c.receive_message().queue_url(&url).wait_time_seconds(21).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    // 1 MiB exactly is accepted.
    c.send_message().queue_url(&url).message_body("y".repeat(1_048_576)).send().await.unwrap();
    let a = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::ApproximateNumberOfMessages).send().await.unwrap();
    assert_eq!(a.attributes.unwrap()[&QueueAttributeName::ApproximateNumberOfMessages], "1");
}

#[tokio::test]
async fn batch_operations_report_per_entry_and_batch_errors() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "batch").await;
    let entry = |id: &str, body: &str| SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().unwrap();
    let r = c
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("a", "one"))
        .entries(entry("b", "bad \u{2}"))
        .entries(entry("c", "three"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.successful.len(), 2);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].id, "b");
    assert!(r.failed[0].sender_fault);
    assert_eq!(r.failed[0].code, "InvalidMessageContents");
    assert_eq!(r.successful[0].md5_of_message_body, md5_hex(b"one"));
    assert_eq!(r.successful[1].md5_of_message_body, md5_hex(b"three"));

    let e = c.send_message_batch().queue_url(&url).set_entries(Some(vec![])).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.EmptyBatchRequest");
    let many: Vec<_> = (0..11).map(|i| entry(&format!("e{i}"), "x")).collect();
    let e = c.send_message_batch().queue_url(&url).set_entries(Some(many)).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest");
    let e = c.send_message_batch().queue_url(&url).entries(entry("d", "x")).entries(entry("d", "y")).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct");
    let e = c.send_message_batch().queue_url(&url).entries(entry("bad id!", "x")).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.InvalidBatchEntryId");
    let big = "z".repeat(600_000);
    let e = c.send_message_batch().queue_url(&url).entries(entry("p", &big)).entries(entry("q", &big)).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.BatchRequestTooLong");

    let r = c.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let msgs = r.messages.unwrap();
    assert_eq!(msgs.len(), 2);
    let vis = c
        .change_message_visibility_batch()
        .queue_url(&url)
        .entries(ChangeMessageVisibilityBatchRequestEntry::builder().id("v1").receipt_handle(msgs[0].receipt_handle.clone().unwrap()).visibility_timeout(60).build().unwrap())
        .entries(ChangeMessageVisibilityBatchRequestEntry::builder().id("v2").receipt_handle("forged").visibility_timeout(60).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(vis.successful.len(), 1);
    assert_eq!(vis.failed[0].code, "ReceiptHandleIsInvalid");
    let del = c
        .delete_message_batch()
        .queue_url(&url)
        .entries(DeleteMessageBatchRequestEntry::builder().id("d1").receipt_handle(msgs[0].receipt_handle.clone().unwrap()).build().unwrap())
        .entries(DeleteMessageBatchRequestEntry::builder().id("d2").receipt_handle(msgs[1].receipt_handle.clone().unwrap()).build().unwrap())
        .entries(DeleteMessageBatchRequestEntry::builder().id("d3").receipt_handle("forged").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(del.successful.len(), 2);
    assert_eq!(del.failed.len(), 1);
    assert_eq!(del.failed[0].id, "d3");
}

#[tokio::test]
async fn visibility_timeout_redelivery_and_stale_receipts() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "vis").await;
    c.send_message().queue_url(&url).message_body("m").send().await.unwrap();
    let first = c.receive_message().queue_url(&url).visibility_timeout(300).send().await.unwrap().messages.unwrap().remove(0);
    // Invisible while in flight.
    assert!(c.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default().is_empty());
    let a = c
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    assert_eq!(a.attributes.unwrap()[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "1");
    let h1 = first.receipt_handle.unwrap();
    c.change_message_visibility().queue_url(&url).receipt_handle(&h1).visibility_timeout(0).send().await.unwrap();
    // Visible again: the visibility change to 0 ended the in-flight period.
    let e = c.change_message_visibility().queue_url(&url).receipt_handle(&h1).visibility_timeout(10).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.MessageNotInflight");
    let second = c
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap()
        .remove(0);
    assert_eq!(second.attributes.unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount], "2");
    let h2 = second.receipt_handle.unwrap();
    assert_ne!(h1, h2);
    let e = c.change_message_visibility().queue_url(&url).receipt_handle(&h2).visibility_timeout(43_201).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    // A superseded handle deletes nothing on a standard queue (and succeeds).
    c.delete_message().queue_url(&url).receipt_handle(&h1).send().await.unwrap();
    let a = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap().attributes.unwrap();
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "1");
    c.delete_message().queue_url(&url).receipt_handle(&h2).send().await.unwrap();
    let a = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap().attributes.unwrap();
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "0");
}

#[tokio::test]
async fn delayed_messages_are_counted_as_delayed() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "delay").await;
    c.send_message().queue_url(&url).message_body("later").delay_seconds(600).send().await.unwrap();
    let a = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap().attributes.unwrap();
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessagesDelayed], "1");
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert!(c.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_a_message_arrives() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "lp").await;
    let (c2, url2) = (c.clone(), url.clone());
    let waiter = tokio::spawn(async move { c2.receive_message().queue_url(&url2).wait_time_seconds(20).send().await.unwrap() });
    // Give the waiter a moment to register; correctness does not depend on it.
    tokio::task::yield_now().await;
    c.send_message().queue_url(&url).message_body("wake").send().await.unwrap();
    let r = waiter.await.unwrap();
    assert_eq!(r.messages.unwrap()[0].body.as_deref(), Some("wake"));
    // With the queue's default ReceiveMessageWaitTimeSeconds and nothing to receive, an empty answer.
    c.set_queue_attributes().queue_url(&url).attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "1").send().await.unwrap();
    let r = c.receive_message().queue_url(&url).send().await.unwrap();
    assert!(r.messages.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn concurrent_consumers_never_share_an_invisible_message() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "many").await;
    let total = 400;
    for chunk in (0..total).collect::<Vec<_>>().chunks(10) {
        let mut b = c.send_message_batch().queue_url(&url);
        for i in chunk {
            b = b.entries(SendMessageBatchRequestEntry::builder().id(format!("m{i}")).message_body(format!("{i}")).build().unwrap());
        }
        assert_eq!(b.send().await.unwrap().successful.len(), chunk.len());
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let r = c.receive_message().queue_url(&url).max_number_of_messages(10).visibility_timeout(600).send().await.unwrap();
                let msgs = r.messages.unwrap_or_default();
                if msgs.is_empty() {
                    break;
                }
                got.extend(msgs.into_iter().map(|m| m.body.unwrap()));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), total, "every message received exactly once while invisible");
    assert_eq!(unique.len(), total);
}

#[tokio::test]
async fn dead_letter_queue_after_max_receive_count_and_redrive_back() {
    let s = server();
    let c = s.sqs().await;
    let dlq = queue(&c, "dlq").await;
    let dlq_arn = "arn:aws:sqs:us-east-1:000000000000:dlq";
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#);
    let src = c
        .create_queue()
        .queue_name("src")
        .attributes(QueueAttributeName::RedrivePolicy, &policy)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let a = c.get_queue_attributes().queue_url(&src).attribute_names(QueueAttributeName::RedrivePolicy).send().await.unwrap();
    let rp: serde_json::Value = serde_json::from_str(&a.attributes.unwrap()[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(rp["maxReceiveCount"], 2);
    c.send_message().queue_url(&src).message_body("poison").send().await.unwrap();
    for _ in 0..2 {
        let r = c.receive_message().queue_url(&src).visibility_timeout(0).send().await.unwrap();
        assert_eq!(r.messages.unwrap().len(), 1);
    }
    assert!(c.receive_message().queue_url(&src).send().await.unwrap().messages.unwrap_or_default().is_empty());
    let r = c
        .receive_message()
        .queue_url(&dlq)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let m = &r.messages.unwrap()[0];
    assert_eq!(m.body.as_deref(), Some("poison"));
    assert_eq!(
        m.attributes.as_ref().unwrap()[&MessageSystemAttributeName::DeadLetterQueueSourceArn],
        "arn:aws:sqs:us-east-1:000000000000:src"
    );
    let sources = c.list_dead_letter_source_queues().queue_url(&dlq).send().await.unwrap();
    assert_eq!(sources.queue_urls, vec![src.clone()]);

    // A missing dead-letter target is refused.
    let e = c
        .create_queue()
        .queue_name("src2")
        .attributes(QueueAttributeName::RedrivePolicy, r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:none","maxReceiveCount":"2"}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    // RedriveAllowPolicy denyAll refuses new sources.
    c.set_queue_attributes().queue_url(&dlq).attributes(QueueAttributeName::RedriveAllowPolicy, r#"{"redrivePermission":"denyAll"}"#).send().await.unwrap();
    let e = c.create_queue().queue_name("src3").attributes(QueueAttributeName::RedrivePolicy, &policy).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");

    // Redrive back to the source with a move task.
    let handle = c.start_message_move_task().source_arn(dlq_arn).send().await.unwrap().task_handle.unwrap();
    let mut status = String::new();
    for _ in 0..200 {
        let l = c.list_message_move_tasks().source_arn(dlq_arn).send().await.unwrap();
        let t = &l.results.unwrap()[0];
        status = t.status.clone().unwrap();
        if status != "RUNNING" {
            assert_eq!(t.approximate_number_of_messages_moved, 1);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "COMPLETED");
    let e = c.cancel_message_move_task().task_handle(&handle).send().await.unwrap_err();
    assert!(!code(&e).is_empty());
    let r = c.receive_message().queue_url(&src).send().await.unwrap();
    assert_eq!(r.messages.unwrap()[0].body.as_deref(), Some("poison"));
    // A queue that is nobody's dead-letter queue cannot be a move source.
    let e = c.start_message_move_task().source_arn("arn:aws:sqs:us-east-1:000000000000:src").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
}

#[tokio::test]
async fn purge_tags_and_permissions() {
    let s = server();
    let c = s.sqs().await;
    let url = queue(&c, "admin").await;
    c.send_message().queue_url(&url).message_body("x").send().await.unwrap();
    c.purge_queue().queue_url(&url).send().await.unwrap();
    let e = c.purge_queue().queue_url(&url).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.PurgeQueueInProgress");
    assert!(c.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default().is_empty());

    c.tag_queue().queue_url(&url).tags("a", "1").tags("b", "2").send().await.unwrap();
    c.untag_queue().queue_url(&url).tag_keys("a").send().await.unwrap();
    let t = c.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t["b"], "2");

    c.add_permission().queue_url(&url).label("p1").aws_account_ids("111122223333").actions("SendMessage").send().await.unwrap();
    let e = c.add_permission().queue_url(&url).label("p1").aws_account_ids("111122223333").actions("SendMessage").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let p = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::Policy).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(&p.attributes.unwrap()[&QueueAttributeName::Policy]).unwrap();
    assert_eq!(policy["Statement"][0]["Sid"], "p1");
    assert_eq!(policy["Statement"][0]["Action"], "SQS:SendMessage");
    assert_eq!(policy["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    c.remove_permission().queue_url(&url).label("p1").send().await.unwrap();
    let p = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    assert!(!p.attributes.unwrap().contains_key(&QueueAttributeName::Policy));
    let e = c.remove_permission().queue_url(&url).label("p1").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
}
