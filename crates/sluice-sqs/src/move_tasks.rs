//! Message move tasks (StartMessageMoveTask): a background task per source
//! queue that moves messages in small steps through `Store::move_messages`,
//! at most MaxNumberOfMessagesPerSecond, saving its progress in the store.

use crate::Sqs;
use parking_lot::Mutex;
use sluice_store::{MoveDestination, MoveTask, QueueId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Messages moved per step (one store call).
const STEP_MESSAGES: usize = 10;
/// How often a paced task checks for a cancel while waiting.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// The running tasks' cancel flags, by task handle.
#[derive(Default)]
pub struct Runner {
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl Runner {
    /// Asks a running task to stop; false when no such task runs here.
    pub fn cancel(&self, handle: &str) -> bool {
        match self.running.lock().get(handle) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Asks every task to stop (shutdown).
    pub fn cancel_all(&self) {
        for f in self.running.lock().values() {
            f.store(true, Ordering::SeqCst);
        }
    }
}

/// Starts moving for `task` (already saved as RUNNING).
pub fn spawn(sqs: Arc<Sqs>, mut task: MoveTask, source: QueueId, dest: MoveDestination) {
    let cancel = Arc::new(AtomicBool::new(false));
    sqs.move_tasks.running.lock().insert(task.task_handle.clone(), cancel.clone());
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let rate = task.max_per_second.map(|r| r.max(1) as u64);
        loop {
            if cancel.load(Ordering::SeqCst) {
                if sqs.is_stopping() {
                    // Shutdown: the task stays RUNNING in the store and
                    // `resume` continues it when the server starts again.
                    sqs.move_tasks.running.lock().remove(&task.task_handle);
                    return;
                }
                task.status = "CANCELLED".into();
                break;
            }
            if task.moved >= task.to_move {
                task.status = "COMPLETED".into();
                break;
            }
            let step = STEP_MESSAGES.min((task.to_move - task.moved) as usize).min(rate.unwrap_or(u64::MAX) as usize);
            match sqs.store.move_messages(source, dest, step, sqs.now_ms()).await {
                Ok(0) => {
                    task.status = "COMPLETED".into();
                    break;
                }
                Ok(n) => task.moved += n as u64,
                Err(e) => {
                    task.status = "FAILED".into();
                    task.failure_reason = Some(format!("{e}"));
                    break;
                }
            }
            if let Err(e) = sqs.store.put_move_task(task.clone()).await {
                tracing::warn!(error = %e, "saving move task progress failed");
            }
            match rate {
                Some(r) => {
                    // Pace to `r` messages per second since the start.
                    let due = Duration::from_millis(task.moved * 1000 / r);
                    // Sleep in short slices so a cancel takes effect promptly.
                    while started.elapsed() < due && !cancel.load(Ordering::SeqCst) {
                        let left = due - started.elapsed();
                        tokio::time::sleep(left.min(CANCEL_POLL)).await;
                    }
                }
                None => tokio::task::yield_now().await,
            }
        }
        if let Err(e) = sqs.store.put_move_task(task.clone()).await {
            tracing::warn!(error = %e, "saving move task result failed");
        }
        sqs.move_tasks.running.lock().remove(&task.task_handle);
    });
}

/// Restarts the move tasks a previous run left RUNNING (after a restart or a
/// crash), for every queue of `account`. Returns how many were resumed.
pub async fn resume(sqs: &Arc<Sqs>, account: &str) -> Result<usize, crate::SqsError> {
    let mut resumed = 0;
    let (queues, _) = sqs.scan_queues(account, None, usize::MAX, |_| true).await?;
    for q in &queues {
        let arn = sqs.queue_arn(q);
        for task in sqs.store.list_move_tasks(&arn).await? {
            if task.status != "RUNNING" || sqs.move_tasks.running.lock().contains_key(&task.task_handle) {
                continue;
            }
            let dest = match &task.destination_arn {
                None => MoveDestination::OriginalSource,
                Some(d) => match sqs.resolve_arn(d).await.ok().flatten() {
                    Some(dq) => MoveDestination::Queue(dq.id),
                    None => {
                        let mut failed = task.clone();
                        failed.status = "FAILED".into();
                        failed.failure_reason = Some("The destination queue no longer exists.".into());
                        sqs.store.put_move_task(failed).await?;
                        continue;
                    }
                },
            };
            spawn(sqs.clone(), task, q.id, dest);
            resumed += 1;
        }
    }
    Ok(resumed)
}
