//! RemovePermission: removes the statement with that label from Policy.

use crate::errors::{invalid_value, SqsError};
use crate::input::Input;
use crate::{attributes, RequestContext, Sqs};
use serde_json::Value;
use sluice_store::QueueUpdate;
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let label = i.req_str("Label")?;
    let not_found = || invalid_value("Label", label, "can't find label on existing policy.");
    let mut policy: Value =
        q.attributes.get("Policy").and_then(|p| serde_json::from_str(p).ok()).ok_or_else(not_found)?;
    let statements = policy.get_mut("Statement").and_then(Value::as_array_mut).ok_or_else(not_found)?;
    let before = statements.len();
    statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label));
    if statements.len() == before {
        return Err(not_found());
    }
    let empty = statements.is_empty();
    let mut attrs = q.attributes.clone();
    if empty {
        attrs.remove("Policy");
    } else {
        attrs.insert("Policy".into(), policy.to_string());
    }
    let config = attributes::config_of(&attrs, q.config.fifo);
    sqs.store
        .update_queue(q.id, QueueUpdate { attributes: Some((attrs, config)), ..Default::default() }, sqs.now_ms())
        .await?;
    Ok(super::empty())
}
