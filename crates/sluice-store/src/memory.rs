//! The in-memory engine: the reference implementation of `Store`.
//!
//! The catalog (queue metadata) sits behind one `RwLock`; each queue's messages
//! sit behind their own `Mutex` so that queues never contend with each other.
//! Locks are never held across an `.await`.

use crate::queue_core::{dedup_key, CoreMessage, DedupEntry, QueueCore, ReceiveRules, DEDUP_WINDOW_MS};
use crate::types::*;
use crate::Store;
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// One queue: its metadata, messages and waiters.
struct Slot {
    info: RwLock<Arc<QueueInfo>>,
    core: Mutex<QueueCore>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct Catalog {
    by_name: BTreeMap<QueueName, QueueId>,
    slots: HashMap<QueueId, Arc<Slot>>,
    deleted: HashMap<QueueName, u64>,
    move_tasks: Vec<MoveTask>,
}

/// The in-memory engine. Nothing survives a restart.
#[derive(Default)]
pub struct MemoryStore {
    catalog: RwLock<Catalog>,
    next_id: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { catalog: RwLock::new(Catalog::default()), next_id: AtomicU64::new(1) }
    }

    fn slot(&self, id: QueueId) -> Result<Arc<Slot>, StoreError> {
        self.catalog.read().slots.get(&id).cloned().ok_or(StoreError::QueueNotFound)
    }

    fn slot_by_name(&self, name: &QueueName) -> Option<Arc<Slot>> {
        let c = self.catalog.read();
        c.by_name.get(name).and_then(|id| c.slots.get(id)).cloned()
    }

    /// Puts messages into a queue (dead-letter or move), renumbered there.
    fn move_into(&self, dest: &Slot, messages: Vec<CoreMessage>, source: Option<QueueId>) {
        if messages.is_empty() {
            return;
        }
        let n = messages.len();
        {
            let mut core = dest.core.lock();
            for m in messages {
                let mut m = core.renumber(m);
                if source.is_some() {
                    // Dead-lettered: the receive count carries over, as on AWS.
                    m.dead_letter_source = source.and_then(std::num::NonZeroU64::new);
                } else {
                    // Moved by a move task: a fresh start in the destination.
                    m.dead_letter_source = None;
                    m.receive_count = 0;
                    m.first_receive_ms = 0;
                }
                core.insert(m);
            }
        }
        for _ in 0..n.min(10) {
            dest.notify.notify_one();
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn engine_name(&self) -> &'static str {
        "memory"
    }

    async fn create_queue(&self, new: NewQueue, now_ms: u64) -> Result<CreateOutcome, StoreError> {
        let mut c = self.catalog.write();
        if let Some(id) = c.by_name.get(&new.name) {
            let info = c.slots[id].info.read().clone();
            return Ok(CreateOutcome::Exists(info));
        }
        if let Some(&at) = c.deleted.get(&new.name) {
            if at > new.refuse_if_deleted_after_ms {
                return Ok(CreateOutcome::DeletedRecently);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(QueueInfo {
            id,
            name: new.name.clone(),
            region: new.region,
            attributes: new.attributes,
            config: new.config,
            tags: new.tags,
            created_ms: now_ms,
            last_modified_ms: now_ms,
            last_purge_ms: None,
        });
        let slot = Arc::new(Slot {
            info: RwLock::new(info.clone()),
            core: Mutex::new(QueueCore::new()),
            notify: Arc::new(Notify::new()),
        });
        c.deleted.remove(&new.name);
        c.by_name.insert(new.name, id);
        c.slots.insert(id, slot);
        Ok(CreateOutcome::Created(info))
    }

    async fn delete_queue(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError> {
        let slot = {
            let mut c = self.catalog.write();
            let slot = c.slots.remove(&id).ok_or(StoreError::QueueNotFound)?;
            let name = slot.info.read().name.clone();
            c.by_name.remove(&name);
            c.deleted.insert(name, now_ms);
            slot
        };
        slot.notify.notify_waiters();
        Ok(())
    }

    async fn get_queue(&self, name: &QueueName) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        Ok(self.slot_by_name(name).map(|s| s.info.read().clone()))
    }

    async fn get_queue_by_id(&self, id: QueueId) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        Ok(self.catalog.read().slots.get(&id).map(|s| s.info.read().clone()))
    }

    async fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<QueueInfo>>, StoreError> {
        let c = self.catalog.read();
        let ids = list_queue_ids(&c.by_name, account, prefix, after, limit);
        Ok(ids.iter().map(|id| c.slots[id].info.read().clone()).collect())
    }

    async fn update_queue(&self, id: QueueId, update: QueueUpdate, now_ms: u64) -> Result<Arc<QueueInfo>, StoreError> {
        let slot = self.slot(id)?;
        let mut guard = slot.info.write();
        let mut info = (**guard).clone();
        update.apply(&mut info, now_ms);
        let info = Arc::new(info);
        *guard = info.clone();
        Ok(info)
    }

    async fn send(&self, id: QueueId, messages: Vec<NewMessage>, now_ms: u64) -> Result<Vec<SendOutcome>, StoreError> {
        let slot = self.slot(id)?;
        let n = messages.len();
        let config = slot.info.read().config.clone();
        let out = {
            let mut core = slot.core.lock();
            messages
                .iter()
                .map(|m| {
                    let key = match (&m.dedup_id, config.fifo) {
                        (Some(d), true) => Some(dedup_key(d, m.group_id.as_deref(), config.dedup_scope_group)),
                        _ => None,
                    };
                    if let Some(e) = key.as_deref().and_then(|k| core.dedup_lookup(k, now_ms)) {
                        return SendOutcome { message_id: e.message_id, sequence_number: e.seq, duplicate: true };
                    }
                    let cm = core.prepare(m, m.delay_secs, now_ms);
                    let seq = cm.seq;
                    core.insert(cm);
                    if let Some(k) = key {
                        let entry = DedupEntry { message_id: m.message_id, seq, expires_ms: now_ms + DEDUP_WINDOW_MS };
                        core.dedup_register(k, entry);
                    }
                    SendOutcome { message_id: m.message_id, sequence_number: seq, duplicate: false }
                })
                .collect()
        };
        for _ in 0..n.min(10) {
            slot.notify.notify_one();
        }
        Ok(out)
    }

    async fn receive(&self, id: QueueId, params: ReceiveParams, now_ms: u64) -> Result<ReceiveOutcome, StoreError> {
        let slot = self.slot(id)?;
        let config = slot.info.read().config.clone();
        let dlq = config.redrive.as_ref().and_then(|r| self.slot_by_name(&r.dead_letter_target).map(|s| (s, r.max_receive_count)));
        let max_receive_count = dlq.as_ref().map(|(_, n)| *n);
        let (out, dead) = {
            let mut core = slot.core.lock();
            let rules = ReceiveRules {
                max: params.max,
                visibility_timeout_secs: params.visibility_timeout_secs,
                max_receive_count,
                retention_secs: config.retention_secs,
                inflight_limit: params.inflight_limit,
                fifo: config.fifo,
                attempt_id: params.attempt_id.as_deref(),
            };
            let r = core.receive(&rules, now_ms);
            let messages = r
                .delivered
                .iter()
                .filter_map(|&seq| core.get(seq))
                .map(|m| ReceivedMessage {
                    message: m.to_stored(),
                    receipt: Receipt { sequence_number: m.seq, generation: m.receive_count },
                })
                .collect();
            let out = ReceiveOutcome { messages, next_visible_ms: core.next_visible_ms(), over_limit: r.over_limit };
            (out, r.dead_lettered)
        };
        if let Some((dlq_slot, _)) = dlq {
            self.move_into(&dlq_slot, dead, Some(id));
        }
        Ok(out)
    }

    async fn delete_messages(&self, id: QueueId, receipts: &[Receipt], now_ms: u64) -> Result<Vec<DeleteOutcome>, StoreError> {
        let slot = self.slot(id)?;
        let fifo = slot.info.read().config.fifo;
        let mut core = slot.core.lock();
        Ok(receipts.iter().map(|r| core.delete_checked(*r, fifo, now_ms)).collect())
    }

    async fn change_visibility(
        &self,
        id: QueueId,
        changes: &[(Receipt, u32)],
        now_ms: u64,
    ) -> Result<Vec<VisibilityOutcome>, StoreError> {
        let slot = self.slot(id)?;
        let out: Vec<VisibilityOutcome> = {
            let mut core = slot.core.lock();
            changes.iter().map(|(r, t)| core.change_visibility(*r, *t, now_ms)).collect()
        };
        if changes.iter().zip(&out).any(|((_, t), o)| *t == 0 && *o == VisibilityOutcome::Changed) {
            slot.notify.notify_one();
        }
        Ok(out)
    }

    async fn purge(&self, id: QueueId, _now_ms: u64) -> Result<(), StoreError> {
        let slot = self.slot(id)?;
        slot.core.lock().purge();
        Ok(())
    }

    async fn counts(&self, id: QueueId, now_ms: u64) -> Result<QueueCounts, StoreError> {
        let slot = self.slot(id)?;
        let c = slot.core.lock().counts(now_ms);
        Ok(c)
    }

    async fn move_messages(&self, source: QueueId, dest: MoveDestination, max: usize, now_ms: u64) -> Result<usize, StoreError> {
        let src = self.slot(source)?;
        let fifo = src.info.read().config.fifo;
        match dest {
            MoveDestination::Queue(d) => {
                let dst = self.slot(d)?;
                let taken = src.core.lock().take_visible(max, fifo, now_ms);
                let n = taken.len();
                self.move_into(&dst, taken, None);
                Ok(n)
            }
            MoveDestination::OriginalSource => {
                // Only messages whose source queue still exists are moved; the
                // others stay where they are.
                let taken = src.core.lock().take_visible(max, fifo, now_ms);
                let n = taken.len();
                let mut groups: BTreeMap<Option<QueueId>, Vec<CoreMessage>> = BTreeMap::new();
                for m in taken {
                    groups.entry(m.dead_letter_source.map(std::num::NonZeroU64::get)).or_default().push(m);
                }
                let mut moved = 0;
                for (origin, msgs) in groups {
                    match origin.and_then(|o| self.slot(o).ok()) {
                        Some(dst) => {
                            moved += msgs.len();
                            self.move_into(&dst, msgs, None);
                        }
                        None => {
                            let mut core = src.core.lock();
                            for m in msgs {
                                let src_id = m.dead_letter_source;
                                let mut m = core.renumber(m);
                                m.dead_letter_source = src_id;
                                core.insert(m);
                            }
                        }
                    }
                }
                debug_assert!(moved <= n);
                Ok(moved)
            }
        }
    }

    async fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        let slots: Vec<Arc<Slot>> = self.catalog.read().slots.values().cloned().collect();
        let mut n = 0;
        for slot in slots {
            let retention = slot.info.read().config.retention_secs;
            let mut core = slot.core.lock();
            core.forget_expired_dedup(now_ms);
            for seq in core.expired(retention, now_ms) {
                core.remove(seq);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn put_move_task(&self, task: MoveTask) -> Result<(), StoreError> {
        let mut c = self.catalog.write();
        match c.move_tasks.iter_mut().find(|t| t.task_handle == task.task_handle) {
            Some(t) => *t = task,
            None => c.move_tasks.push(task),
        }
        Ok(())
    }

    async fn list_move_tasks(&self, source_arn: &str) -> Result<Vec<MoveTask>, StoreError> {
        let c = self.catalog.read();
        let mut v: Vec<MoveTask> = c.move_tasks.iter().filter(|t| t.source_arn == source_arn).cloned().collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.started_ms));
        Ok(v)
    }

    fn notifier(&self, id: QueueId) -> Option<Arc<Notify>> {
        self.catalog.read().slots.get(&id).map(|s| s.notify.clone())
    }
}
