//! DeleteQueue.

use crate::errors::SqsError;
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::Value;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    sqs.store.delete_queue(q.id, sqs.now_ms()).await?;
    Ok(super::empty())
}
