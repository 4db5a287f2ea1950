//! `sqs-waiters` (RELIABILITY.md R18): `--waiters` long polls (ReceiveMessage of one message,
//! WaitTimeSeconds `--wait-secs`, each on its own connection) spread round-robin over
//! `--queues` fresh queues, then one SendMessage per queue from `--connections` senders.
//!
//! Measured:
//! - wake-up latency per send: from the start of the send to the answer of the waiter that
//!   received its message (the waiter may answer before the send's own acknowledgement);
//! - how many waiters each send woke with its message: exactly one is right, none is a miss
//!   (the message is then looked for in its queue afterwards: `left in queue` or `lost`),
//!   more are duplicates; waiters answered empty before their wait ran out are spurious
//!   wake-ups; waiters answered with an error (`RequestThrottled` past a server's waiter cap)
//!   are refused;
//! - SendMessage latency while all the waiters wait;
//! - with `--server-pid`: the server's threads, open fds and RSS before and while they wait.
//!
//! The sends start once the server reports every waiter parked (`long_poll_waiters` of a
//! sluice server's `/health`), or after `--settle` for servers that report nothing. The run
//! ends when every waiter has answered: the ones without a message at their wait's end.
//! Headline: the sends' throughput, which is all this scenario sends; it has no ceiling.

use super::base_report;
use crate::args::ScenarioKind;
use crate::client::{CallError, Received, SendEntry};
use crate::driver::{names, Bench, QueueHandle};
use crate::procfs;
use crate::report::{Report, WaiterFigures};
use crate::stats::{Latencies, Live, Throughput};
use crate::tracker::Header;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long-poll wake-up latency (send start to the waiter's answer).
const WAKEUP: &str = "long-poll wake-up";
/// Waiters started at once; the ramp pauses between chunks so that the server's accept
/// backlog is not flooded with thousands of simultaneous connects.
const RAMP_CHUNK: usize = 250;
/// Pause between two chunks of waiters.
const RAMP_PAUSE: Duration = Duration::from_millis(25);
/// How often the server's parked-waiter count is read while settling.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// Queues created or deleted at once.
const SETUP_PARALLEL: usize = 32;
/// An empty answer this much before the wait's end counts as early (timer granularity).
const EARLY_SLACK: Duration = Duration::from_millis(10);

/// One waiter's answer.
struct Answer {
    queue: usize,
    started: Instant,
    answered: Instant,
    result: Result<Vec<Received>, CallError>,
}

/// Runs the scenario.
pub async fn run(b: &Arc<Bench>) -> anyhow::Result<Report> {
    let kind = ScenarioKind::SqsWaiters;
    let args = &b.args;
    let (nq, nw, wait_secs) = (args.queues, args.waiters, args.wait_secs);
    let queues = create_queues(b, nq).await?;
    let pid = args.server_pid;
    let rss = |pid: u32| procfs::status_mib(Some(pid), "VmRSS");
    let mut figures = WaiterFigures {
        waiters: nw as u64,
        queues: nq as u64,
        wait_secs,
        server_threads_idle: pid.and_then(procfs::threads),
        server_rss_idle_mib: pid.and_then(rss),
        ..WaiterFigures::default()
    };

    // Park the waiters, a chunk at a time, then wait until the server holds them all.
    let progress = b.progress(&format!("{nw} waiters on {nq} queues"));
    let ramp_start = Instant::now();
    let mut tasks = Vec::with_capacity(nw);
    for chunk in (0..nw).collect::<Vec<_>>().chunks(RAMP_CHUNK) {
        for &i in chunk {
            let (b, q) = (b.clone(), i % nq);
            let url = queues[q].url.clone();
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let result = b.client.receive(&url, 1, wait_secs, None).await;
                Answer { queue: q, started, answered: Instant::now(), result }
            }));
        }
        tokio::time::sleep(RAMP_PAUSE).await;
    }
    let settle_end = Instant::now() + args.settle;
    loop {
        figures.parked_reported = b.client.parked_waiters().await;
        match figures.parked_reported {
            Some(n) if n >= nw as u64 => break,
            _ if Instant::now() >= settle_end => break,
            Some(_) => tokio::time::sleep(SETTLE_POLL).await,
            None => tokio::time::sleep_until(settle_end.into()).await,
        }
    }
    figures.ramp_secs = ramp_start.elapsed().as_secs_f64();
    figures.server_threads_parked = pid.and_then(procfs::threads);
    figures.server_fds_parked = pid.and_then(procfs::open_fds);
    figures.server_rss_parked_mib = pid.and_then(rss);

    // One send per queue while every waiter waits.
    let window = b.usage_start();
    let send_start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let urls: Arc<Vec<String>> = Arc::new(queues.iter().map(|q| q.url.clone()).collect());
    let senders: Vec<_> = (0..args.connections.min(nq))
        .map(|_| {
            let (b, next, urls) = (b.clone(), next.clone(), urls.clone());
            tokio::spawn(async move { sender(&b, &urls, &next).await })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut send_started: Vec<Option<Instant>> = vec![None; nq];
    for s in senders {
        match s.await {
            Ok((lat, started)) => {
                latencies.merge(&lat);
                for (q, at) in started {
                    send_started[q] = Some(at);
                }
            }
            Err(e) => b.live.error(1, format!("sender task: {e}")),
        }
    }
    let send_elapsed = send_start.elapsed();
    figures.sends = send_started.iter().flatten().count() as u64;
    let (server, client) = b.usage_end(&window, figures.sends);

    // Every waiter answers: with a message, or empty at the end of its wait.
    let wait = Duration::from_secs(wait_secs.into());
    let mut first_answer: Vec<Option<Instant>> = vec![None; nq];
    let mut deliveries = vec![0u64; nq];
    for t in tasks {
        let a = match t.await {
            Ok(a) => a,
            Err(e) => {
                b.live.error(1, format!("waiter task: {e}"));
                figures.refused += 1;
                continue;
            }
        };
        match a.result {
            Ok(msgs) if msgs.is_empty() => {
                if a.answered.duration_since(a.started) + EARLY_SLACK >= wait {
                    figures.empty_at_wait_end += 1;
                } else {
                    figures.empty_early += 1;
                }
            }
            Ok(msgs) => {
                Live::add(&b.live.received, msgs.len() as u64);
                for m in &msgs {
                    match Header::parse(&m.body) {
                        Some(h) if h.run_id == b.run_id && h.seq as usize == a.queue => {
                            deliveries[a.queue] += 1;
                            let first = &mut first_answer[a.queue];
                            *first = Some(first.map_or(a.answered, |f| f.min(a.answered)));
                        }
                        _ => Live::add(&b.live.foreign, 1),
                    }
                }
            }
            Err(e) => {
                figures.refused += 1;
                b.live.error(1, format!("ReceiveMessage (waiter): {e}"));
            }
        }
    }
    drop(progress);
    for q in 0..nq {
        match (deliveries[q], send_started[q], first_answer[q]) {
            (0, Some(_), _) => {}
            (n, Some(sent), Some(answered)) => {
                figures.woke_exactly_one += u64::from(n == 1);
                figures.duplicates += n - 1;
                latencies.record(WAKEUP, answered.saturating_duration_since(sent));
            }
            (n, _, _) => figures.duplicates += n,
        }
    }
    // A send no waiter received: still in its queue (a waiter had given up), or lost.
    for q in (0..nq).filter(|&q| deliveries[q] == 0 && send_started[q].is_some()) {
        match b.client.receive(&queues[q].url, 10, 0, None).await {
            Ok(left) if left.iter().any(|m| Header::parse(&m.body).is_some_and(|h| h.run_id == b.run_id)) => {
                figures.left_in_queue += 1;
            }
            Ok(_) => figures.lost += 1,
            Err(e) => {
                b.live.error(1, format!("ReceiveMessage (looking for a missed message): {e}"));
                figures.lost += 1;
            }
        }
    }
    delete_queues(b, &queues).await;

    let sends = Throughput::new(figures.sends, args.message_size, send_elapsed);
    let mut report = base_report(b, kind, sends, "acknowledged sends, one per queue, while the waiters wait", &latencies);
    report.waiters = Some(figures);
    report.server = server;
    report.client = client;
    Ok(report)
}

/// Sends one message to each queue it claims from `next`; returns its latencies and when each
/// of its acknowledged sends started.
async fn sender(b: &Bench, urls: &[String], next: &AtomicUsize) -> (Latencies, Vec<(usize, Instant)>) {
    let mut lat = Latencies::default();
    let mut started = Vec::new();
    let mut body = String::new();
    loop {
        let q = next.fetch_add(1, Ordering::Relaxed);
        if q >= urls.len() {
            break;
        }
        let t0 = Instant::now();
        Header { run_id: b.run_id, seq: q as u64, sent_nanos: b.nanos_since_epoch(t0), group: 0 }
            .write_body(b.args.message_size, &mut body);
        let r = b.client.send(&urls[q], SendEntry { body: &body, group: None, dedup: None }).await;
        lat.record(names::SEND, t0.elapsed());
        match r {
            Ok(()) => {
                Live::add(&b.live.sent, 1);
                started.push((q, t0));
            }
            Err(e) => {
                Live::add(&b.live.send_failed, 1);
                b.live.error(1, format!("SendMessage: {e}"));
            }
        }
    }
    (lat, started)
}

/// Creates the run's queues, `SETUP_PARALLEL` at a time.
async fn create_queues(b: &Arc<Bench>, n: usize) -> anyhow::Result<Vec<QueueHandle>> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..SETUP_PARALLEL.min(n))
        .map(|_| {
            let (b, next) = (b.clone(), next.clone());
            tokio::spawn(async move {
                let mut made = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(made);
                    }
                    made.push((i, b.create_queue(ScenarioKind::SqsWaiters.name(), &format!("-{i:05}"), false).await?));
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(w.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, q)| q).collect())
}

/// Deletes the queues the run created for itself, `SETUP_PARALLEL` at a time.
async fn delete_queues(b: &Arc<Bench>, queues: &[QueueHandle]) {
    let queues = Arc::new(queues.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..SETUP_PARALLEL.min(queues.len()))
        .map(|_| {
            let (b, next, queues) = (b.clone(), next.clone(), queues.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(q) = queues.get(i) else { return };
                    b.finish_queue(q).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}
