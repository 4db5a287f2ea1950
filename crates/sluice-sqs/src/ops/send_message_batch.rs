//! SendMessageBatch: each entry validated on its own (failures reported per
//! entry), the valid ones enqueued in one atomic store write.

use super::batch::{check_entries, failed};
use crate::errors::SqsError;
use crate::input::{Fields, Input};
use sluice_protocol::{SendMessageBatchEntry, SendMessageBatchInput};
use sluice_store::QueueInfo;
use crate::{limits, RequestContext, Sqs};
use serde_json::Value;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let entries = i.entries("Entries")?;
    send(sqs, &q, &entries, ctx).await
}

/// `run`, for a request decoded into its shape (entries without message
/// attributes; see `sluice_protocol::TypedInput`).
pub async fn run_typed(sqs: &Arc<Sqs>, i: SendMessageBatchInput, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve_url(i.queue_url.as_deref(), ctx).await?;
    let entries: Vec<&SendMessageBatchEntry> = i.entries.iter().flatten().collect();
    send(sqs, &q, &entries, ctx).await
}

async fn send<'a, E: Fields<'a>>(sqs: &Arc<Sqs>, q: &QueueInfo, entries: &[E], ctx: &RequestContext) -> Result<Value, SqsError> {
    let ids = check_entries(entries, "SendMessageBatchRequestEntry")?;
    if q.config.fifo {
        // On FIFO queues a missing group or deduplication id fails the whole
        // request, not the entry (AWS-recorded behaviour).
        for e in entries {
            if e.str("MessageGroupId")?.is_none() {
                return Err(SqsError::InvalidParameterValue("The request must contain the parameter MessageGroupId.".into()));
            }
            if e.str("MessageDeduplicationId")?.is_none() && !q.config.content_based_dedup {
                return Err(SqsError::InvalidParameterValue(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                ));
            }
        }
    }
    // The bodies' MD5s in one pass (eight at a time with SIMD); an entry
    // without a valid body fails in `prepare_with` and its digest goes unused.
    let bodies: Vec<&[u8]> = entries.iter().map(|e| e.str("MessageBody").ok().flatten().unwrap_or("").as_bytes()).collect();
    let digests = crate::md5x::digest_many(&bodies);
    let mut messages = Vec::with_capacity(entries.len());
    let mut reported = Vec::with_capacity(entries.len());
    let mut failures = Vec::new();
    let mut total = 0usize;
    for ((e, id), md5) in entries.iter().zip(&ids).zip(digests) {
        match super::send_message::prepare_with(q, e, ctx, Some(md5)) {
            Ok(p) => {
                total += p.size;
                messages.push(p.message);
                reported.push((*id, p.digests));
            }
            Err(err) => failures.push(failed(id, &err)),
        }
    }
    if total > limits::MESSAGE_BYTES_MAX {
        return Err(SqsError::BatchRequestTooLong(total));
    }
    let mut successful = Vec::with_capacity(reported.len());
    if !messages.is_empty() {
        let sent = sqs.store.send(q.id, messages, sqs.now_ms()).await?;
        for ((id, d), s) in reported.into_iter().zip(&sent) {
            let mut r = d.result(s, q.config.fifo);
            r.insert("Id".into(), Value::String(id.to_owned()));
            successful.push(Value::Object(r));
        }
    }
    Ok(super::batch::result(successful, failures))
}
