//! `sqs-roundtrip`: producers send while consumers long-poll ReceiveMessage(10) and
//! DeleteMessageBatch on the same queue. Headline: distinct messages delivered per second,
//! from the first send to the last delivery. Also end-to-end latency (body timestamp to
//! receipt) and the lost/duplicate accounting.

use super::base_report;
use crate::args::ScenarioKind;
use crate::driver::{round_trip, Bench};
use crate::report::Report;
use crate::stats::Throughput;
use crate::tracker::Tracker;
use std::sync::Arc;

/// Runs the scenario.
pub async fn run(b: &Arc<Bench>) -> anyhow::Result<Report> {
    run_on(b, ScenarioKind::SqsRoundtrip, None).await
}

/// The round trip on a fresh queue of `kind`; `groups` makes it a FIFO queue with that many
/// message groups and checks order per group.
pub async fn run_on(b: &Arc<Bench>, kind: ScenarioKind, groups: Option<usize>) -> anyhow::Result<Report> {
    let queue = b.create_queue(kind.name(), "", groups.is_some()).await?;
    let tracker = Arc::new(Tracker::new(groups));
    let window = b.usage_start();
    let progress = b.progress("round trip");
    let rt = round_trip(b, &queue.url, &tracker, groups).await;
    drop(progress);
    let accounting = tracker.accounting();
    let (server, client) = b.usage_end(&window, accounting.delivered);
    b.finish_queue(&queue).await;
    let size = b.args.message_size;
    let mut report = base_report(
        b,
        kind,
        Throughput::new(accounting.delivered, size, rt.delivery_window),
        "deliveries",
        &rt.latencies,
    );
    report.send_throughput = Throughput::new(accounting.acknowledged, size, rt.producer_window);
    report.accounting = Some(accounting);
    report.server = server;
    report.client = client;
    Ok(report)
}
