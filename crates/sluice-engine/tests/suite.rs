//! Goal: `LogStore` behaves exactly like the reference engine, and its state
//! survives a restart unchanged.
//!
//! Method: the shared behavioural suite (`store_suite!`) runs against a
//! `LogStore` on a real temporary directory (`StdIo`, fsync always). Then each
//! suite scenario runs again and the whole logical state (`LogStore::dump`) is
//! compared before and after a close/reopen, and after a checkpoint and
//! another reopen (recovery from the checkpoint instead of the log).

mod common;

use async_trait::async_trait;
use sluice_engine::{LogOptions, LogStore, StdIo};
use sluice_store::*;
use std::sync::Arc;
use tokio::sync::Notify;

/// A store that owns its temporary directory, so that the directory lives as
/// long as the store and is removed after.
struct TempLogStore {
    store: Arc<LogStore>,
    _dir: tempfile::TempDir,
}

fn options() -> LogOptions {
    LogOptions { segment_bytes: 64 << 10, ..LogOptions::new(Arc::new(StdIo)) }
}

async fn make() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), options()).unwrap();
    Arc::new(TempLogStore { store, _dir: dir })
}

store_suite!(make);

#[async_trait]
impl Store for TempLogStore {
    fn engine_name(&self) -> &'static str {
        self.store.engine_name()
    }
    async fn create_queue(&self, new: NewQueue, now_ms: u64) -> Result<CreateOutcome, StoreError> {
        self.store.create_queue(new, now_ms).await
    }
    async fn delete_queue(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError> {
        self.store.delete_queue(id, now_ms).await
    }
    async fn get_queue(&self, name: &QueueName) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        self.store.get_queue(name).await
    }
    async fn get_queue_by_id(&self, id: QueueId) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        self.store.get_queue_by_id(id).await
    }
    async fn list_queues(&self, account: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<Arc<QueueInfo>>, StoreError> {
        self.store.list_queues(account, prefix, after, limit).await
    }
    async fn update_queue(&self, id: QueueId, update: QueueUpdate, now_ms: u64) -> Result<Arc<QueueInfo>, StoreError> {
        self.store.update_queue(id, update, now_ms).await
    }
    async fn send(&self, id: QueueId, messages: Vec<NewMessage>, now_ms: u64) -> Result<Vec<SendOutcome>, StoreError> {
        self.store.send(id, messages, now_ms).await
    }
    async fn receive(&self, id: QueueId, params: ReceiveParams, now_ms: u64) -> Result<ReceiveOutcome, StoreError> {
        self.store.receive(id, params, now_ms).await
    }
    async fn delete_messages(&self, id: QueueId, receipts: &[Receipt], now_ms: u64) -> Result<Vec<DeleteOutcome>, StoreError> {
        self.store.delete_messages(id, receipts, now_ms).await
    }
    async fn change_visibility(&self, id: QueueId, changes: &[(Receipt, u32)], now_ms: u64) -> Result<Vec<VisibilityOutcome>, StoreError> {
        self.store.change_visibility(id, changes, now_ms).await
    }
    async fn purge(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError> {
        self.store.purge(id, now_ms).await
    }
    async fn counts(&self, id: QueueId, now_ms: u64) -> Result<QueueCounts, StoreError> {
        self.store.counts(id, now_ms).await
    }
    async fn move_messages(&self, source: QueueId, dest: MoveDestination, max: usize, now_ms: u64) -> Result<usize, StoreError> {
        self.store.move_messages(source, dest, max, now_ms).await
    }
    async fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.store.expire(now_ms).await
    }
    async fn put_move_task(&self, task: MoveTask) -> Result<(), StoreError> {
        self.store.put_move_task(task).await
    }
    async fn list_move_tasks(&self, source_arn: &str) -> Result<Vec<MoveTask>, StoreError> {
        self.store.list_move_tasks(source_arn).await
    }
    fn notifier(&self, id: QueueId) -> Option<Arc<Notify>> {
        self.store.notifier(id)
    }
}

/// Runs one suite scenario, then checks that close/reopen and
/// checkpoint/close/reopen both give back the identical state.
macro_rules! reopen_suite {
    (; $($name:ident),* $(,)?) => {
        mod reopen {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = LogStore::open(dir.path(), options()).unwrap();
                    sluice_store::suite::$name(store.clone() as Arc<dyn Store>).await;
                    let now = store.last_now_ms();
                    let before = store.dump(now);
                    store.close().await.unwrap();
                    drop(store);
                    let store = LogStore::open(dir.path(), options()).unwrap();
                    assert_eq!(store.dump(now), before, "state after reopen");
                    store.checkpoint().await.unwrap();
                    store.close().await.unwrap();
                    drop(store);
                    let store = LogStore::open(dir.path(), options()).unwrap();
                    assert!(store.recovery_report().checkpoint.is_some());
                    assert_eq!(store.dump(now), before, "state after checkpoint and reopen");
                }
            )*
        }
    };
}

sluice_store::for_each_suite_behaviour!(reopen_suite!());
