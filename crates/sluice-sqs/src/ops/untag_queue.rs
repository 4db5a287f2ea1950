//! UntagQueue.

use crate::errors::{missing, SqsError};
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::Value;
use sluice_store::QueueUpdate;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    if i.raw("TagKeys").is_none() {
        return Err(missing("TagKeys"));
    }
    let keys = i.str_list("TagKeys")?;
    let mut tags = q.tags.clone();
    for k in keys {
        tags.remove(&k);
    }
    sqs.store.update_queue(q.id, QueueUpdate { tags: Some(tags), ..Default::default() }, sqs.now_ms()).await?;
    Ok(super::empty())
}
