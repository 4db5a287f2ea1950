//! The shared driver: a run's context ([`Bench`]), when to stop, the producer and consumer
//! loops every scenario composes, the progress line, queue set-up and tear-down, and the
//! CPU/memory window around the measured part.
//!
//! Scenarios decide which loops to run, on which queues, and what the headline figure is;
//! the wire format is `client.rs`'s; histograms and counters are `stats.rs`'s.

use crate::args::BenchArgs;
use crate::client::{SendEntry, SqsClient};
use crate::procfs::{self, CpuSample, ProcessUsage};
use crate::sigv4::Credentials;
use crate::stats::{Latencies, Live};
use crate::tracker::{Header, Tracker};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Pause after a failed request, so an unreachable server is not hammered in a tight loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);
/// Interval of the progress line.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the drain phase checks whether everything acknowledged was delivered.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Latency histogram names (AWS operation names, plus the end-to-end figure).
pub mod names {
    /// SendMessage request latency.
    pub const SEND: &str = "SendMessage";
    /// SendMessageBatch request latency.
    pub const SEND_BATCH: &str = "SendMessageBatch";
    /// ReceiveMessage request latency (includes long-poll waiting).
    pub const RECEIVE: &str = "ReceiveMessage";
    /// DeleteMessageBatch request latency.
    pub const DELETE_BATCH: &str = "DeleteMessageBatch";
    /// From the send (its slot when the producer was behind schedule, see `pace`) to the consumer reading the message.
    pub const END_TO_END: &str = "end-to-end";
    /// End-to-end latency of the quiet tenant's messages (sqs-fair).
    pub const END_TO_END_QUIET: &str = "end-to-end quiet tenant";
    /// End-to-end latency of the noisy tenant's messages (sqs-fair).
    pub const END_TO_END_NOISY: &str = "end-to-end noisy tenant";
}

/// One run's context, shared by its workers.
#[derive(Debug)]
pub struct Bench {
    /// The arguments of this run.
    pub args: BenchArgs,
    /// The client, shared by all workers (one connection pool).
    pub client: SqsClient,
    /// Random id written into every body, so messages of other runs are told apart.
    pub run_id: u32,
    /// Time zero of the body timestamps.
    pub epoch: Instant,
    /// Live counters.
    pub live: Live,
    /// Next sequence number.
    pub seq: AtomicU64,
    /// Nanoseconds since `epoch` of the latest delivery of this run's messages.
    pub last_delivery_nanos: AtomicU64,
    /// What the progress line calls this run.
    pub label: String,
    /// The endpoint.
    pub endpoint: String,
}

/// When producers stop.
#[derive(Debug)]
pub enum Stop {
    /// After sending this many messages in total (the counter is what is left).
    Count(AtomicU64),
    /// At this instant.
    Deadline(Instant),
}

impl Stop {
    /// `--count` if given, else `--duration` from now.
    pub fn from_args(args: &BenchArgs) -> Stop {
        match args.count {
            Some(n) => Stop::Count(AtomicU64::new(n)),
            None => Stop::Deadline(Instant::now() + args.duration),
        }
    }

    /// Stop after `d` from now.
    pub fn after(d: Duration) -> Stop {
        Stop::Deadline(Instant::now() + d)
    }

    /// Claims up to `want` messages to send; 0 means stop.
    pub fn take(&self, want: usize) -> usize {
        match self {
            Stop::Count(left) => {
                let mut cur = left.load(Ordering::Relaxed);
                loop {
                    let n = cur.min(want as u64);
                    if n == 0 {
                        return 0;
                    }
                    match left.compare_exchange_weak(cur, cur - n, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => return n as usize,
                        Err(actual) => cur = actual,
                    }
                }
            }
            Stop::Deadline(at) => {
                if Instant::now() < *at {
                    want
                } else {
                    0
                }
            }
        }
    }
}

/// What producers send, where, how fast and until when.
#[derive(Debug)]
pub struct ProducerPlan {
    /// Queue URL.
    pub queue_url: String,
    /// Number of producers.
    pub producers: usize,
    /// Messages per request.
    pub batch: usize,
    /// Offered rate over all producers, messages per second.
    pub rate: Option<f64>,
    /// When to stop.
    pub stop: Stop,
    /// Accounting of acknowledged messages, if anyone will receive them.
    pub tracker: Option<Arc<Tracker>>,
    /// FIFO: this many message groups, partitioned among producers (each group belongs to one
    /// producer, so its messages are sent in order).
    pub groups: Option<usize>,
    /// Fair queues (standard queue): every message carries `MessageGroupId` `tenant<n>` and
    /// header group `n`.
    pub tenant: Option<u32>,
}

/// Where consumers receive from and what they account.
#[derive(Debug)]
pub struct ConsumerPlan {
    /// Queue URL.
    pub queue_url: String,
    /// sqs-fair: the quiet tenant's header group; its latencies (and the others') are
    /// recorded separately too.
    pub quiet_tenant: Option<u32>,
    /// Number of consumers.
    pub consumers: usize,
    /// Long-poll wait.
    pub wait_secs: u32,
    /// Accounting of deliveries.
    pub tracker: Arc<Tracker>,
}

/// A queue the run created (or was told to use).
#[derive(Debug, Clone)]
pub struct QueueHandle {
    /// Its URL.
    pub url: String,
    /// Whether the run deletes it at the end.
    pub delete_at_end: bool,
}

/// CPU readings at the start of a measured window.
#[derive(Debug, Clone, Copy)]
pub struct UsageWindow {
    started: Instant,
    server: Option<(u32, CpuSample)>,
    client: Option<CpuSample>,
}

impl Bench {
    /// A run's context; builds the client for `endpoint`.
    pub fn new(args: BenchArgs, endpoint: String, label: String) -> anyhow::Result<Arc<Bench>> {
        let credentials = Credentials {
            access_key_id: args.access_key_id.clone(),
            secret_access_key: args.secret_access_key.clone(),
            region: args.region.clone(),
            service: "sqs".to_owned(),
        };
        let client = SqsClient::new(&endpoint, args.protocol, credentials)?;
        let run_id = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().expect("4 bytes"));
        Ok(Arc::new(Bench {
            args,
            client,
            run_id,
            epoch: Instant::now(),
            live: Live::default(),
            seq: AtomicU64::new(0),
            last_delivery_nanos: AtomicU64::new(0),
            label,
            endpoint,
        }))
    }

    /// Nanoseconds since the run's epoch.
    pub fn nanos_since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Creates the run's queue: `--queue NAME` if given (kept), else a fresh
    /// `sluice-bench-<scenario>-<run id>` (deleted at the end unless `--keep-queue`).
    /// `fifo` adds `.fifo` and the FIFO attributes.
    pub async fn create_queue(&self, scenario: &str, suffix: &str, fifo: bool) -> anyhow::Result<QueueHandle> {
        let (mut name, delete_at_end) = match &self.args.queue {
            Some(q) => (format!("{q}{suffix}"), false),
            None => (format!("sluice-bench-{scenario}-{:08x}{suffix}", self.run_id), !self.args.keep_queue),
        };
        let mut attributes = vec![];
        if fifo {
            if !name.ends_with(".fifo") {
                name.push_str(".fifo");
            }
            attributes.push(("FifoQueue", "true"));
            attributes.push(("ContentBasedDeduplication", "false"));
        }
        let url = self
            .client
            .create_queue(&name, &attributes)
            .await
            .map_err(|e| anyhow::anyhow!("CreateQueue {name} at {}: {e}", self.endpoint))?;
        Ok(QueueHandle { url, delete_at_end })
    }

    /// Deletes the queue if the run created it for itself.
    pub async fn finish_queue(&self, q: &QueueHandle) {
        if q.delete_at_end {
            if let Err(e) = self.client.delete_queue(&q.url).await {
                self.live.error(1, format!("DeleteQueue: {e}"));
            }
        }
    }

    /// Starts a measured window: CPU readings of the server (`--server-pid`) and the bench.
    pub fn usage_start(&self) -> UsageWindow {
        UsageWindow {
            started: Instant::now(),
            server: self.args.server_pid.and_then(|pid| procfs::cpu(Some(pid)).ok().map(|s| (pid, s))),
            client: procfs::cpu(None).ok(),
        }
    }

    /// Ends a measured window in which `messages` messages were handled: (server, client) usage.
    pub fn usage_end(&self, w: &UsageWindow, messages: u64) -> (Option<ProcessUsage>, Option<ProcessUsage>) {
        let wall = w.started.elapsed();
        let server = w.server.and_then(|(pid, start)| {
            procfs::cpu(Some(pid)).ok().map(|end| procfs::usage(pid, false, start, end, wall, messages))
        });
        let client = w.client.and_then(|start| {
            procfs::cpu(None).ok().map(|end| procfs::usage(std::process::id(), true, start, end, wall, messages))
        });
        (server, client)
    }

    /// Starts the progress line on stderr (unless `--quiet`); it stops when the guard drops.
    pub fn progress(self: &Arc<Self>, phase: &str) -> ProgressGuard {
        if self.args.quiet {
            return ProgressGuard { task: None, tty: false };
        }
        let tty = std::io::stderr().is_terminal();
        let b = self.clone();
        let label = format!("{} {phase}", self.label);
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
            let (mut last_sent, mut last_recv, mut last_at) =
                (Live::get(&b.live.sent), Live::get(&b.live.received), Instant::now());
            loop {
                tick.tick().await;
                let (sent, recv, now) = (Live::get(&b.live.sent), Live::get(&b.live.received), Instant::now());
                let dt = now.duration_since(last_at).as_secs_f64().max(1e-9);
                let line = format!(
                    "[{label} {:5.1}s] sent {sent} ({:.0}/s)  received {recv} ({:.0}/s)  errors {}",
                    start.elapsed().as_secs_f64(),
                    (sent - last_sent) as f64 / dt,
                    (recv - last_recv) as f64 / dt,
                    Live::get(&b.live.errors),
                );
                let mut err = std::io::stderr().lock();
                let _ = if tty { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
                let _ = err.flush();
                (last_sent, last_recv, last_at) = (sent, recv, now);
            }
        });
        ProgressGuard { task: Some(task), tty }
    }
}

/// Stops the progress line when dropped.
#[derive(Debug)]
pub struct ProgressGuard {
    task: Option<tokio::task::JoinHandle<()>>,
    tty: bool,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            if self.tty {
                eprintln!();
            }
        }
    }
}

/// Runs the producers to the end of their plan; returns their merged latencies and how long
/// they ran.
pub async fn produce(b: &Arc<Bench>, plan: ProducerPlan) -> (Latencies, Duration) {
    let plan = Arc::new(plan);
    let start = Instant::now();
    let producers = match plan.groups {
        // A producer without a group would have nothing to send.
        Some(g) => plan.producers.min(g),
        None => plan.producers,
    };
    let tasks: Vec<_> = (0..producers).map(|i| tokio::spawn(producer(b.clone(), plan.clone(), i, producers))).collect();
    let mut lat = Latencies::default();
    for t in tasks {
        match t.await {
            Ok(l) => lat.merge(&l),
            Err(e) => b.live.error(1, format!("producer task: {e}")),
        }
    }
    (lat, start.elapsed())
}

async fn producer(b: Arc<Bench>, plan: Arc<ProducerPlan>, index: usize, producers: usize) -> Latencies {
    let mut lat = Latencies::default();
    let size = b.args.message_size;
    let mut bodies = vec![String::with_capacity(size); plan.batch];
    let mut dedup_ids = vec![String::new(); plan.batch];
    let mut group_ids = vec![String::new(); plan.batch];
    let my_groups: Vec<u32> = match plan.groups {
        Some(g) => (0..g as u32).filter(|g| *g as usize % producers == index).collect(),
        None => vec![plan.tenant.unwrap_or(0)],
    };
    let mut next_group = 0usize;
    // Open loop: batch k of this producer is due at start + k * interval, staggered so the
    // producers do not fire together.
    let interval = plan.rate.map(|r| Duration::from_secs_f64(plan.batch as f64 * producers as f64 / r));
    let mut due = interval.map(|iv| tokio::time::Instant::now() + iv.mul_f64(index as f64 / producers as f64));
    loop {
        let n = plan.stop.take(plan.batch);
        if n == 0 {
            break;
        }
        // With a rate, a producer behind schedule (its previous send outlasted the
        // interval) stamps its batch with the scheduled time, so time spent waiting for
        // the server shows in the end-to-end latency rather than being hidden
        // (coordinated omission). A producer on time sleeps until its slot, and tokio's
        // timer wakes it up to a millisecond late (it works in whole milliseconds): that
        // lateness is the client's own, so such a batch is stamped when it really starts.
        let sent_at = match (due.as_mut(), interval) {
            (Some(d), Some(iv)) => {
                let slot = *d;
                *d += iv;
                pace(slot).await.into_std()
            }
            _ => Instant::now(),
        };
        let seq0 = b.seq.fetch_add(n as u64, Ordering::Relaxed);
        let sent_nanos = b.nanos_since_epoch(sent_at);
        let mut groups = [0u32; crate::client::BATCH_ENTRIES_MAX];
        for i in 0..n {
            let group = my_groups[next_group % my_groups.len()];
            next_group += 1;
            groups[i] = group;
            Header { run_id: b.run_id, seq: seq0 + i as u64, sent_nanos, group }.write_body(size, &mut bodies[i]);
            if plan.tenant.is_some() {
                group_ids[i].clear();
                group_ids[i].push_str(&format!("tenant{group}"));
            }
            if plan.groups.is_some() {
                group_ids[i].clear();
                group_ids[i].push_str(&format!("g{group}"));
                dedup_ids[i].clear();
                dedup_ids[i].push_str(&format!("{:08x}-{}", b.run_id, seq0 + i as u64));
            }
        }
        let fifo = plan.groups.is_some();
        let grouped = fifo || plan.tenant.is_some();
        let entries: Vec<SendEntry<'_>> = (0..n)
            .map(|i| SendEntry {
                body: &bodies[i],
                group: grouped.then(|| group_ids[i].as_str()),
                dedup: fifo.then(|| dedup_ids[i].as_str()),
            })
            .collect();
        let t0 = Instant::now();
        let (name, result) = if plan.batch == 1 {
            let r = b.client.send(&plan.queue_url, entries[0]).await;
            (names::SEND, r.map(|()| crate::client::BatchOutcome { ok: vec![0], failed: vec![] }))
        } else {
            (names::SEND_BATCH, b.client.send_batch(&plan.queue_url, &entries).await)
        };
        lat.record(name, t0.elapsed());
        match result {
            Ok(outcome) => {
                if let Some(t) = &plan.tracker {
                    t.acknowledged(outcome.ok.iter().map(|i| seq0 + *i as u64));
                }
                Live::add(&b.live.sent, outcome.ok.len() as u64);
                let unanswered = n - outcome.ok.len() - outcome.failed.len();
                Live::add(&b.live.send_failed, (outcome.failed.len() + unanswered) as u64);
                for (_, code) in &outcome.failed {
                    b.live.error(1, format!("{name} entry: {code}"));
                }
                if unanswered > 0 {
                    b.live.error(unanswered as u64, format!("{name}: entries missing from the answer"));
                }
            }
            Err(e) => {
                Live::add(&b.live.send_failed, n as u64);
                b.live.error(1, format!("{name}: {e}"));
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    lat
}

/// Starts consumers; they run until `stop` becomes true, then return their latencies.
pub fn spawn_consumers(
    b: &Arc<Bench>,
    plan: ConsumerPlan,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Latencies>> {
    let plan = Arc::new(plan);
    (0..plan.consumers).map(|_| tokio::spawn(consumer(b.clone(), plan.clone(), stop.clone()))).collect()
}

async fn consumer(b: Arc<Bench>, plan: Arc<ConsumerPlan>, mut stop: watch::Receiver<bool>) -> Latencies {
    let mut lat = Latencies::default();
    let mut mine = Vec::with_capacity(crate::client::BATCH_ENTRIES_MAX);
    loop {
        if *stop.borrow() {
            break;
        }
        let t0 = Instant::now();
        let received = tokio::select! {
            r = b.client.receive(&plan.queue_url, crate::client::BATCH_ENTRIES_MAX, plan.wait_secs, None) => r,
            _ = stop.changed() => break,
        };
        let now = Instant::now();
        lat.record(names::RECEIVE, now - t0);
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                b.live.error(1, format!("{}: {e}", names::RECEIVE));
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let now_nanos = b.nanos_since_epoch(now);
        mine.clear();
        let mut foreign = 0;
        for m in &messages {
            match Header::parse(&m.body) {
                Some(h) if h.run_id == b.run_id => {
                    let e2e = Duration::from_nanos(now_nanos.saturating_sub(h.sent_nanos));
                    lat.record(names::END_TO_END, e2e);
                    match plan.quiet_tenant {
                        Some(q) if h.group == q => lat.record(names::END_TO_END_QUIET, e2e),
                        Some(_) => lat.record(names::END_TO_END_NOISY, e2e),
                        None => {}
                    }
                    mine.push(h);
                }
                _ => foreign += 1,
            }
        }
        // Account before deleting: on a FIFO queue the group's next messages can only be
        // delivered after this delete, so the order seen here is the order delivered.
        plan.tracker.delivered(mine.iter().copied());
        if !mine.is_empty() {
            b.last_delivery_nanos.fetch_max(now_nanos, Ordering::Relaxed);
        }
        Live::add(&b.live.received, messages.len() as u64);
        Live::add(&b.live.foreign, foreign);
        let handles: Vec<&str> = messages.iter().map(|m| m.receipt_handle.as_str()).collect();
        let t1 = Instant::now();
        let deleted = b.client.delete_batch(&plan.queue_url, &handles).await;
        lat.record(names::DELETE_BATCH, t1.elapsed());
        match deleted {
            Ok(outcome) => {
                Live::add(&b.live.deleted, outcome.ok.len() as u64);
                for (_, code) in &outcome.failed {
                    b.live.error(1, format!("{} entry: {code}", names::DELETE_BATCH));
                }
            }
            Err(e) => {
                b.live.error(1, format!("{}: {e}", names::DELETE_BATCH));
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    lat
}

/// What a round trip measured.
#[derive(Debug)]
pub struct RoundTrip {
    /// Latencies of producers and consumers.
    pub latencies: Latencies,
    /// From the start to the last delivery of this run's messages (or to the end of the drain).
    pub delivery_window: Duration,
    /// How long producers ran.
    pub producer_window: Duration,
}

/// Producers and consumers on one queue: producers run their plan, then consumers drain until
/// every acknowledged message was delivered or `--drain` passes.
pub async fn round_trip(b: &Arc<Bench>, queue_url: &str, tracker: &Arc<Tracker>, groups: Option<usize>) -> RoundTrip {
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let consumers = spawn_consumers(
        b,
        ConsumerPlan {
            queue_url: queue_url.to_owned(),
            quiet_tenant: None,
            consumers: b.args.consumers,
            wait_secs: b.args.wait_secs,
            tracker: tracker.clone(),
        },
        stop_rx,
    );
    let (mut latencies, producer_window) = produce(
        b,
        ProducerPlan {
            queue_url: queue_url.to_owned(),
            producers: b.args.connections,
            batch: b.args.batch,
            rate: b.args.rate,
            stop: Stop::from_args(&b.args),
            tracker: Some(tracker.clone()),
            groups,
            tenant: None,
        },
    )
    .await;
    let delivery_window = drain_and_stop(b, tracker, stop_tx, consumers, &mut latencies, start).await;
    RoundTrip { latencies, delivery_window, producer_window }
}

/// After the producers: lets consumers drain until every acknowledged message was delivered or
/// `--drain` passes, stops them, merges their latencies into `latencies`, and returns the
/// delivery window (from `start` to the last delivery of this run's messages).
pub async fn drain_and_stop(
    b: &Arc<Bench>,
    tracker: &Tracker,
    stop_tx: watch::Sender<bool>,
    consumers: Vec<tokio::task::JoinHandle<Latencies>>,
    latencies: &mut Latencies,
    start: Instant,
) -> Duration {
    let start_nanos = b.nanos_since_epoch(start);
    let drain_deadline = Instant::now() + b.args.drain;
    while !tracker.is_complete() && Instant::now() < drain_deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let _ = stop_tx.send(true);
    for c in consumers {
        match c.await {
            Ok(l) => latencies.merge(&l),
            Err(e) => b.live.error(1, format!("consumer task: {e}")),
        }
    }
    let last = b.last_delivery_nanos.load(Ordering::Relaxed);
    if last > start_nanos {
        Duration::from_nanos(last - start_nanos)
    } else {
        start.elapsed()
    }
}

/// Waits for a rate-paced batch's slot and returns the time the batch counts
/// as sent: its slot when the producer is already behind (coordinated
/// omission), else the moment the timer let it go (tokio's timer works in
/// whole milliseconds, and its lateness is the client's, not the server's).
async fn pace(slot: tokio::time::Instant) -> tokio::time::Instant {
    if tokio::time::Instant::now() < slot {
        tokio::time::sleep_until(slot).await;
        tokio::time::Instant::now()
    } else {
        slot
    }
}

#[cfg(test)]
mod tests {
    //! Goal: count-based stops hand out exactly the count, in batches, across
    //! threads; rate-paced batches are stamped so that the server's delays
    //! show and the client's timer does not.
    //! Method: claim concurrently and sum; `pace` on tokio's paused clock.

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_late_batch_counts_from_its_slot_an_early_one_from_its_release() {
        let slot = tokio::time::Instant::now();
        tokio::time::advance(std::time::Duration::from_millis(5)).await;
        assert_eq!(super::pace(slot).await, slot, "behind schedule: the slot, so the delay shows");
        let slot = tokio::time::Instant::now() + std::time::Duration::from_millis(3);
        let sent = super::pace(slot).await;
        assert!(sent >= slot, "on time: not before the slot");
        assert_eq!(sent, tokio::time::Instant::now(), "on time: when the timer let it go");
    }

    #[test]
    fn count_stop_hands_out_exactly_the_count() {
        let stop = Arc::new(Stop::Count(AtomicU64::new(1005)));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = stop.clone();
                std::thread::spawn(move || {
                    let mut got = 0;
                    loop {
                        match s.take(10) {
                            0 => return got,
                            n => got += n,
                        }
                    }
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1005);
        assert_eq!(stop.take(10), 0);
    }

    #[test]
    fn deadline_stop_ends_at_its_instant() {
        assert_eq!(Stop::after(Duration::from_secs(60)).take(10), 10);
        assert_eq!(Stop::after(Duration::ZERO).take(10), 0);
    }
}
