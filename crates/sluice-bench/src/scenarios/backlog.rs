//! `sqs-backlog`: fill a queue to `--backlog` messages, then probe, one request at a time,
//! what a deep queue costs:
//! 1. ReceiveMessage(10) with no wait on the deep queue (each answer is deleted, so the depth
//!    drops by the probes' messages only);
//! 2. SendMessage of one message into the deep queue (with a durable engine, an fsync'd send);
//! 3. long-poll wake-up: a receiver waits on a second, empty queue of the same server (a long
//!    poll on a queue with visible messages returns at once), a send arrives, and the latency is
//!    from the start of that send to the receiver's answer.
//!
//! Each phase runs for a third of `--duration`, or `--count` probes. Headline: the fill rate,
//! which is also what the ceiling is compared with.

use super::base_report;
use crate::args::ScenarioKind;
use crate::client::SendEntry;
use crate::driver::{produce, Bench, ProducerPlan, Stop};
use crate::report::{BacklogFigures, Report};
use crate::stats::{Latencies, Live, Throughput};
use crate::tracker::Header;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receive latency at depth.
const AT_DEPTH_RECEIVE: &str = "at depth: ReceiveMessage(10)";
/// Send latency at depth.
const AT_DEPTH_SEND: &str = "at depth: SendMessage";
/// Wake-up latency.
const WAKEUP: &str = "long-poll wake-up";
/// How long a wake-up probe lets its receiver park before sending.
const WAKEUP_PARK: Duration = Duration::from_millis(20);
/// Long-poll wait of wake-up receivers.
const WAKEUP_WAIT_SECS: u32 = 20;

/// Runs the scenario.
pub async fn run(b: &Arc<Bench>) -> anyhow::Result<Report> {
    let kind = ScenarioKind::SqsBacklog;
    let args = &b.args;
    let queue = b.create_queue(kind.name(), "", false).await?;

    let window = b.usage_start();
    let progress = b.progress(&format!("fill to {}", args.backlog));
    let (mut latencies, fill_elapsed) = produce(
        b,
        ProducerPlan {
            queue_url: queue.url.clone(),
            producers: args.connections,
            batch: args.batch,
            rate: None,
            stop: Stop::Count(AtomicU64::new(args.backlog)),
            tracker: None,
            groups: None,
            tenant: None,
        },
    )
    .await;
    drop(progress);
    let filled = Live::get(&b.live.sent);
    let (server, client) = b.usage_end(&window, filled);
    let depth_reported = match b.client.queue_depth(&queue.url).await {
        Ok(d) => Some(d),
        Err(e) => {
            b.live.error(1, format!("GetQueueAttributes: {e}"));
            None
        }
    };

    let phase_stop = || match args.count {
        Some(n) => Stop::Count(AtomicU64::new(n)),
        None => Stop::after(args.duration / 3),
    };
    let progress = b.progress("probes at depth");
    probe_receive(b, &queue.url, phase_stop(), &mut latencies).await;
    probe_send(b, &queue.url, phase_stop(), &mut latencies).await;
    let wake_queue = b.create_queue(kind.name(), "-wakeup", false).await?;
    let wakeup_misses = probe_wakeup(b, &wake_queue.url, phase_stop(), &mut latencies).await;
    drop(progress);

    b.finish_queue(&wake_queue).await;
    b.finish_queue(&queue).await;
    let fill = Throughput::new(filled, args.message_size, fill_elapsed);
    let mut report = base_report(b, kind, fill, "acknowledged sends filling the backlog", &latencies);
    report.backlog = Some(BacklogFigures { filled, depth_reported, fill, wakeup_misses });
    report.server = server;
    report.client = client;
    Ok(report)
}

fn body(b: &Bench) -> String {
    let seq = b.seq.fetch_add(1, Ordering::Relaxed);
    let mut s = String::new();
    Header { run_id: b.run_id, seq, sent_nanos: b.nanos_since_epoch(Instant::now()), group: 0 }
        .write_body(b.args.message_size, &mut s);
    s
}

async fn delete_all(b: &Bench, queue_url: &str, handles: &[&str]) {
    if handles.is_empty() {
        return;
    }
    match b.client.delete_batch(queue_url, handles).await {
        Ok(o) => Live::add(&b.live.deleted, o.ok.len() as u64),
        Err(e) => b.live.error(1, format!("DeleteMessageBatch: {e}")),
    }
}

async fn probe_receive(b: &Bench, queue_url: &str, stop: Stop, lat: &mut Latencies) {
    while stop.take(1) > 0 {
        let t0 = Instant::now();
        let r = b.client.receive(queue_url, 10, 0, None).await;
        lat.record(AT_DEPTH_RECEIVE, t0.elapsed());
        match r {
            Ok(msgs) => {
                Live::add(&b.live.received, msgs.len() as u64);
                let handles: Vec<&str> = msgs.iter().map(|m| m.receipt_handle.as_str()).collect();
                delete_all(b, queue_url, &handles).await;
            }
            Err(e) => b.live.error(1, format!("ReceiveMessage: {e}")),
        }
    }
}

async fn probe_send(b: &Bench, queue_url: &str, stop: Stop, lat: &mut Latencies) {
    while stop.take(1) > 0 {
        let body = body(b);
        let t0 = Instant::now();
        let r = b.client.send(queue_url, SendEntry { body: &body, group: None, dedup: None }).await;
        lat.record(AT_DEPTH_SEND, t0.elapsed());
        match r {
            Ok(()) => Live::add(&b.live.sent, 1),
            Err(e) => {
                Live::add(&b.live.send_failed, 1);
                b.live.error(1, format!("SendMessage: {e}"));
            }
        }
    }
}

/// Returns the number of probes whose receiver did not get the probe's message.
async fn probe_wakeup(b: &Arc<Bench>, queue_url: &str, stop: Stop, lat: &mut Latencies) -> u64 {
    let mut misses = 0;
    while stop.take(1) > 0 {
        let waiter = {
            let (b, url) = (b.clone(), queue_url.to_owned());
            tokio::spawn(async move {
                let r = b.client.receive(&url, 1, WAKEUP_WAIT_SECS, None).await;
                (r, Instant::now())
            })
        };
        tokio::time::sleep(WAKEUP_PARK).await;
        let body = body(b);
        let sent_at = Instant::now();
        if let Err(e) = b.client.send(queue_url, SendEntry { body: &body, group: None, dedup: None }).await {
            b.live.error(1, format!("SendMessage: {e}"));
        } else {
            Live::add(&b.live.sent, 1);
        }
        let (r, answered_at) = match waiter.await {
            Ok(x) => x,
            Err(e) => {
                b.live.error(1, format!("wake-up receiver: {e}"));
                misses += 1;
                continue;
            }
        };
        match r {
            Ok(msgs) if msgs.iter().any(|m| m.body == body) && answered_at >= sent_at => {
                lat.record(WAKEUP, answered_at - sent_at);
                Live::add(&b.live.received, msgs.len() as u64);
                let handles: Vec<&str> = msgs.iter().map(|m| m.receipt_handle.as_str()).collect();
                delete_all(b, queue_url, &handles).await;
            }
            other => {
                if let Err(e) = other {
                    b.live.error(1, format!("ReceiveMessage (wake-up): {e}"));
                }
                misses += 1;
                // Clear whatever is left so the next probe starts from an empty queue.
                if let Ok(left) = b.client.receive(queue_url, 10, 0, None).await {
                    let handles: Vec<&str> = left.iter().map(|m| m.receipt_handle.as_str()).collect();
                    delete_all(b, queue_url, &handles).await;
                }
            }
        }
    }
    misses
}
