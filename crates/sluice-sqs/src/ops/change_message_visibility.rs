//! ChangeMessageVisibility, and the outcome mapping shared with the batch form.
//!
//! Outcomes follow what AWS answers: a message whose visibility already
//! expired is MessageNotInflight; a handle superseded by a later receive is
//! InvalidParameterValue "The receipt handle has expired."; a deleted message
//! is InvalidParameterValue "Message does not exist or is not available for
//! visibility timeout change." (aws/aws-sdk-java#1628, aws/aws-sdk-js#1750).

use super::delete_message::receipt;
use crate::errors::{invalid_value, SqsError};
use crate::input::Input;
use crate::{limits, RequestContext, Sqs};
use serde_json::Value;
use sluice_store::VisibilityOutcome;
use std::sync::Arc;

/// Reads and checks `VisibilityTimeout` (required, 0 to 43200).
pub fn timeout(i: &Input<'_>) -> Result<u32, SqsError> {
    match i.int("VisibilityTimeout")? {
        None => Err(crate::errors::missing("VisibilityTimeout")),
        Some(v) if !(0..=limits::VISIBILITY_TIMEOUT_SECS_MAX).contains(&v) => Err(invalid_value(
            "VisibilityTimeout",
            v,
            "Must be between 0 and 43200, if provided.",
        )),
        Some(v) => Ok(v as u32),
    }
}

/// The error (if any) a visibility outcome means.
pub fn outcome_error(o: VisibilityOutcome, handle: &str) -> Option<SqsError> {
    match o {
        VisibilityOutcome::Changed => None,
        VisibilityOutcome::NotInflight => Some(SqsError::MessageNotInflight),
        VisibilityOutcome::Stale => Some(invalid_value("ReceiptHandle", handle, "The receipt handle has expired.")),
        VisibilityOutcome::Gone => Some(invalid_value(
            "ReceiptHandle",
            handle,
            "Message does not exist or is not available for visibility timeout change.",
        )),
    }
}

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let handle = i.req_str("ReceiptHandle")?;
    let t = timeout(i)?;
    let r = receipt(sqs, &q, handle)?;
    let out = sqs.store.change_visibility(q.id, &[(r, t)], sqs.now_ms()).await?;
    match out.first().and_then(|o| outcome_error(*o, handle)) {
        Some(e) => Err(e),
        None => Ok(super::empty()),
    }
}
