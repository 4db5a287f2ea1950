//! AddPermission: adds a statement to the queue's Policy attribute, in the
//! shape SQS writes (Sid = label, principals as account root ARNs, actions
//! prefixed `SQS:`).

use crate::errors::{invalid_value, missing, SqsError};
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

const ACTIONS: &[&str] = &[
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ListQueueTags",
    "SendMessageBatch",
    "DeleteMessageBatch",
    "ChangeMessageVisibilityBatch",
];

fn one_or_many(v: Vec<String>) -> Value {
    if v.len() == 1 {
        json!(v[0])
    } else {
        json!(v)
    }
}

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let label = i.req_str("Label")?;
    if label.is_empty() || label.len() > 80 || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(invalid_value("Label", label, "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"));
    }
    let accounts = i.str_list("AWSAccountIds")?;
    if accounts.is_empty() {
        return Err(missing("AWSAccountIds"));
    }
    let actions = i.str_list("Actions")?;
    if actions.is_empty() {
        return Err(missing("Actions"));
    }
    for a in &actions {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(invalid_value("ActionName", a, "Please refer to the appropriate WSDL for a list of valid actions."));
        }
    }
    let arn = sqs.queue_arn(&q);
    let mut policy: Value = q
        .attributes
        .get("Policy")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| json!({"Version": "2008-10-17", "Id": format!("{arn}/SQSDefaultPolicy"), "Statement": []}));
    let statements = policy.get_mut("Statement").and_then(Value::as_array_mut);
    let Some(statements) = statements else {
        return Err(invalid_value("Policy", "", "The existing policy has no Statement list."));
    };
    if statements.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(label)) {
        return Err(invalid_value("Label", label, "Already exists."));
    }
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_many(accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect())},
        "Action": one_or_many(actions.iter().map(|a| format!("SQS:{a}")).collect()),
        "Resource": arn,
    }));
    super::put_policy(sqs, &q, Some(policy.to_string())).await
}
