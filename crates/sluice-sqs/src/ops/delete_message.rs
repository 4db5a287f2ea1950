//! DeleteMessage, and the receipt checks shared with the batch form.
//!
//! On a standard queue a superseded receipt handle "succeeds, but the message
//! might not be deleted" (SQS DeleteMessage documentation), and deleting an
//! already deleted message succeeds; a handle that is not one of ours is
//! ReceiptHandleIsInvalid.

use crate::errors::{invalid_value, SqsError};
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::Value;
use sluice_store::{DeleteOutcome, QueueInfo, Receipt};
use std::sync::Arc;

/// Decodes a receipt handle of queue `q`.
pub fn receipt(sqs: &Sqs, q: &QueueInfo, handle: &str) -> Result<Receipt, SqsError> {
    sqs.receipts.decode(q.id, handle).ok_or_else(|| SqsError::ReceiptHandleIsInvalid(handle.to_string()))
}

/// The error (if any) a delete outcome means. Standard queues accept a
/// superseded handle without deleting; FIFO queues reject it ("The receipt
/// handle has expired.", aws/aws-sdk-js#1750).
pub fn outcome_error(o: DeleteOutcome, handle: &str, fifo: bool) -> Option<SqsError> {
    match o {
        DeleteOutcome::Deleted | DeleteOutcome::Gone => None,
        DeleteOutcome::Stale | DeleteOutcome::Expired if fifo => {
            Some(invalid_value("ReceiptHandle", handle, "The receipt handle has expired."))
        }
        DeleteOutcome::Stale | DeleteOutcome::Expired => None,
    }
}

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let handle = i.req_str("ReceiptHandle")?;
    let r = receipt(sqs, &q, handle)?;
    let out = sqs.store.delete_messages(q.id, &[r], sqs.now_ms()).await?;
    if let Some(e) = out.first().and_then(|o| outcome_error(*o, handle, q.config.fifo)) {
        return Err(e);
    }
    Ok(super::empty())
}
