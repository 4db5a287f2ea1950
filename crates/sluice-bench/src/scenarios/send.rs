//! `sqs-send`: producers send into one queue as fast as they can (or at `--rate`); nobody
//! receives. Headline: acknowledged messages per second.

use super::base_report;
use crate::args::ScenarioKind;
use crate::driver::{produce, Bench, ProducerPlan, Stop};
use crate::report::Report;
use crate::stats::{Live, Throughput};
use std::sync::Arc;

/// Runs the scenario.
pub async fn run(b: &Arc<Bench>) -> anyhow::Result<Report> {
    let kind = ScenarioKind::SqsSend;
    let queue = b.create_queue(kind.name(), "", false).await?;
    let window = b.usage_start();
    let progress = b.progress("send");
    let (latencies, elapsed) = produce(
        b,
        ProducerPlan {
            queue_url: queue.url.clone(),
            producers: b.args.connections,
            batch: b.args.batch,
            rate: b.args.rate,
            stop: Stop::from_args(&b.args),
            tracker: None,
            groups: None,
            tenant: None,
        },
    )
    .await;
    drop(progress);
    let sent = Live::get(&b.live.sent);
    let (server, client) = b.usage_end(&window, sent);
    b.finish_queue(&queue).await;
    let mut report =
        base_report(b, kind, Throughput::new(sent, b.args.message_size, elapsed), "acknowledged sends", &latencies);
    report.server = server;
    report.client = client;
    Ok(report)
}
