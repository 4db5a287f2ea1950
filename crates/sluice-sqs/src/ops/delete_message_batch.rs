//! DeleteMessageBatch: per-entry results, valid entries deleted in one store call.

use super::batch::{check_entries, failed};
use super::delete_message::{outcome_error, receipt};
use crate::errors::SqsError;
use crate::input::{Fields, Input};
use sluice_protocol::{DeleteMessageBatchEntry, DeleteMessageBatchInput};
use sluice_store::QueueInfo;
use crate::{RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let entries = i.entries("Entries")?;
    delete(sqs, &q, &entries).await
}

/// `run`, for a request decoded into its shape (see
/// `sluice_protocol::TypedInput`).
pub async fn run_typed(sqs: &Arc<Sqs>, i: DeleteMessageBatchInput, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve_url(i.queue_url.as_deref(), ctx).await?;
    let entries: Vec<&DeleteMessageBatchEntry> = i.entries.iter().flatten().collect();
    delete(sqs, &q, &entries).await
}

async fn delete<'a, E: Fields<'a>>(sqs: &Arc<Sqs>, q: &QueueInfo, entries: &[E]) -> Result<Value, SqsError> {
    let ids = check_entries(entries, "DeleteMessageBatchRequestEntry")?;
    let mut good = Vec::new();
    let mut failures = Vec::new();
    for (e, id) in entries.iter().zip(&ids) {
        let r = e.req_str("ReceiptHandle").and_then(|h| receipt(sqs, q, h).map(|r| (h, r)));
        match r {
            Ok((h, r)) => good.push((*id, h, r)),
            Err(err) => failures.push(failed(id, &err)),
        }
    }
    let mut successful = Vec::new();
    if !good.is_empty() {
        let receipts: Vec<_> = good.iter().map(|g| g.2).collect();
        let out = sqs.store.delete_messages(q.id, &receipts, sqs.now_ms()).await?;
        for ((id, h, _), o) in good.iter().zip(out) {
            match outcome_error(o, h, q.config.fifo) {
                None => successful.push(json!({ "Id": id })),
                Some(err) => failures.push(failed(id, &err)),
            }
        }
    }
    Ok(super::batch::result(successful, failures))
}
