//! RemovePermission: removes the statement with that label from Policy.

use crate::errors::{invalid_value, SqsError};
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::Value;
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
    let policy = if statements.is_empty() { None } else { Some(policy.to_string()) };
    super::put_policy(sqs, &q, policy).await
}
