//! GetQueueAttributes: `All` or named attributes, with the computed ones
//! (approximate counts, timestamps in seconds, ARN).

use crate::attributes::{COMPUTED, SETTABLE};
use crate::errors::SqsError;
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let names = i.str_list("AttributeNames")?;
    for n in &names {
        if n != "All" && !SETTABLE.contains(&n.as_str()) && !COMPUTED.contains(&n.as_str()) {
            return Err(SqsError::InvalidAttributeName(format!("Unknown Attribute {n}.")));
        }
    }
    let all = names.iter().any(|n| n == "All");
    let wants = |n: &str| all || names.iter().any(|x| x == n);
    let mut out = Map::new();
    if wants("QueueArn") {
        out.insert("QueueArn".into(), json!(sqs.queue_arn(&q)));
    }
    if wants("ApproximateNumberOfMessages") || wants("ApproximateNumberOfMessagesNotVisible") || wants("ApproximateNumberOfMessagesDelayed") {
        let c = sqs.store.counts(q.id, sqs.now_ms()).await?;
        for (n, v) in [
            ("ApproximateNumberOfMessages", c.visible),
            ("ApproximateNumberOfMessagesNotVisible", c.inflight),
            ("ApproximateNumberOfMessagesDelayed", c.delayed),
        ] {
            if wants(n) {
                out.insert(n.into(), json!(v.to_string()));
            }
        }
    }
    if wants("CreatedTimestamp") {
        out.insert("CreatedTimestamp".into(), json!((q.created_ms / 1000).to_string()));
    }
    if wants("LastModifiedTimestamp") {
        out.insert("LastModifiedTimestamp".into(), json!((q.last_modified_ms / 1000).to_string()));
    }
    for (k, v) in crate::attributes::effective(&q) {
        if wants(&k) {
            out.insert(k, json!(v));
        }
    }
    let mut res = Map::new();
    if !out.is_empty() {
        res.insert("Attributes".into(), Value::Object(out));
    }
    Ok(Value::Object(res))
}
