//! ListQueueTags.

use crate::errors::SqsError;
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    if q.tags.is_empty() {
        return Ok(super::empty());
    }
    Ok(json!({ "Tags": q.tags }))
}
