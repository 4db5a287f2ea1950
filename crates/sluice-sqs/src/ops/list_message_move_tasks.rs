//! ListMessageMoveTasks: the most recent tasks of a source, newest first.

use crate::errors::{invalid_value, SqsError};
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, _ctx: &RequestContext) -> Result<Value, SqsError> {
    let source = i.req_str("SourceArn")?;
    let max = match i.int("MaxResults")? {
        Some(n) if !(1..=10).contains(&n) => return Err(invalid_value("MaxResults", n, "Must be between 1 and 10.")),
        Some(n) => n as usize,
        None => 1,
    };
    if sqs.resolve_arn(source).await?.is_none() {
        return Err(SqsError::ResourceNotFoundException(
            "The resource that you specified for the SourceArn parameter doesn't exist.".into(),
        ));
    }
    let tasks = sqs.store.list_move_tasks(source).await?;
    let results: Vec<Value> = tasks
        .iter()
        .take(max)
        .map(|t| {
            let mut m = Map::new();
            if t.status == "RUNNING" {
                m.insert("TaskHandle".into(), json!(t.task_handle));
            }
            m.insert("Status".into(), json!(t.status));
            m.insert("SourceArn".into(), json!(t.source_arn));
            if let Some(d) = &t.destination_arn {
                m.insert("DestinationArn".into(), json!(d));
            }
            if let Some(r) = t.max_per_second {
                m.insert("MaxNumberOfMessagesPerSecond".into(), json!(r));
            }
            m.insert("ApproximateNumberOfMessagesMoved".into(), json!(t.moved));
            m.insert("ApproximateNumberOfMessagesToMove".into(), json!(t.to_move));
            if let Some(f) = &t.failure_reason {
                m.insert("FailureReason".into(), json!(f));
            }
            m.insert("StartedTimestamp".into(), json!(t.started_ms));
            Value::Object(m)
        })
        .collect();
    Ok(json!({ "Results": results }))
}
