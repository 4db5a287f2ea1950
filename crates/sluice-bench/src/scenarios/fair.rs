//! `sqs-fair`: fair queues. A noisy tenant (MessageGroupId `tenant0`) first queues `--flood`
//! messages on a standard queue, then keeps sending as fast as it can from all producers but
//! one, while the last producer is a quiet tenant (`tenant1`) sending `--quiet-rate`
//! messages/s, one at a time. Consumers long-poll and delete as in `sqs-roundtrip`.
//! Headline: deliveries per second; the figure that matters is the quiet tenant's end-to-end
//! latency next to the noisy tenant's: on a queue without fairness the quiet tenant waits
//! behind the whole flood.

use super::base_report;
use crate::args::ScenarioKind;
use crate::driver::{drain_and_stop, names, produce, spawn_consumers, Bench, ConsumerPlan, ProducerPlan, Stop};
use crate::report::Report;
use crate::stats::Throughput;
use crate::tracker::Tracker;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

const NOISY: u32 = 0;
const QUIET: u32 = 1;

/// Runs the scenario.
pub async fn run(b: &Arc<Bench>) -> anyhow::Result<Report> {
    let kind = ScenarioKind::SqsFair;
    let queue = b.create_queue(kind.name(), "", false).await?;
    let tracker = Arc::new(Tracker::new(None));
    let url = queue.url.clone();
    let producer_plan = |producers: usize, batch: usize, rate: Option<f64>, stop: Stop, tenant: u32| ProducerPlan {
        queue_url: url.clone(),
        producers,
        batch,
        rate,
        stop,
        tracker: Some(tracker.clone()),
        groups: None,
        tenant: Some(tenant),
    };
    // The flood, before anyone consumes.
    let progress = b.progress("flood");
    let flood = b.args.count.map_or(b.args.flood, |c| b.args.flood.min(c));
    let (mut latencies, _) =
        produce(b, producer_plan(b.args.connections, b.args.batch, None, Stop::Count(AtomicU64::new(flood)), NOISY)).await;
    drop(progress);

    let window = b.usage_start();
    let progress = b.progress("fair round trip");
    let start = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let consumers = spawn_consumers(
        b,
        ConsumerPlan {
            queue_url: queue.url.clone(),
            quiet_tenant: Some(QUIET),
            consumers: b.args.consumers,
            wait_secs: b.args.wait_secs,
            tracker: tracker.clone(),
        },
        stop_rx,
    );
    let noisy_producers = b.args.connections.saturating_sub(1).max(1);
    let quiet_stop = match b.args.count {
        Some(c) => Stop::Count(AtomicU64::new((c / 100).max(10))),
        None => Stop::after(b.args.duration),
    };
    let (noisy, quiet) = tokio::join!(
        produce(b, producer_plan(noisy_producers, b.args.batch, None, Stop::from_args(&b.args), NOISY)),
        produce(b, producer_plan(1, 1, Some(b.args.quiet_rate), quiet_stop, QUIET)),
    );
    latencies.merge(&noisy.0);
    latencies.merge(&quiet.0);
    let producer_window = noisy.1.max(quiet.1);
    let delivery_window = drain_and_stop(b, &tracker, stop_tx, consumers, &mut latencies, start).await;
    drop(progress);
    let accounting = tracker.accounting();
    let (server, client) = b.usage_end(&window, accounting.delivered);
    b.finish_queue(&queue).await;
    let size = b.args.message_size;
    let mut report = base_report(b, kind, Throughput::new(accounting.delivered, size, delivery_window), "deliveries", &latencies);
    report.send_throughput = Throughput::new(accounting.acknowledged, size, producer_window);
    report.accounting = Some(accounting);
    report.server = server;
    report.client = client;
    debug_assert!(names::END_TO_END_QUIET != names::END_TO_END_NOISY);
    Ok(report)
}
