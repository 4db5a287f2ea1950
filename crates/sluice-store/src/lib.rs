//! The storage interface of sluice and its reference engine.
//!
//! `Store` is a *semantic* interface: it speaks of queues, messages, receipts,
//! visibility and dead-letter moves, not of keys and values, so that each engine
//! (the in-memory reference engine here, the durable log engine in `sluice-engine`,
//! PostgreSQL in `sluice-postgres`) can implement every operation as one atomic
//! step (one log record, one SQL transaction).
//!
//! Engines never see AWS codes, wire formats or validation: the service crates
//! validate input and map `StoreError` to AWS errors at their boundary.
//! All time is passed in (`now_ms`), so engines are deterministic and testable.

pub mod memory;
pub mod queue_core;
pub mod suite;
mod types;

pub use memory::MemoryStore;
pub use types::*;

use async_trait::async_trait;
use std::sync::Arc;

/// The storage interface every engine implements.
///
/// Every method that acknowledges a write returns only once the write is as
/// durable as the engine's durability policy promises.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and `/health` (`memory`, `log`, `postgres`).
    fn engine_name(&self) -> &'static str;

    /// Why the engine cannot accept writes right now (disk full, stopped
    /// log), or `None` when it can; reported by `/health`.
    fn write_problem(&self) -> Option<String> {
        None
    }

    /// The latest time (ms since the Unix epoch) the engine has persisted: no
    /// timestamp it holds is later. The binary starts its clock no earlier
    /// than this, so that a restart with the wall clock set back does not
    /// leave stored times in the future (RELIABILITY.md R15). Engines that
    /// keep nothing across restarts return 0.
    fn time_floor_ms(&self) -> u64 {
        0
    }

    /// Creates a queue, or reports the existing one (unchanged) with that name.
    async fn create_queue(&self, new: NewQueue, now_ms: u64) -> Result<CreateOutcome, StoreError>;
    /// Deletes a queue and all its messages; waiters on it are woken.
    async fn delete_queue(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError>;
    /// Looks a queue up by account and name.
    async fn get_queue(&self, name: &QueueName) -> Result<Option<Arc<QueueInfo>>, StoreError>;
    /// Looks a queue up by id.
    async fn get_queue_by_id(&self, id: QueueId) -> Result<Option<Arc<QueueInfo>>, StoreError>;
    /// Queues of `account` whose name starts with `prefix`, sorted by name,
    /// starting strictly after `after` when given, at most `limit`.
    async fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<QueueInfo>>, StoreError>;
    /// Replaces the attributes, configuration, tags or purge time of a queue.
    async fn update_queue(&self, id: QueueId, update: QueueUpdate, now_ms: u64) -> Result<Arc<QueueInfo>, StoreError>;

    /// Enqueues messages atomically (all or none) and wakes waiting receivers.
    async fn send(&self, id: QueueId, messages: Vec<NewMessage>, now_ms: u64) -> Result<Vec<SendOutcome>, StoreError>;
    /// Receives up to `params.max` visible messages, making them invisible for the
    /// visibility timeout; messages past `maxReceiveCount` move to the dead-letter
    /// queue and expired ones are dropped on the way.
    async fn receive(&self, id: QueueId, params: ReceiveParams, now_ms: u64) -> Result<ReceiveOutcome, StoreError>;
    /// Deletes messages by receipt; one outcome per receipt, in order.
    async fn delete_messages(&self, id: QueueId, receipts: &[Receipt], now_ms: u64) -> Result<Vec<DeleteOutcome>, StoreError>;
    /// Changes the visibility timeout of received messages; one outcome per entry.
    async fn change_visibility(
        &self,
        id: QueueId,
        changes: &[(Receipt, u32)],
        now_ms: u64,
    ) -> Result<Vec<VisibilityOutcome>, StoreError>;
    /// Deletes every message of the queue.
    async fn purge(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError>;
    /// Approximate counts of visible, in-flight and delayed messages.
    async fn counts(&self, id: QueueId, now_ms: u64) -> Result<QueueCounts, StoreError>;
    /// Moves up to `max` visible messages from `source` to `dest` (or back to the
    /// queue each came from, for dead-letter redrive); returns how many moved.
    async fn move_messages(&self, source: QueueId, dest: MoveDestination, max: usize, now_ms: u64) -> Result<usize, StoreError>;
    /// Drops messages past their retention period; returns how many.
    async fn expire(&self, now_ms: u64) -> Result<usize, StoreError>;

    /// Saves (inserts or replaces by `task_handle`) a message move task.
    async fn put_move_task(&self, task: MoveTask) -> Result<(), StoreError>;
    /// Move tasks whose source is `source_arn`, newest first.
    async fn list_move_tasks(&self, source_arn: &str) -> Result<Vec<MoveTask>, StoreError>;

    /// The notifier woken when messages may have become available on a queue
    /// (a send, a visibility change to 0, a move in, a queue deletion).
    fn notifier(&self, id: QueueId) -> Option<Arc<tokio::sync::Notify>>;
}
