//! ListDeadLetterSourceQueues: queues whose RedrivePolicy targets this queue.

use crate::errors::SqsError;
use crate::input::Input;
use crate::{limits, RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let dlq = sqs.resolve(i, ctx).await?;
    let max = i.int_in("MaxResults", 1, limits::LIST_RESULTS_MAX)?;
    let after = i.str("NextToken")?.map(super::decode_token).transpose()?;
    let limit = max.unwrap_or(limits::LIST_RESULTS_MAX) as usize;
    let targets_dlq = |q: &sluice_store::QueueInfo| q.config.redrive.as_ref().is_some_and(|r| r.dead_letter_target == dlq.name);
    let (sources, more) = sqs.scan_queues(&dlq.name.account, after, limit, targets_dlq).await?;
    let urls: Vec<(String, String)> = sources.iter().map(|q| (q.name.name.clone(), sqs.queue_url(ctx, &q.name))).collect();
    let mut out = serde_json::Map::new();
    out.insert("queueUrls".into(), json!(urls.iter().map(|u| &u.1).collect::<Vec<_>>()));
    if more && max.is_some() {
        if let Some((name, _)) = urls.last() {
            out.insert("NextToken".into(), json!(super::encode_token(name)));
        }
    }
    Ok(Value::Object(out))
}
