//! StartMessageMoveTask: the source must be a dead-letter queue; moves go to
//! DestinationArn or, without it, back to each message's source queue.

use crate::errors::{invalid_value, missing, SqsError};
use crate::input::Input;
use crate::move_tasks;
use crate::{limits, RequestContext, Sqs};
use base64::Engine;
use serde_json::{json, Value};
use sluice_store::{MoveDestination, MoveTask};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let source_arn = i.str("SourceArn")?.ok_or_else(|| missing("SourceArn"))?;
    let dest_arn = i.str("DestinationArn")?;
    let rate = i.int("MaxNumberOfMessagesPerSecond")?;
    if let Some(r) = rate {
        if !(1..=limits::MOVE_TASK_RATE_MAX).contains(&r) {
            return Err(invalid_value("MaxNumberOfMessagesPerSecond", r, "Must be between 1 and 500."));
        }
    }
    let source = sqs.resolve_arn(source_arn).await?.ok_or_else(|| {
        SqsError::ResourceNotFoundException("The resource that you specified for the SourceArn parameter doesn't exist.".into())
    })?;
    // The source must be some queue's dead-letter queue.
    let targets_source = |q: &sluice_store::QueueInfo| q.config.redrive.as_ref().is_some_and(|r| r.dead_letter_target == source.name);
    let is_dlq = !sqs.scan_queues(&source.name.account, None, 1, targets_source).await?.0.is_empty();
    if !is_dlq {
        return Err(invalid_value("SourceArn", source_arn, "Source queue must be configured as a Dead Letter Queue."));
    }
    let dest = match dest_arn {
        Some(d) => {
            let q = sqs.resolve_arn(d).await?.ok_or_else(|| {
                SqsError::ResourceNotFoundException("The resource that you specified for the DestinationArn parameter doesn't exist.".into())
            })?;
            if q.id == source.id {
                return Err(invalid_value("DestinationArn", d, "Source and destination queues must be different."));
            }
            MoveDestination::Queue(q.id)
        }
        None => MoveDestination::OriginalSource,
    };
    let existing = sqs.store.list_move_tasks(source_arn).await?;
    if existing.iter().any(|t| t.status == "RUNNING") {
        return Err(SqsError::InvalidParameterValue(
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time.".into(),
        ));
    }
    let now = sqs.now_ms();
    let counts = sqs.store.counts(source.id, now).await?;
    let id = uuid::Uuid::new_v4();
    let handle = base64::engine::general_purpose::STANDARD
        .encode(json!({"taskId": id.to_string(), "sourceArn": source_arn}).to_string());
    let task = MoveTask {
        task_handle: handle.clone(),
        source_arn: source_arn.to_string(),
        destination_arn: dest_arn.map(str::to_string),
        max_per_second: rate.map(|r| r as u32),
        status: "RUNNING".into(),
        moved: 0,
        to_move: counts.visible,
        started_ms: now,
        failure_reason: None,
    };
    sqs.store.put_move_task(task.clone()).await?;
    let _ = ctx;
    move_tasks::spawn(sqs.clone(), task, source.id, dest);
    Ok(json!({ "TaskHandle": handle }))
}

/// The source ARN a task handle names.
pub fn handle_source(handle: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD.decode(handle).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("sourceArn")?.as_str().map(str::to_string)
}
