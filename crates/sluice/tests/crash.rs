//! Crash test (RELIABILITY.md R1, short version): the durable engine under
//! mixed load is killed with SIGKILL at random moments and restarted; after
//! each restart every acknowledged send is present unless its delete was
//! acknowledged, no acknowledged delete comes back, no body is corrupted, and
//! FIFO groups never skip.
//!
//! Method: four producer/consumer tasks drive a standard and a FIFO queue
//! through the Rust SDK, logging only what the server acknowledged. After a
//! random 1–3 s the server gets SIGKILL; it is restarted on the same data
//! directory and both queues are drained and checked against the log.
//! `SLUICE_CRASH_CYCLES` sets the number of cycles (default 8 in CI; the long
//! run in docs uses hundreds).

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use sluice_testkit::{Engine, TestServer};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Visibility timeout used under load: short, so that messages in flight at
/// the crash come back quickly for the check.
const LOAD_VISIBILITY_SECS: i32 = 2;

#[derive(Default)]
struct Ledger {
    /// Acknowledged standard sends: id → body.
    sent: HashMap<u64, String>,
    /// Acknowledged deletes.
    deleted: HashSet<u64>,
    /// Ids received during the load (for diagnosing a loss).
    received: HashMap<u64, u32>,
    /// Deletes whose answer never came (the crash): they may or may not have happened.
    delete_unknown: HashSet<u64>,
    /// FIFO: acknowledged sends per group (highest index).
    fifo_sent: HashMap<u32, u32>,
    /// FIFO: highest index seen received per group, to check nothing is skipped.
    fifo_seen: HashMap<u32, u32>,
    /// FIFO order violations found during load.
    fifo_violations: Vec<String>,
}

fn crc_body(id: u64) -> String {
    // The body carries its own id and a checksum of it, so corruption is detectable.
    let payload = format!("msg-{id}-{}", "x".repeat((id % 200) as usize));
    let sum = payload.bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{payload}|{sum:08x}")
}

fn body_ok(body: &str) -> Option<u64> {
    let (payload, sum) = body.rsplit_once('|')?;
    let want = payload.bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    if format!("{want:08x}") != sum {
        return None;
    }
    payload.strip_prefix("msg-")?.split('-').next()?.parse().ok()
}

fn fifo_record(ledger: &Mutex<Ledger>, body: &str) {
    let Some((g, i)) = body.split_once(':') else { return };
    let (Ok(g), Ok(i)) = (g.parse::<u32>(), i.parse::<u32>()) else { return };
    let mut l = ledger.lock().unwrap();
    let seen = l.fifo_seen.get(&g).copied();
    let expected_max = seen.map_or(0, |s| s + 1);
    if i > expected_max {
        l.fifo_violations.push(format!("group {g}: received {i} after {seen:?}"));
    }
    let e = l.fifo_seen.entry(g).or_insert(i);
    *e = (*e).max(i);
}

async fn load(c: Client, std_url: String, fifo_url: String, ledger: Arc<Mutex<Ledger>>, worker: u64, cycle: u64, stop: Arc<std::sync::atomic::AtomicBool>, next: Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    let mut fifo_index: HashMap<u32, u32> = HashMap::new();
    // One FIFO group per worker and cycle keeps sends ordered and dedup ids fresh.
    let group = (cycle * 16 + worker) as u32;
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        // Send a batch to the standard queue.
        let ids: Vec<u64> = (0..5).map(|_| next.fetch_add(1, Ordering::SeqCst)).collect();
        let mut b = c.send_message_batch().queue_url(&std_url);
        for id in &ids {
            b = b.entries(SendMessageBatchRequestEntry::builder().id(format!("m{id}")).message_body(crc_body(*id)).build().unwrap());
        }
        if let Ok(r) = b.send().await {
            let mut l = ledger.lock().unwrap();
            for s in r.successful {
                let id: u64 = s.id[1..].parse().unwrap();
                l.sent.insert(id, crc_body(id));
            }
        }
        // Send the next FIFO message of this worker's group; only an acked send advances the index.
        let i = *fifo_index.entry(group).or_insert(0);
        let sent = c
            .send_message()
            .queue_url(&fifo_url)
            .message_body(format!("{group}:{i}"))
            .message_group_id(format!("g{group}"))
            .message_deduplication_id(format!("{group}-{i}"))
            .send()
            .await;
        if sent.is_ok() {
            ledger.lock().unwrap().fifo_sent.insert(group, i);
            fifo_index.insert(group, i + 1);
        }
        // Consume some of each, deleting most, letting some become visible again.
        if let Ok(r) = c.receive_message().queue_url(&std_url).max_number_of_messages(10).visibility_timeout(LOAD_VISIBILITY_SECS).send().await {
            for m in r.messages.unwrap_or_default() {
                let id = body_ok(m.body.as_deref().unwrap_or("")).expect("corrupted body under load");
                *ledger.lock().unwrap().received.entry(id).or_default() += 1;
                if round % 3 == 0 {
                    let _ = c.change_message_visibility().queue_url(&std_url).receipt_handle(m.receipt_handle.unwrap()).visibility_timeout(0).send().await;
                    continue;
                }
                match c.delete_message().queue_url(&std_url).receipt_handle(m.receipt_handle.unwrap()).send().await {
                    Ok(_) => ledger.lock().unwrap().deleted.insert(id),
                    Err(_) => ledger.lock().unwrap().delete_unknown.insert(id),
                };
            }
        }
        if let Ok(r) = c.receive_message().queue_url(&fifo_url).max_number_of_messages(10).visibility_timeout(LOAD_VISIBILITY_SECS).send().await {
            for m in r.messages.unwrap_or_default() {
                fifo_record(&ledger, m.body.as_deref().unwrap_or(""));
                if c.delete_message().queue_url(&fifo_url).receipt_handle(m.receipt_handle.unwrap()).send().await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Drains a queue, returning bodies: receives and deletes until the queue
/// reports no message at all, waiting out those in flight before the crash.
async fn drain(c: &Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let r = c
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive after restart");
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() {
            let a = c
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .expect("attributes after restart")
                .attributes
                .unwrap_or_default();
            let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if n(QueueAttributeName::ApproximateNumberOfMessages) + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible) == 0 {
                return out;
            }
            continue;
        }
        for m in msgs {
            out.push(m.body.clone().unwrap());
            c.delete_message().queue_url(url).receipt_handle(m.receipt_handle.unwrap()).send().await.expect("delete after restart");
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let cycles: usize = std::env::var("SLUICE_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_sluice");
    let mut server = TestServer::start(bin.as_ref(), Engine::Durable(dir.path().to_path_buf()), &["--fsync", "always"]);
    let c = server.sqs().await;
    let std_url = c.create_queue().queue_name("crash").send().await.unwrap().queue_url.unwrap();
    let fifo_url = c
        .create_queue()
        .queue_name("crash.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let mut totals = (0usize, 0usize, 0usize);
    for cycle in 0..cycles {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..4 {
            tasks.push(tokio::spawn(load(c.clone(), std_url.clone(), fifo_url.clone(), ledger.clone(), w, cycle as u64, stop.clone(), next.clone())));
        }
        let run_for = Duration::from_millis(1000 + rng.next() % 2000);
        tokio::time::sleep(run_for).await;
        server.kill();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        let started = Instant::now();
        server.restart();
        let ready = started.elapsed();
        let c2 = server.sqs().await;
        let bodies = drain(&c2, &std_url).await;
        let fifo_bodies = drain(&c2, &fifo_url).await;
        let l = ledger.lock().unwrap();
        let mut present = HashSet::new();
        for b in &bodies {
            let id = body_ok(b).unwrap_or_else(|| panic!("cycle {cycle}: corrupted body {b:?}"));
            present.insert(id);
        }
        let lost: Vec<_> = l
            .sent
            .keys()
            .filter(|id| !l.deleted.contains(id) && !l.delete_unknown.contains(id) && !present.contains(id))
            .collect();
        let resurrected: Vec<_> = present.iter().filter(|id| l.deleted.contains(id)).collect();
        let lost_received: Vec<_> = lost.iter().map(|id| (**id, l.received.get(id).copied().unwrap_or(0))).collect();
        assert!(lost.is_empty(), "cycle {cycle}: acknowledged sends lost (id, times received under load): {lost_received:?}; {} sent, {} present", l.sent.len(), present.len());
        assert!(resurrected.is_empty(), "cycle {cycle}: acknowledged deletes came back: {resurrected:?}");
        drop(l);
        for b in &fifo_bodies {
            fifo_record(&ledger, b);
        }
        let l = ledger.lock().unwrap();
        assert!(l.fifo_violations.is_empty(), "cycle {cycle}: FIFO order violated: {:?}", l.fifo_violations);
        for (g, last) in &l.fifo_sent {
            let seen = l.fifo_seen.get(g).copied();
            assert!(seen.is_some_and(|s| s >= *last), "cycle {cycle}: FIFO group {g} acked up to {last}, delivered up to {seen:?}");
        }
        totals.0 += l.sent.len();
        totals.1 += l.deleted.len();
        totals.2 += bodies.len();
        eprintln!(
            "crash cycle {cycle}: ran {run_for:?}, acked sends {}, acked deletes {}, recovered {} (+{} fifo), ready after restart in {ready:?}",
            l.sent.len(),
            l.deleted.len(),
            bodies.len(),
            fifo_bodies.len()
        );
    }
    eprintln!("crash test: {cycles} cycles, {} acked sends, {} acked deletes, {} recovered, 0 lost, 0 resurrected", totals.0, totals.1, totals.2);
    assert!(totals.0 > 0, "the load must have acknowledged something");
}
