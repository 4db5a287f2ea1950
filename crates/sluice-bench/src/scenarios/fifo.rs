//! `sqs-fifo`: the round trip on a `.fifo` queue. Each message carries a MessageGroupId (one of
//! `--groups`, each owned by one producer so it is sent in order) and a
//! MessageDeduplicationId; consumers check that every group is delivered in send order.

use crate::args::ScenarioKind;
use crate::driver::Bench;
use crate::report::Report;
use std::sync::Arc;

/// Runs the scenario.
pub async fn run(b: &Arc<Bench>) -> anyhow::Result<Report> {
    super::roundtrip::run_on(b, ScenarioKind::SqsFifo, Some(b.args.groups)).await
}
