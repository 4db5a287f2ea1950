//! CancelMessageMoveTask: only a RUNNING task can be cancelled.

use crate::errors::SqsError;
use crate::input::Input;
use crate::{RequestContext, Sqs};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, _ctx: &RequestContext) -> Result<Value, SqsError> {
    let handle = i.req_str("TaskHandle")?;
    let not_found = || SqsError::ResourceNotFoundException("Task does not exist.".into());
    // A handle that does not decode is an invalid parameter; one that decodes
    // but names no task is ResourceNotFoundException (as AWS answers).
    let source = super::start_message_move_task::handle_source(handle)
        .ok_or_else(|| SqsError::InvalidParameterValue("Value for parameter TaskHandle is invalid.".into()))?;
    let mut task = sqs
        .store
        .list_move_tasks(&source)
        .await?
        .into_iter()
        .find(|t| t.task_handle == handle)
        .ok_or_else(not_found)?;
    if task.status != "RUNNING" {
        return Err(SqsError::UnsupportedOperation("Only tasks with status RUNNING can be cancelled.".into()));
    }
    if !sqs.move_tasks.cancel(handle) {
        // Not running in this process (e.g. left RUNNING by a crash): record the cancel.
        task.status = "CANCELLED".into();
        sqs.store.put_move_task(task.clone()).await?;
    }
    Ok(json!({ "ApproximateNumberOfMessagesMoved": task.moved }))
}
