//! `LogStore`: the `Store` implementation over the log.
//!
//! Every mutating operation follows one pattern:
//! 1. look the queue(s) up (catalog read lock, released);
//! 2. take the epoch lock in read mode, refuse if the log cannot take writes,
//!    lock the queue(s) (in id order when there are two or more), compute and
//!    apply the effect with `QueueCore`, encode it as one record and append it
//!    to the pipe — all before releasing the locks, so log order is apply order;
//! 3. release the locks and await the ticket: the answer is sent only once the
//!    record (and, the log being sequential, everything before it) is durable.
//!
//! An operation that changes nothing (a stale receipt, an empty receive, an
//! existing queue) awaits a barrier instead: its answer may depend on an
//! effect that is applied but not durable yet (a delete another client is
//! waiting on), and must not be acknowledged before that effect is.
//!
//! Lock order: epoch → catalog → queue info → queue cores (ascending id).
//! Reads (`get_queue`, `list_queues`, `counts`, `list_move_tasks`) take no
//! epoch lock and may see effects not yet durable; they never acknowledge a
//! write.

use crate::bodies::{checkpoint_file, segment_file, Bodies, CHECKPOINT_FILE_BIT};
use crate::checkpoint::{finish, CheckpointReport, IndexWriter, RangeEnv};
use crate::limits::{
    BATCH_ENTRIES_MAX, CHECKPOINTS_KEPT, COMPACT_BELOW_LIVE_DIVISOR, ESTIMATED_MESSAGE_BYTES, IDLE_CHECKPOINTS_MAX, IDLE_RECLAIM_SLACK_BYTES, MOVE_BATCH_MAX, RECEIVE_MAX,
    RECORD_BYTES_MAX, SEGMENT_BYTES_MIN, SEND_BATCH_MAX,
};
use crate::pipe::{CheckpointWork, Health, Pipe, Writer};
use crate::record::{message_bytes, Record, Transfer, TransferMode};
use crate::recovery::{checkpoint_name, list, prune, recover, RecoveryReport, CHECKPOINT_DIR, LOG_DIR};
use crate::state::{transform, usage_bytes, Catalog, Slot, SlotCore, StateDump};
use crate::{LogOptions, LogStats};
use async_trait::async_trait;
use parking_lot::{Mutex, MutexGuard, RwLock};
use sluice_store::queue_core::{dedup_key, BodyRef, CoreMessage, DedupEntry, Payload, ReceiveRules, DEDUP_WINDOW_MS};
use sluice_store::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

pub(crate) struct Inner {
    io: Arc<dyn crate::Io>,
    bodies: Bodies,
    dir: PathBuf,
    catalog: RwLock<Catalog>,
    epoch: RwLock<()>,
    pipe: Arc<Pipe>,
    ckpt_lock: Mutex<()>,
    /// The files each kept checkpoint's handles point into (known for the
    /// ones written or loaded by this process).
    ckpt_files: Mutex<BTreeMap<u64, HashSet<u32>>>,
    /// Live body bytes per file at the end of the last checkpoint, with
    /// that checkpoint's start segment: the next one compacts the files that
    /// were complete and under half live then.
    file_usage: Mutex<(u64, HashMap<u32, u64>)>,
    checkpoints: AtomicU64,
    idle_periods: AtomicU64,
    idle_checkpoints: AtomicU64,
    quarantined: AtomicU64,
    /// Live body bytes and messages counted by the last checkpoint, for the
    /// quiet-time estimate of live data.
    live_at_checkpoint: Mutex<(u64, u64)>,
    last_now_ms: AtomicU64,
    /// The latest time recovery found in the data directory.
    recovered_time_floor_ms: u64,
    /// Per queue, the lowest sequence number the last checkpoint found: no
    /// message lies below it, so the next one probes numbers from there.
    seq_floors: Mutex<HashMap<QueueId, u64>>,
    range_hook: Option<Arc<dyn Fn() + Send + Sync>>,
    range_seqs: usize,
}

/// The durable engine. Open with `LogStore::open`; see the crate docs for the
/// format and the durability promise.
pub struct LogStore {
    inner: Arc<Inner>,
    report: RecoveryReport,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn encode(rec: &Record) -> Vec<u8> {
    let mut v = Vec::new();
    rec.encode(&mut v);
    v
}

fn too_large(what: &str) -> StoreError {
    StoreError::Internal(format!("{what} too large for one log record"))
}

impl LogStore {
    /// Opens (creating if needed) the data directory `dir`: recovers the state
    /// from the newest valid checkpoint and the log after it, then starts the
    /// writer (and checkpointer) threads.
    ///
    /// Blocking: recovery reads the whole live state. It needs no runtime; in
    /// async code call it from `spawn_blocking` if startup latency matters.
    /// Fails with `Corrupt { file, offset }` on damage that is not a torn tail
    /// (see `salvage`), `Unavailable` on I/O errors.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<Arc<LogStore>, StoreError> {
        if opts.segment_bytes < SEGMENT_BYTES_MIN {
            return Err(StoreError::Internal(format!("segment_bytes must be at least {SEGMENT_BYTES_MIN}")));
        }
        let io = opts.io.clone();
        // No pruning here: the files the older kept checkpoint needs are not
        // known until the next checkpoint replaces it; that one prunes.
        let rec = recover(io.as_ref(), dir)?;
        tracing::info!(
            target: "sluice_engine",
            "opened {}: {} messages, {} records replayed from {} segments in {:?} (checkpoint {:?})",
            dir.display(),
            rec.report.messages,
            rec.report.records_replayed,
            rec.report.segments_replayed,
            rec.report.elapsed,
            rec.report.checkpoint
        );
        let recovered_time_floor_ms = rec.catalog.time_floor_ms;
        let pipe = Arc::new(Pipe::new(opts.fsync, opts.segment_bytes, opts.checkpoint_every_bytes, opts.enospc_retry, rec.next_segment));
        pipe.set_checkpoint_every_records(opts.checkpoint_every_records);
        pipe.carry_over(rec.report.bytes_replayed, rec.report.records_replayed);
        if let Some((bytes, messages)) = rec.report.checkpoint_index {
            pipe.set_last_index(bytes, messages);
        }
        let inner = Arc::new(Inner {
            bodies: Bodies::new(io.clone(), dir.to_path_buf(), pipe.clone(), opts.body_cache_bytes),
            io: io.clone(),
            dir: dir.to_path_buf(),
            catalog: RwLock::new(rec.catalog),
            epoch: RwLock::new(()),
            pipe: pipe.clone(),
            ckpt_lock: Mutex::new(()),
            ckpt_files: Mutex::new(rec.checkpoint_files.into_iter().collect()),
            file_usage: Mutex::new((0, HashMap::new())),
            checkpoints: AtomicU64::new(0),
            idle_periods: AtomicU64::new(0),
            idle_checkpoints: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            live_at_checkpoint: Mutex::new((0, 0)),
            last_now_ms: AtomicU64::new(0),
            recovered_time_floor_ms,
            seq_floors: Mutex::new(HashMap::new()),
            range_hook: opts.checkpoint_range_hook.clone(),
            range_seqs: opts.checkpoint_range_seqs.max(1),
        });
        let mut threads = Vec::new();
        let writer = Writer::new(pipe.clone(), io.clone(), &dir.join(LOG_DIR));
        threads.push(
            std::thread::Builder::new()
                .name("sluice-log-writer".into())
                .spawn(move || writer.run())
                .map_err(|e| StoreError::Internal(format!("spawn writer: {e}")))?,
        );
        // Only `Always` fsyncs per write; under the other policies a prepared
        // segment would double the bytes written and save nothing.
        if opts.preallocate_segments && opts.fsync == crate::FsyncPolicy::Always {
            pipe.enable_preallocation();
            let (pipe2, io2, log_dir, bytes) = (pipe.clone(), io.clone(), dir.join(LOG_DIR), opts.segment_bytes);
            let spawned = std::thread::Builder::new()
                .name("sluice-log-prepare".into())
                .spawn(move || crate::prealloc::run(pipe2, io2, log_dir, bytes));
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    drop(pipe.close());
                    return Err(StoreError::Internal(format!("spawn segment preparer: {e}")));
                }
            }
        }
        if opts.checkpoint_every_bytes.is_some() {
            let inner2 = inner.clone();
            let (idle_after, quiet_bytes) = (opts.idle_checkpoint_after, opts.quiet_log_bytes);
            let spawned = std::thread::Builder::new().name("sluice-checkpoint".into()).spawn(move || loop {
                let live = || inner2.catalog.read().message_count();
                match inner2.pipe.wait_checkpoint_work(idle_after, quiet_bytes, &live) {
                    CheckpointWork::Due { request } => {
                        if let Err(e) = inner2.checkpoint() {
                            tracing::warn!(target: "sluice_engine", "automatic checkpoint failed: {e}");
                        }
                        inner2.pipe.checkpoint_attempted(request);
                    }
                    CheckpointWork::Idle { appended } => inner2.reclaim_when_idle(appended, quiet_bytes),
                    CheckpointWork::Close => break,
                }
            });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    drop(pipe.close());
                    return Err(StoreError::Internal(format!("spawn checkpointer: {e}")));
                }
            }
        }
        Ok(Arc::new(LogStore { inner, report: rec.report, threads: Mutex::new(threads) }))
    }

    /// What recovery found and did when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Whether the log accepts writes.
    pub fn health(&self) -> Health {
        self.inner.pipe.health()
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        let c = &self.inner.pipe.counters;
        LogStats {
            records: c.records.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            rounds: c.rounds.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            segments_created: c.segments_created.load(Ordering::Relaxed),
            segments_preallocated: c.segments_preallocated.load(Ordering::Relaxed),
            segments_prepared: c.segments_prepared.load(Ordering::Relaxed),
            checkpoints: self.inner.checkpoints.load(Ordering::Relaxed),
            idle_periods: self.inner.idle_periods.load(Ordering::Relaxed),
            idle_checkpoints: self.inner.idle_checkpoints.load(Ordering::Relaxed),
            quarantined: self.inner.quarantined.load(Ordering::Relaxed),
            bodies_cached: self.inner.bodies.cached.load(Ordering::Relaxed),
            bodies_not_cached: self.inner.bodies.not_cached.load(Ordering::Relaxed),
        }
    }

    /// Writes a checkpoint now and prunes old files; see `checkpoint.rs`.
    pub async fn checkpoint(&self) -> Result<CheckpointReport, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.checkpoint())
            .await
            .map_err(|e| StoreError::Internal(format!("checkpoint task: {e}")))?
    }

    /// `checkpoint` for callers outside a runtime.
    pub fn checkpoint_blocking(&self) -> Result<CheckpointReport, StoreError> {
        self.inner.checkpoint()
    }

    /// After running out of space: tries to write the held records now and
    /// returns whether the log accepts writes again (the writer also retries
    /// by itself every `LogOptions::enospc_retry`). Ok at once when healthy.
    pub async fn resume(&self) -> Result<(), StoreError> {
        self.inner.pipe.request_resume().wait().await
    }

    /// The largest `now_ms` any operation passed since open (tests dump the
    /// state at this time: promotions done by reads are not logged).
    pub fn last_now_ms(&self) -> u64 {
        self.inner.last_now_ms.load(Ordering::Relaxed)
    }

    /// The whole logical state, with due messages promoted at `now_ms`.
    pub fn dump(&self, now_ms: u64) -> StateDump {
        self.inner.catalog.read().dump(now_ms, &self.inner.bodies)
    }

    /// Flushes and fsyncs everything appended, stops the threads. Later
    /// writes fail with `Unavailable`. Returns an error if the log had failed.
    pub async fn close(&self) -> Result<(), StoreError> {
        let rx = self.inner.pipe.close();
        let _ = rx.await;
        let handles: Vec<_> = std::mem::take(&mut *self.threads.lock());
        if !handles.is_empty() {
            let _ = tokio::task::spawn_blocking(move || {
                for h in handles {
                    let _ = h.join();
                }
            })
            .await;
        }
        self.closed_result()
    }

    /// `close` for callers outside a runtime (and `Drop`).
    pub fn close_blocking(&self) -> Result<(), StoreError> {
        drop(self.inner.pipe.close());
        let handles: Vec<_> = std::mem::take(&mut *self.threads.lock());
        for h in handles {
            let _ = h.join();
        }
        self.closed_result()
    }

    /// Takes messages whose bodies are damaged on disk out of the queue
    /// (deleted by their receipts, so logged like any delete): they can
    /// never be served intact, and each receive that picked one up would
    /// fail or hold back the messages received with it. Each is logged with
    /// its id, queue, file and offset, and counted in `LogStats::quarantined`.
    /// If the delete fails (the log stopped), the message reappears after
    /// its visibility timeout and is quarantined on its next receive.
    async fn quarantine(&self, id: QueueId, damaged: Vec<(Receipt, u128, String)>, now_ms: u64) {
        let receipts: Vec<Receipt> = damaged.iter().map(|(r, _, _)| *r).collect();
        let queue = self.inner.slot(id).map(|s| s.info.read().name.name.clone()).unwrap_or_default();
        match self.delete_messages(id, &receipts, now_ms).await {
            Ok(outcomes) => {
                for ((_, message_id, why), outcome) in damaged.iter().zip(outcomes) {
                    if outcome == DeleteOutcome::Deleted {
                        self.inner.quarantined.fetch_add(1, Ordering::Relaxed);
                        let message_id = uuid::Uuid::from_u128(*message_id);
                        tracing::error!(target: "sluice_engine", "message {message_id} of queue {queue} quarantined (removed from the queue): {why}");
                    }
                }
            }
            Err(e) => tracing::warn!(target: "sluice_engine", "quarantining {} damaged message(s) of queue {queue} failed: {e}", damaged.len()),
        }
    }

    fn closed_result(&self) -> Result<(), StoreError> {
        match self.inner.pipe.health() {
            Health::Failed(f) => Err(StoreError::Unavailable(format!("log stopped after an I/O error: {f}"))),
            _ => Ok(()),
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        let _ = self.close_blocking();
    }
}

impl Inner {
    fn saw(&self, now_ms: u64) {
        self.last_now_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    fn slot(&self, id: QueueId) -> Result<Arc<Slot>, StoreError> {
        self.catalog.read().slots.get(&id).cloned().ok_or(StoreError::QueueNotFound)
    }

    /// The prologue of a logged operation on one queue: no checkpoint
    /// freeze (the epoch, read), a writable log, the queue's core, and the
    /// queue not deleted meanwhile.
    fn lock_queue<'a>(&'a self, slot: &'a Slot) -> Result<QueueLock<'a>, StoreError> {
        let epoch = self.epoch.read();
        self.pipe.check_writable()?;
        let core = slot.core.lock();
        if core.deleted {
            return Err(StoreError::QueueNotFound);
        }
        Ok(QueueLock { core, _epoch: epoch })
    }

    fn slot_by_name(&self, name: &QueueName) -> Option<Arc<Slot>> {
        let c = self.catalog.read();
        c.by_name.get(name).and_then(|id| c.slots.get(id)).cloned()
    }

    /// The log has been quiet since `appended` records: checkpoint while that
    /// gives disk space back (R20: after load stops, disk returns to within
    /// 2× live data). Pruning keeps the files of the two newest checkpoints,
    /// so one checkpoint is not enough: the first covers the log, the second
    /// lets the older generation go, the third the files the first
    /// compacted away. A checkpoint is named by the first segment it does
    /// not cover, so one after an idle checkpoint would have the same name
    /// and replace nothing: a `Clock` record in the empty segment starts a
    /// new one. Stops when the log gets busy again (the next quiet period
    /// looks again) or when disk is within twice the live data.
    ///
    /// A quiet log is not always an idle one: writes slower than
    /// `quiet_bytes` per period may go on while these checkpoints run. A
    /// compaction moves the bodies out of the files the checkpoint before
    /// it found mostly dead, so counts taken while messages were still
    /// being deleted leave files behind. When others appended during the
    /// period and its checkpoints ran out with disk still over the bound,
    /// the period is not marked handled: the next quiet period looks again,
    /// even if nothing is appended meanwhile.
    fn reclaim_when_idle(&self, mut appended: u64, quiet_bytes: u64) {
        let started = self.pipe.counters.bytes.load(Ordering::Relaxed);
        // `expect`: the records appended when this thread last looked, its
        // own included; any others make `foreign`.
        let (mut expect, mut foreign) = (appended, false);
        // A preallocated segment's unused zeros go: the writer rolls to an
        // empty segment (a `Clock` record starts it) and the seal of this
        // one truncates them; a prepared file is removed.
        if self.pipe.trim_preallocation() {
            self.pipe.roll();
            if let Err(e) = self.append_clock() {
                tracing::warn!(target: "sluice_engine", "idle: rolling off a preallocated segment: {e}");
                return;
            }
            expect += 1;
            appended = self.pipe.appended();
        }
        let mut ran_out = true;
        for _ in 0..IDLE_CHECKPOINTS_MAX {
            foreign |= self.pipe.appended() != expect;
            if self.pipe.counters.bytes.load(Ordering::Relaxed).saturating_sub(started) >= quiet_bytes {
                // Busy again: the size and record triggers take over; the
                // next quiet period looks again.
                return;
            }
            match self.disk_and_live_bytes() {
                Ok((disk, live)) if disk > live.saturating_mul(2).saturating_add(IDLE_RECLAIM_SLACK_BYTES) => {
                    tracing::debug!(target: "sluice_engine", "idle: {disk} bytes on disk for {live} live; checkpointing");
                }
                Ok(_) => {
                    ran_out = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!(target: "sluice_engine", "idle: could not measure the data directory: {e}");
                    ran_out = false;
                    break;
                }
            }
            if self.pipe.since_checkpoint() == 0 {
                if let Err(e) = self.append_clock() {
                    tracing::warn!(target: "sluice_engine", "idle checkpoint: {e}");
                    return;
                }
                expect += 1;
            }
            appended = self.pipe.appended();
            match self.checkpoint() {
                Ok(r) => {
                    self.idle_checkpoints.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        target: "sluice_engine",
                        "idle checkpoint {}: {} messages, {} bodies moved, {} files pruned",
                        r.start_segment,
                        r.messages,
                        r.bodies_moved,
                        r.segments_pruned
                    )
                }
                Err(e) => {
                    tracing::warn!(target: "sluice_engine", "idle checkpoint failed: {e}");
                    return;
                }
            }
        }
        foreign |= self.pipe.appended() != expect;
        if ran_out && foreign {
            return;
        }
        self.pipe.idle_handled(appended);
        self.idle_periods.fetch_add(1, Ordering::Relaxed);
    }

    /// Logs the engine's latest time and waits until it is durable.
    fn append_clock(&self) -> Result<(), StoreError> {
        let ticket = {
            let _e = self.epoch.read();
            self.pipe.check_writable()?;
            let now_ms = self.recovered_time_floor_ms.max(self.last_now_ms.load(Ordering::Relaxed));
            self.pipe.append(encode(&Record::Clock { now_ms }))
        };
        ticket.wait_blocking()
    }

    /// Bytes of every segment, index and bodies file in the data directory,
    /// and the live part: bodies live handles point at (with their records'
    /// overhead in segments) plus the newest index. The bodies are estimated
    /// from the last checkpoint's exact count, scaled by the messages stored
    /// now (counting them again would lock every queue for a pass over its
    /// messages, every quiet period).
    fn disk_and_live_bytes(&self) -> Result<(u64, u64), StoreError> {
        let listing = list(self.io.as_ref(), &self.dir)?;
        let len = |path: PathBuf| -> Result<u64, StoreError> {
            match self.io.open(&path, false).and_then(|f| f.len()) {
                Ok(n) => Ok(n),
                // Pruned meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(StoreError::Internal(format!("size of {}: {e}", path.display()))),
            }
        };
        let (log, ck) = (self.dir.join(LOG_DIR), self.dir.join(CHECKPOINT_DIR));
        let mut disk = 0;
        for &n in &listing.segments {
            disk += len(log.join(crate::pipe::segment_name(n)))?;
        }
        for &n in &listing.bodies {
            disk += len(ck.join(crate::recovery::bodies_name(n)))?;
        }
        let mut newest_index = 0;
        for &n in &listing.checkpoints {
            newest_index = len(ck.join(checkpoint_name(n)))?;
            disk += newest_index;
        }
        let messages = self.catalog.read().message_count();
        let (counted_bytes, counted_messages) = *self.live_at_checkpoint.lock();
        let bodies = match counted_messages {
            0 => messages.saturating_mul(ESTIMATED_MESSAGE_BYTES),
            n => (u128::from(counted_bytes) * u128::from(messages) / u128::from(n)).min(u128::from(u64::MAX)) as u64,
        };
        Ok((disk, bodies + newest_index))
    }

    fn checkpoint(&self) -> Result<CheckpointReport, StoreError> {
        let _one = self.ckpt_lock.lock();
        let res = self.checkpoint_locked();
        // Its second roll ended the window, unless it stopped before it.
        self.pipe.end_checkpoint_window();
        res
    }

    fn checkpoint_locked(&self) -> Result<CheckpointReport, StoreError> {
        self.pipe.check_writable()?;
        let started = Instant::now();
        // First freeze: the log rolls to segment N (the checkpoint's name,
        // where replay will start); each queue's next sequence number then
        // bounds the messages its ranges hold.
        let (start_segment, mut plan, compact, next_queue_id) = {
            let _e = self.epoch.write();
            let start_segment = self.pipe.force_roll();
            let c = self.catalog.read();
            // Compaction: bodies in files that are mostly dead move into this
            // checkpoint's bodies file, so those files can go. Which files
            // are mostly dead is taken from the previous checkpoint's pass
            // over every handle (one pass less under the freeze); any
            // choice is safe, a stale one only moves a file's bodies one
            // checkpoint later. Only files that were complete when counted
            // qualify (bodies files, segments below that checkpoint's
            // start): a segment still being written then was counted
            // against what it held at the time, not its final size.
            let (counted_below, live) = std::mem::take(&mut *self.file_usage.lock());
            // With nothing logged since the last checkpoint the pipe does not
            // roll and this one has the same number: it rewrites the same
            // index and must not replace the bodies file live handles use.
            let again = self.ckpt_files.lock().contains_key(&start_segment);
            // A segment's length is its records' only once the writer has
            // left it: until its seal, a preallocated one also holds zeros.
            let sealed_below = counted_below.min(self.pipe.writer_segment());
            let compact: HashSet<u32> = live
                .iter()
                .filter(|_| !again)
                .filter(|(f, _)| **f & CHECKPOINT_FILE_BIT != 0 || u64::from(**f) < sealed_below)
                .filter(|(f, bytes)| self.bodies.file_len(**f).is_some_and(|len| **bytes < len / COMPACT_BELOW_LIVE_DIVISOR))
                .map(|(f, _)| *f)
                .collect();
            let floors = self.seq_floors.lock();
            let mut plan: Vec<(QueueId, Arc<Slot>, u64, u64, u64)> = c
                .slots
                .iter()
                .map(|(id, slot)| {
                    let core = slot.core.lock();
                    (*id, slot.clone(), core.q.next_seq(), core.q.len() as u64, floors.get(id).copied().unwrap_or(0))
                })
                .collect();
            plan.sort_unstable_by_key(|p| p.0);
            (start_segment, plan, compact, c.next_id)
        };
        let mut freeze = started.elapsed();
        let mut w = IndexWriter::create(self.io.as_ref(), &self.dir, start_segment, next_queue_id)?;
        let is_compacted = |f: u32| compact.contains(&f);
        let position = || self.pipe.position();
        let hook = || {
            if let Some(h) = &self.range_hook {
                h();
            }
        };
        // The ranges, each queue working meanwhile.
        let env = RangeEnv { compact: &is_compacted, position: &position, between: &hook };
        let mut floors = HashMap::with_capacity(plan.len());
        for (id, slot, next_seq, len, low) in &plan {
            match w.write_ranges(*id, slot, (*next_seq, *len, *low), self.range_seqs, &env) {
                Ok(lowest) => {
                    floors.insert(*id, lowest.unwrap_or(*next_seq));
                }
                Err(e) => {
                    w.discard(self.io.as_ref());
                    return Err(e);
                }
            }
        }
        // A second pass over what was sent (or moved in) meanwhile, so that
        // the tail, written with writers paused, holds only what arrives
        // during this pass: under a 40,000 msg/s fill the tail of a 1 M
        // checkpoint was 44,000 messages and a 6 ms pause.
        for (id, slot, next_seq, _, _) in plan.iter_mut() {
            let from = *next_seq;
            let to = slot.core.lock().q.next_seq();
            if to > from {
                if let Err(e) = w.write_ranges(*id, slot, (to, to - from, from), self.range_seqs, &env) {
                    w.discard(self.io.as_ref());
                    return Err(e);
                }
                *next_seq = to;
            }
        }
        if let Err(e) = w.flush_ranges() {
            w.discard(self.io.as_ref());
            return Err(e);
        }
        // Second freeze: the tail, at the start of segment M.
        {
            let tail_started = Instant::now();
            let _e = self.epoch.write();
            let tail_segment = self.pipe.roll();
            let c = self.catalog.read();
            let floor = self.recovered_time_floor_ms.max(self.last_now_ms.load(Ordering::Relaxed));
            let ranged: HashMap<QueueId, u64> = plan.iter().map(|p| (p.0, p.2)).collect();
            if let Err(e) = w.write_tail(tail_segment, &c, &ranged, floor, &is_compacted) {
                drop(c);
                w.discard(self.io.as_ref());
                return Err(e);
            }
            floors.retain(|id, _| c.slots.contains_key(id));
            freeze += tail_started.elapsed();
        }
        drop(plan);
        let index = w.finish(self.io.as_ref())?;
        *self.seq_floors.lock() = floors;
        let (start_segment, tail_segment) = (index.start_segment, index.tail_segment);
        // The index points into segments below M whose newest records may
        // not be written or fsynced yet (with `interval`/`never`, or writes
        // in flight), and its window (segments N..M-1) must replay whole:
        // it may become visible only once they are durable, or a power cut
        // would leave it pointing at bytes that never made it. The barrier
        // waits for the writer to write (and, with `always`, fsync)
        // everything appended before the second freeze; the fsyncs below
        // cover the other policies.
        self.pipe.barrier().wait_blocking()?;
        let window = (start_segment..index.tail_segment).map(segment_file);
        let referenced_below = index.files.iter().copied().filter(|&f| f & CHECKPOINT_FILE_BIT == 0 && u64::from(f) < start_segment);
        for f in referenced_below.chain(window) {
            // A failed fsync may have dropped the pages (fsyncgate): the
            // writer must never report a later fsync of them as success.
            if let Err(e) = self.bodies.fsync_file(f) {
                self.pipe.fail_stop(format!("checkpoint: {e}"));
                return Err(e);
            }
        }
        let pipe = self.pipe.clone();
        let written = finish(self.io.as_ref(), &self.dir, index, &self.bodies, &|| pipe.is_closing() || pipe.is_failed())?;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.pipe.set_last_index(written.bytes, written.messages);
        // Point every handle the checkpoint moved at its copy before pruning
        // deletes the files they pointed into (R5: no live message
        // reclaimed). Under the epoch lock no operation runs. A message is
        // found by its queue and sequence number at the snapshot, and
        // repointed only if its handle is still the one moved; one that was
        // moved or renumbered since keeps its handle, and its file is kept
        // (below) until a later checkpoint moves it. Messages sent since the
        // snapshot point into segments the prune keeps (>= start_segment).
        // Nothing else changes a handle, so the files live handles point
        // into are those the index counted plus the files of handles not
        // repointed: no second pass over every message (it took a further
        // 0.13 s of freeze per million messages). A message deleted since the
        // snapshot keeps its file one checkpoint longer at most.
        let this_file = checkpoint_file(start_segment);
        let mut usage = written.usage;
        if written.relocations.iter().any(|(_, moved)| !moved.is_empty()) {
            let repoint_started = Instant::now();
            let _e = self.epoch.write();
            let c = self.catalog.read();
            for (qid, moved) in &written.relocations {
                let slot = c.slots.get(qid);
                let mut core = slot.map(|s| s.core.lock());
                for r in moved {
                    let now = core.as_ref().and_then(|core| match core.q.get(r.seq).map(|m| &m.payload) {
                        Some(Payload::Stored(now)) => Some(*now),
                        _ => None,
                    });
                    match (now, core.as_mut()) {
                        (Some(now), Some(core)) if now == r.old => {
                            core.q.set_payload(r.seq, Payload::Stored(BodyRef { file: this_file, offset: r.new_offset, ..r.old }));
                        }
                        // Still pointing where it was (moved to another queue or
                        // renumbered since), or gone: keep its old file.
                        _ => *usage.entry(r.old.file).or_default() += usage_bytes(&r.old),
                    }
                }
            }
            freeze += repoint_started.elapsed();
        }
        *self.live_at_checkpoint.lock() = (usage.values().sum(), written.messages);
        // Every file a live handle may still point into; prune keeps them.
        let referenced: HashSet<u32> = usage.keys().copied().collect();
        *self.file_usage.lock() = (start_segment, usage);
        let (bodies_moved, body_bytes_moved) = (written.bodies_moved, written.body_bytes_moved);
        drop(written.relocations);
        let mut kept = self.ckpt_files.lock();
        kept.insert(start_segment, written.files);
        // A message sent after the repoint lands in a segment >= the writer's,
        // which prune never touches.
        let (_, segments_pruned) = prune(self.io.as_ref(), &self.dir, self.pipe.writer_segment(), &|f| referenced.contains(&f), &kept)?;
        while kept.len() > CHECKPOINTS_KEPT {
            kept.pop_first();
        }
        drop(kept);
        self.bodies.forget_files(|f| referenced.contains(&f) || (f & CHECKPOINT_FILE_BIT == 0 && u64::from(f) >= start_segment));
        tracing::info!(
            target: "sluice_engine",
            "checkpoint {}: {} messages in {} queues, {} bytes of index, {} bodies moved; writers paused {:?}, took {:?}, {} segments pruned",
            written.file,
            written.messages,
            written.queues,
            written.bytes,
            bodies_moved,
            freeze,
            started.elapsed(),
            segments_pruned
        );
        Ok(CheckpointReport {
            file: written.file,
            start_segment,
            tail_segment,
            queues: written.queues,
            messages: written.messages,
            bytes: written.bytes,
            bodies_moved,
            body_bytes_moved,
            freeze,
            elapsed: started.elapsed(),
            segments_pruned,
        })
    }
}

/// A queue's core, locked by `Inner::lock_queue`, under the epoch (the
/// core is released first).
struct QueueLock<'a> {
    core: MutexGuard<'a, SlotCore>,
    _epoch: parking_lot::RwLockReadGuard<'a, ()>,
}

impl std::ops::Deref for QueueLock<'_> {
    type Target = SlotCore;
    fn deref(&self) -> &SlotCore {
        &self.core
    }
}

impl std::ops::DerefMut for QueueLock<'_> {
    fn deref_mut(&mut self) -> &mut SlotCore {
        &mut self.core
    }
}

/// Locks the cores of `slots` in ascending id order (ids unique).
fn lock_all<'a>(slots: &'a [(QueueId, Arc<Slot>)]) -> BTreeMap<QueueId, MutexGuard<'a, SlotCore>> {
    let mut order: Vec<&(QueueId, Arc<Slot>)> = slots.iter().collect();
    order.sort_by_key(|(id, _)| *id);
    order.dedup_by_key(|(id, _)| *id);
    order.into_iter().map(|(id, s)| (*id, s.core.lock())).collect()
}

/// Moves messages into `dest` (renumbered there) and returns the transfer.
fn transfer_into(dest_id: QueueId, dest: &mut SlotCore, source: QueueId, mode: TransferMode, messages: Vec<CoreMessage>) -> Transfer {
    let mut pairs = Vec::with_capacity(messages.len());
    for m in messages {
        let new = dest.q.next_seq();
        pairs.push((m.seq, new));
        if !dest.deleted {
            dest.q.insert(transform(m, mode, source, new));
        }
    }
    Transfer { dest: dest_id, mode, pairs }
}

fn notify_n(n: &Notify, k: usize) {
    for _ in 0..k.min(10) {
        n.notify_one();
    }
}

#[async_trait]
impl Store for LogStore {
    fn engine_name(&self) -> &'static str {
        "log"
    }

    /// The latest time recovery found in any record (see `Record::time_ms`)
    /// or any operation has passed since open. After a checkpoint, receive
    /// and visibility-change times from before it survive only as far as a
    /// live message's send or first receive time shows them.
    fn time_floor_ms(&self) -> u64 {
        self.inner.recovered_time_floor_ms.max(self.inner.last_now_ms.load(Ordering::Relaxed))
    }

    fn write_problem(&self) -> Option<String> {
        match self.health() {
            Health::Ok => None,
            Health::Degraded(why) => Some(format!("degraded: {why}")),
            Health::Failed(why) => Some(format!("failed: {why}")),
            Health::Closed => Some("closed".to_string()),
        }
    }

    async fn create_queue(&self, new: NewQueue, now_ms: u64) -> Result<CreateOutcome, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let (ticket, outcome) = {
            let _e = s.epoch.read();
            let mut c = s.catalog.write();
            if let Some(id) = c.by_name.get(&new.name) {
                let info = c.slots[id].info.read().clone();
                (s.pipe.barrier(), CreateOutcome::Exists(info))
            } else if c.deleted.get(&new.name).is_some_and(|&at| at > new.refuse_if_deleted_after_ms) {
                (s.pipe.barrier(), CreateOutcome::DeletedRecently)
            } else {
                s.pipe.check_writable()?;
                let id = c.next_id;
                let info = QueueInfo {
                    id,
                    name: new.name.clone(),
                    region: new.region,
                    attributes: new.attributes,
                    config: new.config,
                    tags: new.tags,
                    created_ms: now_ms,
                    last_modified_ms: now_ms,
                    last_purge_ms: None,
                };
                let ticket = s.pipe.append(encode(&Record::QueueCreated(info.clone())));
                c.next_id += 1;
                let slot = Slot::new(info);
                let info = slot.info.read().clone();
                c.deleted.remove(&new.name);
                c.by_name.insert(new.name, id);
                c.slots.insert(id, slot);
                (ticket, CreateOutcome::Created(info))
            }
        };
        ticket.wait().await?;
        Ok(outcome)
    }

    async fn delete_queue(&self, id: QueueId, now_ms: u64) -> Result<(), StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let (ticket, slot) = {
            let _e = s.epoch.read();
            s.pipe.check_writable()?;
            let mut c = s.catalog.write();
            let slot = c.slots.remove(&id).ok_or(StoreError::QueueNotFound)?;
            let name = slot.info.read().name.clone();
            let mut core = slot.core.lock();
            core.deleted = true;
            core.q.purge();
            c.by_name.remove(&name);
            c.deleted.insert(name, now_ms);
            let ticket = s.pipe.append(encode(&Record::QueueDeleted { queue: id, now_ms }));
            drop(core);
            (ticket, slot)
        };
        slot.notify.notify_waiters();
        ticket.wait().await
    }

    async fn get_queue(&self, name: &QueueName) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        Ok(self.inner.slot_by_name(name).map(|s| s.info.read().clone()))
    }

    async fn get_queue_by_id(&self, id: QueueId) -> Result<Option<Arc<QueueInfo>>, StoreError> {
        Ok(self.inner.catalog.read().slots.get(&id).map(|s| s.info.read().clone()))
    }

    async fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<QueueInfo>>, StoreError> {
        let c = self.inner.catalog.read();
        let ids = list_queue_ids(&c.by_name, account, prefix, after, limit);
        Ok(ids.iter().map(|id| c.slots[id].info.read().clone()).collect())
    }

    async fn update_queue(&self, id: QueueId, update: QueueUpdate, now_ms: u64) -> Result<Arc<QueueInfo>, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let slot = s.slot(id)?;
        let (ticket, info) = {
            let _e = s.epoch.read();
            s.pipe.check_writable()?;
            let mut guard = slot.info.write();
            if slot.core.lock().deleted {
                return Err(StoreError::QueueNotFound);
            }
            let mut info = (**guard).clone();
            update.apply(&mut info, now_ms);
            let ticket = s.pipe.append(encode(&Record::QueueUpdated(info.clone())));
            let info = Arc::new(info);
            *guard = info.clone();
            (ticket, info)
        };
        ticket.wait().await?;
        Ok(info)
    }

    async fn send(&self, id: QueueId, messages: Vec<NewMessage>, now_ms: u64) -> Result<Vec<SendOutcome>, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let slot = s.slot(id)?;
        // Each message may also register a dedup key (group + id) of 36 bytes + key.
        let bytes: usize = messages
            .iter()
            .map(|m| {
                let key = m.dedup_id.as_ref().map_or(0, |d| 40 + d.len() + m.group_id.as_ref().map_or(0, String::len));
                message_bytes(m.payload.len(), m.group_id.as_deref(), m.dedup_id.as_deref()) + key
            })
            .sum();
        if messages.len() > SEND_BATCH_MAX || bytes + 64 > RECORD_BYTES_MAX {
            return Err(too_large("send batch"));
        }
        if messages.is_empty() {
            s.pipe.barrier().wait().await?;
            return Ok(Vec::new());
        }
        let n = messages.len();
        let config = slot.info.read().config.clone();
        let mut remember = Vec::new();
        let ahead;
        let (ticket, out) = {
            let mut c = s.lock_queue(&slot)?;
            ahead = c.q.len();
            // The same decisions as MemoryStore::send, message by message, so
            // that a repeated deduplication id within one batch is a duplicate.
            let mut out = Vec::with_capacity(n);
            let mut sent = Vec::with_capacity(n);
            let mut dedup = Vec::new();
            for m in &messages {
                let key = match (&m.dedup_id, config.fifo) {
                    (Some(d), true) => Some(dedup_key(d, m.group_id.as_deref(), config.dedup_scope_group)),
                    _ => None,
                };
                if let Some(e) = key.as_deref().and_then(|k| c.q.dedup_lookup(k, now_ms)) {
                    out.push(SendOutcome { message_id: e.message_id, sequence_number: e.seq, duplicate: true });
                    continue;
                }
                let cm = c.q.prepare(m, m.delay_secs, now_ms);
                let seq = cm.seq;
                c.q.insert(cm.clone());
                sent.push(cm);
                if let Some(k) = key {
                    let entry = DedupEntry { message_id: m.message_id, seq, expires_ms: now_ms + DEDUP_WINDOW_MS };
                    c.q.dedup_register(k.clone(), entry);
                    dedup.push((k, entry));
                }
                out.push(SendOutcome { message_id: m.message_id, sequence_number: seq, duplicate: false });
            }
            let ticket = if sent.is_empty() {
                s.pipe.barrier()
            } else {
                // The record carries the bodies; once the pipe has fixed its
                // place in the log, the index keeps only handles to them.
                let rec = Record::MessagesSent { queue: id, messages: sent, dedup };
                // Sized up front (the estimate bounds the record): no growth
                // by doubling through a 1 MiB batch.
                let mut buf = Vec::with_capacity(bytes + 64);
                let mut at = Vec::with_capacity(n);
                rec.encode_with(&mut buf, Some(&mut at));
                let (ticket, pos) = s.pipe.append_at(buf);
                if let (Some(pos), Record::MessagesSent { messages, .. }) = (pos, rec) {
                    remember.reserve(messages.len());
                    for (m, body_at) in messages.into_iter().zip(at) {
                        let Payload::Inline(bytes) = m.payload else { continue };
                        let r = BodyRef {
                            file: segment_file(pos.segment),
                            offset: pos.offset + body_at as u64,
                            len: bytes.len() as u32,
                            crc: crc32c::crc32c(&bytes),
                        };
                        c.q.set_payload(m.seq, Payload::Stored(r));
                        remember.push((r, *bytes));
                    }
                }
                ticket
            };
            (ticket, out)
        };
        // Outside the queue's lock: a receive that finds a handle first reads
        // the pipe or the file, and a delete that comes first leaves an entry
        // the cache evicts in its turn.
        s.bodies.remember(remember, ahead);
        notify_n(&slot.notify, n);
        ticket.wait().await?;
        Ok(out)
    }

    async fn receive(&self, id: QueueId, params: ReceiveParams, now_ms: u64) -> Result<ReceiveOutcome, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let slot = s.slot(id)?;
        let config = slot.info.read().config.clone();
        let dlq = config.redrive.as_ref().and_then(|r| s.slot_by_name(&r.dead_letter_target).map(|d| (d, r.max_receive_count)));
        let max_receive_count = dlq.as_ref().map(|(_, n)| *n);
        let dlq_id = dlq.as_ref().map(|(d, _)| d.info.read().id);
        let max = params.max.min(RECEIVE_MAX);
        let mut slots = vec![(id, slot.clone())];
        if let (Some((d, _)), Some(did)) = (&dlq, dlq_id) {
            slots.push((did, d.clone()));
        }
        let (ticket, out, dead_n, damaged) = {
            let _e = s.epoch.read();
            s.pipe.check_writable()?;
            let mut guards = lock_all(&slots);
            let src = guards.get_mut(&id).expect("source locked");
            if src.deleted {
                return Err(StoreError::QueueNotFound);
            }
            let rules = ReceiveRules {
                max,
                visibility_timeout_secs: params.visibility_timeout_secs,
                max_receive_count,
                retention_secs: config.retention_secs,
                inflight_limit: params.inflight_limit,
                fifo: config.fifo,
                attempt_id: params.attempt_id.as_deref(),
            };
            let r = src.q.receive(&rules, now_ms);
            // Bodies are read after the queue locks are released (below).
            let unresolved: Vec<(ReceivedMessage, Payload)> = r
                .delivered
                .iter()
                .filter_map(|&seq| src.q.get(seq))
                .map(|m| {
                    let rm = ReceivedMessage {
                        message: m.to_stored_with(bytes::Bytes::new()),
                        receipt: Receipt { sequence_number: m.seq, generation: m.receive_count },
                    };
                    (rm, m.payload.clone())
                })
                .collect();
            let next_visible_ms = src.q.next_visible_ms();
            let dead_n = r.dead_lettered.len();
            let dead_letter = match dlq_id {
                Some(did) if dead_n > 0 => {
                    let dest = guards.get_mut(&did).expect("dead-letter queue locked");
                    Some(transfer_into(did, dest, id, TransferMode::DeadLetter, r.dead_lettered))
                }
                _ => None,
            };
            let changed = !r.delivered.is_empty() || !r.expired.is_empty() || dead_letter.is_some();
            let ticket = if changed {
                s.pipe.append(encode(&Record::Received {
                    queue: id,
                    now_ms,
                    until_ms: r.until_ms,
                    delivered: r.delivered,
                    expired: r.expired,
                    dead_letter,
                    retried: r.retried,
                    attempt_id: params.attempt_id.clone(),
                }))
            } else {
                s.pipe.barrier()
            };
            drop(guards);
            // Still under the epoch lock, so no checkpoint can repoint the
            // handles and prune their files meanwhile. A body that cannot be
            // read is left out of the answer (R13), which serves the others
            // and fails only if none was readable; its receive is already
            // applied and logged, so the message reappears after the
            // visibility timeout like any receive whose answer was lost. One
            // damaged on disk would fail every receive, holding back the
            // messages received with it each time: it is quarantined below.
            let mut messages = Vec::with_capacity(unresolved.len());
            let mut unreadable = None;
            let mut damaged = Vec::new();
            for (mut rm, p) in unresolved {
                match s.bodies.get_for_receive(&p) {
                    Ok(b) => {
                        rm.message.payload = b;
                        messages.push(rm);
                    }
                    Err(e) => {
                        if e.damaged {
                            damaged.push((rm.receipt, rm.message.message_id, e.error.to_string()));
                        }
                        unreadable.get_or_insert(e.error);
                    }
                }
            }
            let out = match unreadable {
                Some(e) if messages.is_empty() => Err(e),
                _ => Ok(ReceiveOutcome { messages, next_visible_ms, over_limit: r.over_limit }),
            };
            (ticket, out, dead_n, damaged)
        };
        if let Some((d, _)) = &dlq {
            notify_n(&d.notify, dead_n);
        }
        ticket.wait().await?;
        if !damaged.is_empty() {
            self.quarantine(id, damaged, now_ms).await;
        }
        out
    }

    async fn delete_messages(&self, id: QueueId, receipts: &[Receipt], now_ms: u64) -> Result<Vec<DeleteOutcome>, StoreError> {
        let s = &self.inner;
        let slot = s.slot(id)?;
        if receipts.len() > BATCH_ENTRIES_MAX {
            return Err(too_large("delete batch"));
        }
        let fifo = slot.info.read().config.fifo;
        let mut gone: Vec<BodyRef> = Vec::new();
        let (ticket, out) = {
            let mut c = s.lock_queue(&slot)?;
            let mut seqs = Vec::with_capacity(receipts.len());
            let out: Vec<DeleteOutcome> = receipts
                .iter()
                .map(|r| {
                    let body = match c.q.get(r.sequence_number).map(|m| &m.payload) {
                        Some(Payload::Stored(b)) => Some(*b),
                        _ => None,
                    };
                    let o = c.q.delete_checked(*r, fifo, now_ms);
                    if o == DeleteOutcome::Deleted {
                        seqs.push(r.sequence_number);
                        gone.extend(body);
                    }
                    o
                })
                .collect();
            let ticket = if seqs.is_empty() { s.pipe.barrier() } else { s.pipe.append(encode(&Record::Deleted { queue: id, seqs })) };
            (ticket, out)
        };
        s.bodies.forget(&gone);
        ticket.wait().await?;
        Ok(out)
    }

    async fn change_visibility(
        &self,
        id: QueueId,
        changes: &[(Receipt, u32)],
        now_ms: u64,
    ) -> Result<Vec<VisibilityOutcome>, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let slot = s.slot(id)?;
        if changes.len() > BATCH_ENTRIES_MAX {
            return Err(too_large("visibility batch"));
        }
        let (ticket, out) = {
            let mut c = s.lock_queue(&slot)?;
            let out: Vec<VisibilityOutcome> = changes.iter().map(|(r, t)| c.q.change_visibility(*r, *t, now_ms)).collect();
            let applied: Vec<(u64, u32)> = changes
                .iter()
                .zip(&out)
                .filter(|(_, o)| **o == VisibilityOutcome::Changed)
                .map(|((r, t), _)| (r.sequence_number, *t))
                .collect();
            let ticket = if applied.is_empty() {
                s.pipe.barrier()
            } else {
                s.pipe.append(encode(&Record::VisibilityChanged { queue: id, now_ms, changes: applied }))
            };
            (ticket, out)
        };
        if changes.iter().zip(&out).any(|((_, t), o)| *t == 0 && *o == VisibilityOutcome::Changed) {
            slot.notify.notify_one();
        }
        ticket.wait().await?;
        Ok(out)
    }

    async fn purge(&self, id: QueueId, _now_ms: u64) -> Result<(), StoreError> {
        let s = &self.inner;
        let slot = s.slot(id)?;
        let ticket = {
            let mut c = s.lock_queue(&slot)?;
            c.q.purge();
            s.pipe.append(encode(&Record::Purged { queue: id }))
        };
        ticket.wait().await
    }

    async fn counts(&self, id: QueueId, now_ms: u64) -> Result<QueueCounts, StoreError> {
        self.inner.saw(now_ms);
        let slot = self.inner.slot(id)?;
        let c = slot.core.lock().q.counts(now_ms);
        Ok(c)
    }

    async fn move_messages(&self, source: QueueId, dest: MoveDestination, max: usize, now_ms: u64) -> Result<usize, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let src = s.slot(source)?;
        let max = max.min(MOVE_BATCH_MAX);
        let fifo = src.info.read().config.fifo;
        match dest {
            MoveDestination::Queue(d) => {
                let dst = s.slot(d)?;
                let slots = vec![(source, src.clone()), (d, dst.clone())];
                let (ticket, n) = {
                    let _e = s.epoch.read();
                    s.pipe.check_writable()?;
                    let mut guards = lock_all(&slots);
                    if guards.values().any(|g| g.deleted) {
                        return Err(StoreError::QueueNotFound);
                    }
                    let taken = guards.get_mut(&source).expect("source locked").q.take_visible(max, fifo, now_ms);
                    let n = taken.len();
                    let t = transfer_into(d, guards.get_mut(&d).expect("destination locked"), source, TransferMode::Reset, taken);
                    let ticket = if n == 0 {
                        s.pipe.barrier()
                    } else {
                        s.pipe.append(encode(&Record::Moved { source, now_ms, transfers: vec![t] }))
                    };
                    (ticket, n)
                };
                notify_n(&dst.notify, n);
                ticket.wait().await?;
                Ok(n)
            }
            MoveDestination::OriginalSource => {
                // First find which queues the messages would go to, so that
                // all of them can be locked in id order; the messages are
                // put back untouched (same numbers, still visible).
                let origins: Vec<QueueId> = {
                    let mut c = src.core.lock();
                    let taken = c.q.take_visible(max, fifo, now_ms);
                    let mut o: Vec<QueueId> = taken.iter().filter_map(|m| m.dead_letter_source.map(std::num::NonZeroU64::get)).collect();
                    for m in taken {
                        c.q.insert(m);
                    }
                    o.sort_unstable();
                    o.dedup();
                    o
                };
                let mut slots = vec![(source, src.clone())];
                for o in origins {
                    if o != source {
                        if let Ok(sl) = s.slot(o) {
                            slots.push((o, sl));
                        }
                    }
                }
                let (ticket, moved, notes) = {
                    let _e = s.epoch.read();
                    s.pipe.check_writable()?;
                    let mut guards = lock_all(&slots);
                    if guards[&source].deleted {
                        return Err(StoreError::QueueNotFound);
                    }
                    let taken = guards.get_mut(&source).expect("source locked").q.take_visible(max, fifo, now_ms);
                    let mut groups: BTreeMap<Option<QueueId>, Vec<CoreMessage>> = BTreeMap::new();
                    for m in taken {
                        groups.entry(m.dead_letter_source.map(std::num::NonZeroU64::get)).or_default().push(m);
                    }
                    let mut transfers = Vec::new();
                    let mut moved = 0;
                    let mut notes = Vec::new();
                    for (origin, msgs) in groups {
                        let live = origin.filter(|o| guards.get(o).is_some_and(|g| !g.deleted));
                        match live {
                            Some(o) => {
                                moved += msgs.len();
                                notes.push((o, msgs.len()));
                                let g = guards.get_mut(&o).expect("origin locked");
                                transfers.push(transfer_into(o, g, source, TransferMode::Reset, msgs));
                            }
                            None => {
                                let g = guards.get_mut(&source).expect("source locked");
                                transfers.push(transfer_into(source, g, source, TransferMode::KeepSource, msgs));
                            }
                        }
                    }
                    let ticket = if transfers.is_empty() {
                        s.pipe.barrier()
                    } else {
                        s.pipe.append(encode(&Record::Moved { source, now_ms, transfers }))
                    };
                    (ticket, moved, notes)
                };
                for (o, n) in notes {
                    if let Some((_, sl)) = slots.iter().find(|(id, _)| *id == o) {
                        notify_n(&sl.notify, n);
                    }
                }
                ticket.wait().await?;
                Ok(moved)
            }
        }
    }

    async fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.inner.saw(now_ms);
        let s = &self.inner;
        let mut slots: Vec<(QueueId, Arc<Slot>)> = s.catalog.read().slots.iter().map(|(id, sl)| (*id, sl.clone())).collect();
        slots.sort_by_key(|(id, _)| *id);
        let mut n = 0;
        for (id, slot) in slots {
            let retention = slot.info.read().config.retention_secs;
            let _e = s.epoch.read();
            s.pipe.check_writable()?;
            let mut c = slot.core.lock();
            if c.deleted {
                continue;
            }
            c.q.forget_expired_dedup(now_ms);
            let seqs = c.q.expired(retention, now_ms);
            if seqs.is_empty() {
                continue;
            }
            for seq in &seqs {
                c.q.remove(*seq);
            }
            n += seqs.len();
            // The barrier below covers this record.
            drop(s.pipe.append(encode(&Record::Expired { queue: id, seqs })));
        }
        s.pipe.barrier().wait().await?;
        Ok(n)
    }

    async fn put_move_task(&self, task: MoveTask) -> Result<(), StoreError> {
        let s = &self.inner;
        let ticket = {
            let _e = s.epoch.read();
            s.pipe.check_writable()?;
            let mut c = s.catalog.write();
            let ticket = s.pipe.append(encode(&Record::MoveTaskPut(task.clone())));
            c.put_move_task(task);
            ticket
        };
        ticket.wait().await
    }

    async fn list_move_tasks(&self, source_arn: &str) -> Result<Vec<MoveTask>, StoreError> {
        let c = self.inner.catalog.read();
        let mut v: Vec<MoveTask> = c.move_tasks.iter().filter(|t| t.source_arn == source_arn).cloned().collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.started_ms));
        Ok(v)
    }

    fn notifier(&self, id: QueueId) -> Option<Arc<Notify>> {
        self.inner.catalog.read().slots.get(&id).map(|s| s.notify.clone())
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<LogStore>();
}
