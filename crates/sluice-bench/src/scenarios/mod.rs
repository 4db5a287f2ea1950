//! The scenarios: each one a module with `run(&Arc<Bench>) -> Result<Report>` that composes
//! the driver's loops on its own queues and picks its headline figure.
//!
//! Adding a scenario (SNS and Kinesis ones come next) is a variant in `args::ScenarioKind`,
//! a module here, and an arm in [`run`]. The ceiling is not a module: `lib.rs` runs any
//! scenario's shape against the stub.

mod backlog;
mod fair;
mod fifo;
mod roundtrip;
mod send;
mod waiters;

use crate::args::ScenarioKind;
use crate::driver::Bench;
use crate::report::{Report, Settings};
use crate::stats::{Latencies, Live, Throughput};
use std::sync::Arc;

/// Runs scenario `kind` with the context `b`.
pub async fn run(b: &Arc<Bench>, kind: ScenarioKind) -> anyhow::Result<Report> {
    match kind {
        ScenarioKind::SqsSend => send::run(b).await,
        ScenarioKind::SqsRoundtrip => roundtrip::run(b).await,
        ScenarioKind::SqsFifo => fifo::run(b).await,
        ScenarioKind::SqsBacklog => backlog::run(b).await,
        ScenarioKind::SqsFair => fair::run(b).await,
        ScenarioKind::SqsWaiters => waiters::run(b).await,
        ScenarioKind::Ceiling => anyhow::bail!("the ceiling drives another scenario's shape; it has no run of its own"),
    }
}

/// A report with the run's settings, counters and latencies; the scenario adds the rest.
fn base_report(b: &Bench, kind: ScenarioKind, throughput: Throughput, basis: &str, latencies: &Latencies) -> Report {
    let a = &b.args;
    let l = &b.live;
    Report {
        scenario: kind.name().to_owned(),
        shape: None,
        endpoint: b.endpoint.clone(),
        protocol: a.protocol.name().to_owned(),
        settings: Settings {
            connections: a.connections,
            consumers: a.consumers,
            batch: a.batch,
            message_size: a.message_size,
            rate: a.rate,
            duration_secs: a.count.is_none().then_some(a.duration.as_secs_f64()),
            count: a.count,
        },
        run_id: format!("{:08x}", b.run_id),
        throughput,
        throughput_basis: basis.to_owned(),
        send_throughput: throughput,
        sent: Live::get(&l.sent),
        send_failed: Live::get(&l.send_failed),
        received: Live::get(&l.received),
        deleted: Live::get(&l.deleted),
        foreign: Live::get(&l.foreign),
        errors: Live::get(&l.errors),
        error_samples: l.error_samples(),
        accounting: None,
        latency: latencies.summaries(),
        ceiling: None,
        server: None,
        client: None,
        backlog: None,
        waiters: None,
    }
}
