//! One file per SQS operation; `dispatch` maps operation names to them.

mod add_permission;
mod batch;
mod cancel_message_move_task;
mod change_message_visibility;
mod change_message_visibility_batch;
mod create_queue;
mod delete_message;
pub(crate) mod delete_message_batch;
mod delete_queue;
mod get_queue_attributes;
mod get_queue_url;
mod list_dead_letter_source_queues;
mod list_message_move_tasks;
mod list_queue_tags;
mod list_queues;
mod purge_queue;
mod receive_message;
mod remove_permission;
mod send_message;
pub(crate) mod send_message_batch;
mod set_queue_attributes;
mod start_message_move_task;
mod tag_queue;
mod untag_queue;

use crate::input::Input;
use crate::{RequestContext, Sqs, SqsError};
use serde_json::Value;
use std::sync::Arc;

/// Every SQS operation name, as in the service model.
pub const OPERATIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

/// Runs `operation`.
pub async fn dispatch(sqs: &Arc<Sqs>, operation: &str, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    match operation {
        "AddPermission" => add_permission::run(sqs, i, ctx).await,
        "CancelMessageMoveTask" => cancel_message_move_task::run(sqs, i, ctx).await,
        "ChangeMessageVisibility" => change_message_visibility::run(sqs, i, ctx).await,
        "ChangeMessageVisibilityBatch" => change_message_visibility_batch::run(sqs, i, ctx).await,
        "CreateQueue" => create_queue::run(sqs, i, ctx).await,
        "DeleteMessage" => delete_message::run(sqs, i, ctx).await,
        "DeleteMessageBatch" => delete_message_batch::run(sqs, i, ctx).await,
        "DeleteQueue" => delete_queue::run(sqs, i, ctx).await,
        "GetQueueAttributes" => get_queue_attributes::run(sqs, i, ctx).await,
        "GetQueueUrl" => get_queue_url::run(sqs, i, ctx).await,
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues::run(sqs, i, ctx).await,
        "ListMessageMoveTasks" => list_message_move_tasks::run(sqs, i, ctx).await,
        "ListQueueTags" => list_queue_tags::run(sqs, i, ctx).await,
        "ListQueues" => list_queues::run(sqs, i, ctx).await,
        "PurgeQueue" => purge_queue::run(sqs, i, ctx).await,
        "ReceiveMessage" => receive_message::run(sqs, i, ctx).await,
        "RemovePermission" => remove_permission::run(sqs, i, ctx).await,
        "SendMessage" => send_message::run(sqs, i, ctx).await,
        "SendMessageBatch" => send_message_batch::run(sqs, i, ctx).await,
        "SetQueueAttributes" => set_queue_attributes::run(sqs, i, ctx).await,
        "StartMessageMoveTask" => start_message_move_task::run(sqs, i, ctx).await,
        "TagQueue" => tag_queue::run(sqs, i, ctx).await,
        "UntagQueue" => untag_queue::run(sqs, i, ctx).await,
        other => Err(SqsError::InvalidAction(other.to_string())),
    }
}

/// Stores `policy` as the queue's Policy attribute (`None` removes it), with
/// the queue's settings derived again from the attributes; an empty output.
pub(crate) async fn put_policy(sqs: &Arc<Sqs>, q: &sluice_store::QueueInfo, policy: Option<String>) -> Result<Value, SqsError> {
    let mut attrs = q.attributes.clone();
    match policy {
        Some(p) => attrs.insert("Policy".into(), p),
        None => attrs.remove("Policy"),
    };
    let config = crate::attributes::config_of(&attrs, q.config.fifo);
    let update = sluice_store::QueueUpdate { attributes: Some((attrs, config)), ..Default::default() };
    sqs.store.update_queue(q.id, update, sqs.now_ms()).await?;
    Ok(empty())
}

/// An empty output object.
pub(crate) fn empty() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Opaque pagination token for "continue after this name".
pub(crate) fn encode_token(after: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{after}"))
}

/// Reads a token written by `encode_token`.
pub(crate) fn decode_token(token: &str) -> Result<String, SqsError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("v1:").map(str::to_string))
        .ok_or_else(|| SqsError::InvalidParameterValue("Invalid NextToken value.".into()))
}
