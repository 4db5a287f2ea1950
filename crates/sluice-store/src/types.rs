//! The nouns of the storage interface: queues, messages, receipts and outcomes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Internal queue id, assigned by the engine, never reused.
pub type QueueId = u64;

/// A queue's identity as AWS sees it: owner account and queue name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueueName {
    /// Twelve-digit owner account id.
    pub account: String,
    /// Queue name (`.fifo` suffix included for FIFO queues).
    pub name: String,
}

impl QueueName {
    /// A name in an account.
    pub fn new(account: impl Into<String>, name: impl Into<String>) -> Self {
        Self { account: account.into(), name: name.into() }
    }
}

/// Where a queue's failed messages go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redrive {
    /// The dead-letter queue.
    pub dead_letter_target: QueueName,
    /// Receives after which a message moves there instead of being delivered.
    pub max_receive_count: u32,
}

/// The settings the engine needs to apply queue semantics; the service derives
/// it from the validated attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Default visibility timeout.
    pub visibility_timeout_secs: u32,
    /// Default delivery delay.
    pub delay_secs: u32,
    /// How long a message is kept.
    pub retention_secs: u32,
    /// Dead-letter configuration.
    pub redrive: Option<Redrive>,
    /// A FIFO queue.
    pub fifo: bool,
    /// FIFO: deduplicate by SHA-256 of the body when no id is given.
    pub content_based_dedup: bool,
    /// FIFO: deduplication ids are scoped to the message group.
    pub dedup_scope_group: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout_secs: 30,
            delay_secs: 0,
            retention_secs: 345_600,
            redrive: None,
            fifo: false,
            content_based_dedup: false,
            dedup_scope_group: false,
        }
    }
}

/// A queue as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInfo {
    /// Engine id.
    pub id: QueueId,
    /// Account and name.
    pub name: QueueName,
    /// Region the queue was created in.
    pub region: String,
    /// The queue attributes as set by the user (validated and normalised by the service).
    pub attributes: BTreeMap<String, String>,
    /// The settings the engine applies.
    pub config: QueueConfig,
    /// Cost-allocation tags.
    pub tags: BTreeMap<String, String>,
    /// Creation time.
    pub created_ms: u64,
    /// Last attribute change.
    pub last_modified_ms: u64,
    /// Last PurgeQueue, for the 60-second rule.
    pub last_purge_ms: Option<u64>,
}

/// What `create_queue` is asked to create.
#[derive(Debug, Clone)]
pub struct NewQueue {
    /// Account and name.
    pub name: QueueName,
    /// Region.
    pub region: String,
    /// Validated attributes.
    pub attributes: BTreeMap<String, String>,
    /// Derived settings.
    pub config: QueueConfig,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Refuse to create when a queue of this name was deleted after this time.
    pub refuse_if_deleted_after_ms: u64,
}

/// What `create_queue` did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// A new queue.
    Created(std::sync::Arc<QueueInfo>),
    /// A queue of that name exists; nothing changed.
    Exists(std::sync::Arc<QueueInfo>),
    /// A queue of that name was deleted too recently.
    DeletedRecently,
}

/// A change to a queue's metadata; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct QueueUpdate {
    /// New attributes and settings (replace both).
    pub attributes: Option<(BTreeMap<String, String>, QueueConfig)>,
    /// New tag set.
    pub tags: Option<BTreeMap<String, String>>,
    /// A purge time to record.
    pub last_purge_ms: Option<u64>,
}

impl QueueUpdate {
    /// Applies the change to `info`; new attributes also set its
    /// last-modified time to `now_ms`.
    pub fn apply(self, info: &mut QueueInfo, now_ms: u64) {
        if let Some((attrs, config)) = self.attributes {
            info.attributes = attrs;
            info.config = config;
            info.last_modified_ms = now_ms;
        }
        if let Some(tags) = self.tags {
            info.tags = tags;
        }
        if let Some(p) = self.last_purge_ms {
            info.last_purge_ms = Some(p);
        }
    }
}

/// What `Store::list_queues` returns, walked over an engine's index of queue
/// names: the ids of `account`'s queues whose name starts with `prefix`, in
/// name order, strictly after `after` when given, at most `limit`.
pub fn list_queue_ids(
    by_name: &BTreeMap<QueueName, QueueId>,
    account: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<QueueId> {
    // Every name with the prefix sorts at or after it; `after` may sort before
    // the prefix (a page token from a listing with another prefix).
    let from = match after {
        Some(a) if a > prefix => a,
        _ => prefix,
    };
    let start = QueueName::new(account, from);
    by_name
        .range(start..)
        .take_while(|(name, _)| name.account == account && name.name.starts_with(prefix))
        .filter(|(name, _)| after.is_none_or(|a| name.name.as_str() > a))
        .take(limit)
        .map(|(_, id)| *id)
        .collect()
}

/// A message to enqueue. The payload is opaque to the engine: the service
/// encodes body and attributes into it.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The MessageId, chosen by the service.
    pub message_id: u128,
    /// Encoded body and attributes.
    pub payload: Bytes,
    /// Delivery delay.
    pub delay_secs: u32,
    /// FIFO message group (also the tenant of fair queues).
    pub group_id: Option<String>,
    /// FIFO deduplication id (explicit or content-based).
    pub dedup_id: Option<String>,
}

/// The result of enqueueing one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    /// The MessageId (the original one for a deduplicated send).
    pub message_id: u128,
    /// Sequence number within the queue, increasing.
    pub sequence_number: u64,
    /// True when deduplicated: nothing was enqueued.
    pub duplicate: bool,
}

/// Receive parameters.
#[derive(Debug, Clone)]
pub struct ReceiveParams {
    /// 1 to 10.
    pub max: usize,
    /// Visibility timeout for these messages.
    pub visibility_timeout_secs: u32,
    /// Refuse (over_limit) when this many messages are already in flight.
    pub inflight_limit: usize,
    /// FIFO: ReceiveRequestAttemptId.
    pub attempt_id: Option<String>,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// MessageId.
    pub message_id: u128,
    /// Encoded body and attributes.
    pub payload: Bytes,
    /// Enqueue time (kept across dead-letter moves).
    pub sent_ms: u64,
    /// Times received, this receive included.
    pub receive_count: u32,
    /// First receive time, 0 when never received.
    pub first_receive_ms: u64,
    /// Sequence number within its queue.
    pub sequence_number: u64,
    /// FIFO group.
    pub group_id: Option<String>,
    /// FIFO deduplication id.
    pub dedup_id: Option<String>,
    /// The queue it was dead-lettered from.
    pub dead_letter_source: Option<QueueId>,
}

/// Identifies one receive of one message; the service turns it into an opaque
/// receipt handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The message's sequence number in the queue.
    pub sequence_number: u64,
    /// The receive count at the time of this receive.
    pub generation: u32,
}

/// A received message and its receipt.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The message.
    pub message: StoredMessage,
    /// Its receipt for this receive.
    pub receipt: Receipt,
}

/// The result of a receive.
#[derive(Debug, Clone, Default)]
pub struct ReceiveOutcome {
    /// Delivered messages.
    pub messages: Vec<ReceivedMessage>,
    /// The earliest time a delayed or in-flight message becomes visible.
    pub next_visible_ms: Option<u64>,
    /// The in-flight limit was reached.
    pub over_limit: bool,
}

/// The result of deleting by receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// The message was received again since; nothing was deleted (AWS: "the request succeeds, but the message might not be deleted").
    Stale,
    /// No such message (already deleted, expired or moved).
    Gone,
    /// FIFO: the receipt's visibility timeout has passed; nothing was deleted.
    Expired,
}

/// The result of a visibility change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityOutcome {
    /// Changed.
    Changed,
    /// The message is not in flight.
    NotInflight,
    /// The receipt was superseded by a later receive.
    Stale,
    /// No such message.
    Gone,
}

/// Approximate message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// ApproximateNumberOfMessages.
    pub visible: u64,
    /// ApproximateNumberOfMessagesNotVisible.
    pub inflight: u64,
    /// ApproximateNumberOfMessagesDelayed.
    pub delayed: u64,
}

/// Where `move_messages` sends messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveDestination {
    /// One queue.
    Queue(QueueId),
    /// Each message back to the queue it was dead-lettered from.
    OriginalSource,
}

/// A message move task (StartMessageMoveTask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveTask {
    /// Opaque handle.
    pub task_handle: String,
    /// Source queue ARN.
    pub source_arn: String,
    /// Destination queue ARN, when given.
    pub destination_arn: Option<String>,
    /// Rate limit.
    pub max_per_second: Option<u32>,
    /// RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED.
    pub status: String,
    /// Messages moved so far.
    pub moved: u64,
    /// Messages to move (approximate, at start).
    pub to_move: u64,
    /// Start time.
    pub started_ms: u64,
    /// Reason for FAILED.
    pub failure_reason: Option<String>,
}

/// Storage failures; services map them to AWS errors.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The queue does not exist (any more).
    #[error("queue not found")]
    QueueNotFound,
    /// The engine cannot accept writes now (disk full, I/O error, stopped log).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data failed its checksum.
    #[error("corruption in {file} at offset {offset}")]
    Corrupt {
        /// File name.
        file: String,
        /// Byte offset.
        offset: u64,
    },
    /// Any other engine failure.
    #[error("internal storage error: {0}")]
    Internal(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[(&str, &str)]) -> BTreeMap<QueueName, QueueId> {
        names.iter().enumerate().map(|(i, (a, n))| (QueueName::new(*a, *n), i as QueueId)).collect()
    }

    #[test]
    fn list_queue_ids_keeps_to_the_account_the_prefix_the_token_and_the_limit() {
        let ix = index(&[("1", "ab"), ("1", "alpha"), ("1", "alpine"), ("1", "beta"), ("2", "alpha")]);
        let names = |ids: Vec<QueueId>| -> Vec<String> {
            let by_id: BTreeMap<QueueId, &QueueName> = ix.iter().map(|(n, id)| (*id, n)).collect();
            ids.iter().map(|id| format!("{}/{}", by_id[id].account, by_id[id].name)).collect()
        };
        assert_eq!(names(list_queue_ids(&ix, "1", "", None, 10)), ["1/ab", "1/alpha", "1/alpine", "1/beta"]);
        assert_eq!(names(list_queue_ids(&ix, "1", "al", None, 10)), ["1/alpha", "1/alpine"]);
        assert_eq!(names(list_queue_ids(&ix, "1", "al", None, 1)), ["1/alpha"]);
        assert_eq!(names(list_queue_ids(&ix, "1", "al", Some("alpha"), 10)), ["1/alpine"]);
        assert_eq!(names(list_queue_ids(&ix, "1", "", Some("alpine"), 10)), ["1/beta"]);
        assert_eq!(names(list_queue_ids(&ix, "2", "", None, 10)), ["2/alpha"]);
        assert!(list_queue_ids(&ix, "1", "al", Some("alpine"), 10).is_empty());
        assert!(list_queue_ids(&ix, "3", "", None, 10).is_empty());
        assert!(list_queue_ids(&ix, "1", "", None, 0).is_empty());
    }

    #[test]
    fn given_a_token_that_sorts_before_the_prefix_list_queue_ids_should_start_at_the_prefix() {
        let ix = index(&[("1", "ab"), ("1", "alpha"), ("1", "alpine")]);
        assert_eq!(list_queue_ids(&ix, "1", "al", Some("a"), 10), [1, 2]);
    }

    #[test]
    fn queue_update_apply_changes_only_what_it_carries() {
        let mut info = QueueInfo {
            id: 7,
            name: QueueName::new("1", "q"),
            region: "us-east-1".into(),
            attributes: BTreeMap::from([("A".into(), "1".into())]),
            config: QueueConfig::default(),
            tags: BTreeMap::from([("t".into(), "v".into())]),
            created_ms: 1,
            last_modified_ms: 1,
            last_purge_ms: None,
        };
        QueueUpdate { last_purge_ms: Some(5), ..Default::default() }.apply(&mut info, 9);
        assert_eq!((info.last_purge_ms, info.last_modified_ms, info.tags.len()), (Some(5), 1, 1));
        QueueUpdate { tags: Some(BTreeMap::new()), ..Default::default() }.apply(&mut info, 10);
        assert_eq!((info.tags.len(), info.last_modified_ms, info.attributes.len()), (0, 1, 1));
        let config = QueueConfig { visibility_timeout_secs: 45, ..Default::default() };
        QueueUpdate { attributes: Some((BTreeMap::new(), config.clone())), ..Default::default() }.apply(&mut info, 11);
        assert_eq!((info.attributes.len(), info.config, info.last_modified_ms, info.last_purge_ms), (0, config, 11, Some(5)));
    }
}
