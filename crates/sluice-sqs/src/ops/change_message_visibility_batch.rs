//! ChangeMessageVisibilityBatch.

use super::batch::{check_entries, failed};
use super::change_message_visibility::{outcome_error, timeout};
use super::delete_message::receipt;
use crate::errors::SqsError;
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let entries = i.entries("Entries")?;
    let ids = check_entries(&entries, "ChangeMessageVisibilityBatchRequestEntry")?;
    let mut good = Vec::new();
    let mut failures = Vec::new();
    for (e, id) in entries.iter().zip(&ids) {
        let parsed = e
            .req_str("ReceiptHandle")
            .and_then(|h| Ok((h, receipt(sqs, &q, h)?, timeout(e)?)));
        match parsed {
            Ok((h, r, t)) => good.push((*id, h, r, t)),
            Err(err) => failures.push(failed(id, &err)),
        }
    }
    let mut successful = Vec::new();
    if !good.is_empty() {
        let changes: Vec<_> = good.iter().map(|g| (g.2, g.3)).collect();
        let out = sqs.store.change_visibility(q.id, &changes, sqs.now_ms()).await?;
        for ((id, h, _, _), o) in good.iter().zip(out) {
            match outcome_error(o, h) {
                None => successful.push(json!({ "Id": id })),
                Some(err) => failures.push(failed(id, &err)),
            }
        }
    }
    Ok(super::batch::result(successful, failures))
}
