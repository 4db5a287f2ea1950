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
    let mut urls = Vec::new();
    let mut cursor = after;
    let mut more = false;
    // Scan the account's queues in name order, a page at a time.
    'scan: loop {
        let page = sqs.store.list_queues(&dlq.name.account, "", cursor.as_deref(), 1000).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.name.name.clone());
        for q in &page {
            if q.config.redrive.as_ref().is_some_and(|r| r.dead_letter_target == dlq.name) {
                if urls.len() == limit {
                    more = true;
                    break 'scan;
                }
                urls.push((q.name.name.clone(), sqs.queue_url(ctx, &q.name)));
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("queueUrls".into(), json!(urls.iter().map(|u| &u.1).collect::<Vec<_>>()));
    if more && max.is_some() {
        if let Some((name, _)) = urls.last() {
            out.insert("NextToken".into(), json!(super::encode_token(name)));
        }
    }
    Ok(Value::Object(out))
}
