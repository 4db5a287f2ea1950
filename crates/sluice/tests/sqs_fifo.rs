//! End-to-end tests of SQS FIFO queues and fair queues through the Rust SDK.
//!
//! Method: a real server (durable engine, temp dir) per test; the heavy test sends 100 groups ×
//! 100 messages and drains them with 10 concurrent consumers that randomly
//! "fail" (make the rest of their batch visible again instead of deleting),
//! then checks that every group was processed exactly in send order, with
//! nothing skipped or repeated.

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use sluice_testkit::{Engine, TestServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_sluice").as_ref(), Engine::DurableTemp, &[])
}

fn code<E: ProvideErrorMetadata>(e: &aws_sdk_sqs::error::SdkError<E>) -> String {
    e.as_service_error().and_then(|s| s.code()).unwrap_or("<no service error>").to_string()
}

async fn fifo_queue(c: &Client, name: &str, content_dedup: bool) -> String {
    c.create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, content_dedup.to_string())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// A tiny deterministic PRNG so the test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test]
async fn hundred_groups_ten_consumers_with_redeliveries_keep_per_group_order() {
    let s = server();
    let c = s.sqs().await;
    let url = fifo_queue(&c, "orders.fifo", false).await;
    let groups = 100;
    let per_group = 100;
    // Interleave groups in the send order, in batches of 10.
    let mut all = Vec::new();
    for i in 0..per_group {
        for g in 0..groups {
            all.push((g, i));
        }
    }
    for chunk in all.chunks(10) {
        let mut b = c.send_message_batch().queue_url(&url);
        for (k, (g, i)) in chunk.iter().enumerate() {
            b = b.entries(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("e{k}"))
                    .message_body(format!("{g}:{i}"))
                    .message_group_id(format!("g{g}"))
                    .message_deduplication_id(format!("{g}-{i}"))
                    .build()
                    .unwrap(),
            );
        }
        let r = b.send().await.unwrap();
        assert_eq!(r.successful.len(), chunk.len(), "{:?}", r.failed);
    }
    let processed: Arc<Mutex<HashMap<u32, Vec<u32>>>> = Arc::default();
    let mut tasks = Vec::new();
    for consumer in 0..10u64 {
        let (c, url, processed) = (c.clone(), url.clone(), processed.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (consumer + 1));
            let mut empty_in_a_row = 0;
            while empty_in_a_row < 3 {
                let r = c
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .visibility_timeout(60)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .unwrap();
                let msgs = r.messages.unwrap_or_default();
                if msgs.is_empty() {
                    empty_in_a_row += 1;
                    continue;
                }
                empty_in_a_row = 0;
                for (k, m) in msgs.iter().enumerate() {
                    if rng.next().is_multiple_of(10) {
                        // Simulated failure: this and the rest of the batch become visible again.
                        for rest in &msgs[k..] {
                            c.change_message_visibility()
                                .queue_url(&url)
                                .receipt_handle(rest.receipt_handle.clone().unwrap())
                                .visibility_timeout(0)
                                .send()
                                .await
                                .unwrap();
                        }
                        break;
                    }
                    let body = m.body.clone().unwrap();
                    let (g, i) = body.split_once(':').unwrap();
                    processed.lock().unwrap().entry(g.parse().unwrap()).or_default().push(i.parse().unwrap());
                    c.delete_message().queue_url(&url).receipt_handle(m.receipt_handle.clone().unwrap()).send().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let processed = processed.lock().unwrap();
    assert_eq!(processed.len(), groups as usize);
    for g in 0..groups {
        assert_eq!(processed[&g], (0..per_group).collect::<Vec<_>>(), "group {g} out of order or incomplete");
    }
}

#[tokio::test]
async fn deduplication_returns_the_original_and_enqueues_nothing() {
    let s = server();
    let c = s.sqs().await;
    let url = fifo_queue(&c, "dedup.fifo", true).await;
    let a = c.send_message().queue_url(&url).message_body("same").message_group_id("g").send().await.unwrap();
    let b = c.send_message().queue_url(&url).message_body("same").message_group_id("g").send().await.unwrap();
    assert_eq!(a.message_id, b.message_id);
    assert_eq!(a.sequence_number, b.sequence_number);
    assert_eq!(a.sequence_number.as_ref().unwrap().len(), 20);
    let x = c.send_message().queue_url(&url).message_body("other").message_group_id("g").message_deduplication_id("d1").send().await.unwrap();
    assert!(x.sequence_number.unwrap() > a.sequence_number.clone().unwrap());
    // Still deduplicated after the original was received and deleted.
    let r = c.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let msgs = r.messages.unwrap();
    assert_eq!(msgs.len(), 2);
    for m in &msgs {
        c.delete_message().queue_url(&url).receipt_handle(m.receipt_handle.clone().unwrap()).send().await.unwrap();
    }
    let again = c.send_message().queue_url(&url).message_body("x").message_group_id("g").message_deduplication_id("d1").send().await.unwrap();
    assert_eq!(again.message_id, x.message_id);
    assert!(c.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn fifo_rules_and_system_attributes() {
    let s = server();
    let c = s.sqs().await;
    let url = fifo_queue(&c, "rules.fifo", false).await;
    let e = c.send_message().queue_url(&url).message_body("x").message_deduplication_id("d").send().await.unwrap_err();
    assert_eq!(code(&e), "MissingParameter");
    let e = c.send_message().queue_url(&url).message_body("x").message_group_id("g").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue", "no dedup id and no content-based dedup");
    let e = c.send_message().queue_url(&url).message_body("x").message_group_id("g").message_deduplication_id("d").delay_seconds(5).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    // A .fifo name needs FifoQueue=true, and FifoQueue=true needs a .fifo name.
    let e = c.create_queue().queue_name("plain.fifo").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c.create_queue().queue_name("plain").attributes(QueueAttributeName::FifoQueue, "true").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    // The dead-letter queue of a FIFO queue must be FIFO.
    c.create_queue().queue_name("std-dlq").send().await.unwrap();
    let e = c
        .create_queue()
        .queue_name("src.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::RedrivePolicy, r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:std-dlq","maxReceiveCount":1}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");

    let sent = c.send_message().queue_url(&url).message_body("m").message_group_id("g1").message_deduplication_id("d1").send().await.unwrap();
    let r = c
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let m = &r.messages.unwrap()[0];
    let a = m.attributes.as_ref().unwrap();
    assert_eq!(a[&MessageSystemAttributeName::MessageGroupId], "g1");
    assert_eq!(a[&MessageSystemAttributeName::MessageDeduplicationId], "d1");
    assert_eq!(&a[&MessageSystemAttributeName::SequenceNumber], sent.sequence_number.as_ref().unwrap());
    let attrs = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap().attributes.unwrap();
    assert_eq!(attrs[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(attrs[&QueueAttributeName::DeduplicationScope], "queue");
    assert_eq!(attrs[&QueueAttributeName::FifoThroughputLimit], "perQueue");
}

#[tokio::test]
async fn receive_attempt_id_retry_returns_identical_batch() {
    let s = server();
    let c = s.sqs().await;
    let url = fifo_queue(&c, "attempt.fifo", true).await;
    for i in 0..5 {
        c.send_message().queue_url(&url).message_body(format!("m{i}")).message_group_id(format!("g{}", i % 2)).send().await.unwrap();
    }
    let recv = || c.receive_message().queue_url(&url).max_number_of_messages(10).receive_request_attempt_id("try-1").send();
    let a = recv().await.unwrap().messages.unwrap();
    let b = recv().await.unwrap().messages.unwrap();
    let handles = |v: &Vec<aws_sdk_sqs::types::Message>| v.iter().map(|m| (m.message_id.clone(), m.receipt_handle.clone())).collect::<Vec<_>>();
    assert_eq!(a.len(), 5);
    assert_eq!(handles(&a), handles(&b));
    // A new attempt id gets nothing: every group is in flight.
    let other = c.receive_message().queue_url(&url).receive_request_attempt_id("try-2").send().await.unwrap();
    assert!(other.messages.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn fifo_dead_letter_keeps_group_order() {
    let s = server();
    let c = s.sqs().await;
    c.create_queue().queue_name("dl.fifo").attributes(QueueAttributeName::FifoQueue, "true").send().await.unwrap();
    let url = c
        .create_queue()
        .queue_name("work.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .attributes(QueueAttributeName::RedrivePolicy, r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dl.fifo","maxReceiveCount":1}"#)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for i in 0..3 {
        c.send_message().queue_url(&url).message_body(format!("{i}")).message_group_id("g").send().await.unwrap();
    }
    // One receive of the whole group with visibility 0, then the next receive dead-letters them.
    assert_eq!(c.receive_message().queue_url(&url).max_number_of_messages(10).visibility_timeout(0).send().await.unwrap().messages.unwrap().len(), 3);
    assert!(c.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap().messages.unwrap_or_default().is_empty());
    let dl = c.get_queue_url().queue_name("dl.fifo").send().await.unwrap().queue_url.unwrap();
    let r = c.receive_message().queue_url(&dl).max_number_of_messages(10).visibility_timeout(0).send().await.unwrap().messages.unwrap();
    assert_eq!(r.iter().map(|m| m.body.clone().unwrap()).collect::<Vec<_>>(), ["0", "1", "2"]);

    // A move task back to the source keeps the group's order.
    let dl_arn = "arn:aws:sqs:us-east-1:000000000000:dl.fifo";
    c.start_message_move_task().source_arn(dl_arn).send().await.unwrap();
    let mut status = String::new();
    for _ in 0..200 {
        let t = c.list_message_move_tasks().source_arn(dl_arn).send().await.unwrap().results.unwrap().remove(0);
        status = t.status.unwrap();
        if status != "RUNNING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "COMPLETED");
    let r = c.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap().messages.unwrap();
    assert_eq!(r.iter().map(|m| m.body.clone().unwrap()).collect::<Vec<_>>(), ["0", "1", "2"]);
}

#[tokio::test]
async fn fair_queue_keeps_quiet_tenant_flowing_behind_a_flood() {
    let s = server();
    let c = s.sqs().await;
    let url = c.create_queue().queue_name("fair").send().await.unwrap().queue_url.unwrap();
    for chunk in 0..50 {
        let mut b = c.send_message_batch().queue_url(&url);
        for k in 0..10 {
            b = b.entries(
                SendMessageBatchRequestEntry::builder().id(format!("n{k}")).message_body(format!("noisy-{chunk}-{k}")).message_group_id("noisy").build().unwrap(),
            );
        }
        b.send().await.unwrap();
    }
    c.send_message().queue_url(&url).message_body("quiet").message_group_id("quiet").send().await.unwrap();
    // A consumer working through the flood: the quiet tenant's message comes
    // within the first two batches, not after the 500 noisy ones.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = c.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        seen.extend(r.messages.unwrap().into_iter().map(|m| m.body.unwrap()));
    }
    assert!(seen.iter().any(|b| b == "quiet"), "{seen:?}");
}
