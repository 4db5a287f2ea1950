//! SetQueueAttributes: validates every attribute before changing any.

use crate::attributes;
use crate::errors::{missing, SqsError};
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::Value;
use sluice_store::QueueUpdate;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    if i.raw("Attributes").is_none() {
        return Err(missing("Attributes"));
    }
    let given = i.str_map("Attributes")?;
    let base = attributes::effective(&q);
    let (attrs, config) = attributes::apply(sqs, &q.name, &q.region, q.config.fifo, &base, &given, false).await?;
    let attrs = attributes::stored(attrs, q.config.fifo);
    sqs.store
        .update_queue(q.id, QueueUpdate { attributes: Some((attrs, config)), ..Default::default() }, sqs.now_ms())
        .await?;
    Ok(super::empty())
}
