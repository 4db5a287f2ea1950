//! PurgeQueue: at most once every 60 seconds per queue.

use crate::errors::SqsError;
use crate::input::Input;
use crate::{limits, RequestContext, Sqs};
use serde_json::Value;
use sluice_store::QueueUpdate;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let now = sqs.now_ms();
    if q.last_purge_ms.is_some_and(|t| now < t + limits::PURGE_COOLDOWN_MS) {
        return Err(SqsError::PurgeQueueInProgress(format!(
            "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
            q.name.name
        )));
    }
    sqs.store.update_queue(q.id, QueueUpdate { last_purge_ms: Some(now), ..Default::default() }, now).await?;
    sqs.store.purge(q.id, now).await?;
    Ok(super::empty())
}
