//! ListQueues: by prefix, paginated only when MaxResults is given (as AWS does).

use crate::errors::SqsError;
use crate::input::Input;
use crate::{limits, RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let prefix = i.str("QueueNamePrefix")?.unwrap_or("");
    let max = i.int_in("MaxResults", 1, limits::LIST_RESULTS_MAX)?;
    let after = i.str("NextToken")?.map(super::decode_token).transpose()?;
    let limit = max.unwrap_or(limits::LIST_RESULTS_MAX) as usize;
    let page = sqs.store.list_queues(&ctx.account, prefix, after.as_deref(), limit + 1).await?;
    let more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let mut out = serde_json::Map::new();
    if !page.is_empty() {
        out.insert("QueueUrls".into(), json!(page.iter().map(|q| sqs.queue_url(ctx, &q.name)).collect::<Vec<_>>()));
    }
    if more && max.is_some() {
        if let Some(last) = page.last() {
            out.insert("NextToken".into(), json!(super::encode_token(&last.name.name)));
        }
    }
    Ok(Value::Object(out))
}
