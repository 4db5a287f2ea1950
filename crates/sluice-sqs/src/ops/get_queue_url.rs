//! GetQueueUrl, optionally in another account (QueueOwnerAWSAccountId).

use crate::errors::SqsError;
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Value};
use sluice_store::QueueName;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let name = i.req_str("QueueName")?;
    let account = i.str("QueueOwnerAWSAccountId")?.unwrap_or(&ctx.account);
    let q = sqs.store.get_queue(&QueueName::new(account, name)).await?.ok_or(SqsError::QueueDoesNotExist)?;
    Ok(json!({ "QueueUrl": sqs.queue_url(ctx, &q.name) }))
}
