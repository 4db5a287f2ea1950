//! Every SQS limit sluice enforces, named once (REFERENCE.md, SQS section).

/// Largest message (and batch payload), and the default of MaximumMessageSize.
pub const MESSAGE_BYTES_MAX: usize = 1_048_576;
/// Smallest settable MaximumMessageSize.
pub const MESSAGE_BYTES_MIN_SETTING: u64 = 1_024;
/// Entries in one batch request.
pub const BATCH_ENTRIES_MAX: usize = 10;
/// Length of a batch entry id.
pub const BATCH_ENTRY_ID_CHARS_MAX: usize = 80;
/// Messages per ReceiveMessage.
pub const RECEIVE_MESSAGES_MAX: i64 = 10;
/// Long-poll wait.
pub const WAIT_TIME_SECS_MAX: i64 = 20;
/// Default of `--max-waiters`: long-poll receives parked at once on one
/// server before further ones are refused with `RequestThrottled` (R18 asks
/// for 10,000; each waiter holds a connection, so one file descriptor).
pub const WAITERS_MAX_DEFAULT: usize = 20_000;
/// Visibility timeout (12 hours).
pub const VISIBILITY_TIMEOUT_SECS_MAX: i64 = 43_200;
/// Delivery delay (15 minutes).
pub const DELAY_SECS_MAX: i64 = 900;
/// Retention bounds (1 minute to 14 days) and default (4 days).
pub const RETENTION_SECS_MIN: i64 = 60;
/// Longest retention.
pub const RETENTION_SECS_MAX: i64 = 1_209_600;
/// Default retention.
pub const RETENTION_SECS_DEFAULT: u32 = 345_600;
/// Default visibility timeout.
pub const VISIBILITY_TIMEOUT_SECS_DEFAULT: u32 = 30;
/// In-flight messages of a standard queue before OverLimit.
pub const INFLIGHT_MESSAGES_MAX: usize = 120_000;
/// Message attributes per message.
pub const MESSAGE_ATTRIBUTES_MAX: usize = 10;
/// Length of a message attribute name or data type.
pub const ATTRIBUTE_NAME_CHARS_MAX: usize = 256;
/// Length of a queue name (`.fifo` included).
pub const QUEUE_NAME_CHARS_MAX: usize = 80;
/// Tags per queue.
pub const TAGS_MAX: usize = 50;
/// ListQueues / ListDeadLetterSourceQueues page size.
pub const LIST_RESULTS_MAX: i64 = 1_000;
/// maxReceiveCount bounds.
pub const MAX_RECEIVE_COUNT_MAX: i64 = 1_000;
/// Seconds between two PurgeQueue calls and between deleting and re-creating a name.
pub const PURGE_COOLDOWN_MS: u64 = 60_000;
/// Seconds after deleting a queue before its name can be reused.
pub const RECREATE_COOLDOWN_MS: u64 = 60_000;
/// Move task rate bound.
pub const MOVE_TASK_RATE_MAX: i64 = 500;
/// Source ARNs in a RedriveAllowPolicy.
pub const REDRIVE_ALLOW_SOURCES_MAX: usize = 10;
/// Message group id / deduplication id length.
pub const GROUP_ID_CHARS_MAX: usize = 128;
