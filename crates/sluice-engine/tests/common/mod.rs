//! Helpers shared by the engine's integration tests: queue and message
//! builders, options over a `FaultIo`, and the long-test switch.
#![allow(dead_code)]

use bytes::Bytes;
use sluice_engine::{FaultIo, FsyncPolicy, LogOptions, LogStore};
use sluice_store::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A fixed start time, as in the behavioural suite.
pub const T0: u64 = 1_700_000_000_000;

/// True when `SLUICE_LONG_TESTS=1`: run the long versions.
pub fn long() -> bool {
    std::env::var("SLUICE_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// `short` normally, `long` under SLUICE_LONG_TESTS=1 (env `SLUICE_SEEDS` overrides both).
pub fn iterations(short: u64, long_n: u64) -> u64 {
    if let Some(n) = std::env::var("SLUICE_SEEDS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if long() {
        long_n
    } else {
        short
    }
}

/// The data directory used on a `FaultIo`.
pub fn data_dir() -> PathBuf {
    PathBuf::from("/data")
}

/// Options over `fs` with small segments so that rolls happen in short
/// tests, and a tiny body cache so that receives read bodies from the files.
pub fn opts(fs: &FaultIo) -> LogOptions {
    LogOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes: 16 << 10,
        checkpoint_every_bytes: None,
        checkpoint_every_records: None,
        idle_checkpoint_after: None,
        quiet_log_bytes: sluice_engine::limits::QUIET_LOG_BYTES_DEFAULT,
        enospc_retry: Duration::from_millis(20),
        body_cache_bytes: 4 << 10,
        io: fs.as_io(),
        checkpoint_range_hook: None,
        checkpoint_range_seqs: sluice_engine::limits::CHECKPOINT_MESSAGES_PER_RECORD,
        preallocate_segments: true,
    }
}

/// Opens the store on `fs`, panicking with the error.
pub fn open(fs: &FaultIo) -> Arc<LogStore> {
    LogStore::open(&data_dir(), opts(fs)).unwrap_or_else(|e| panic!("open failed: {e}"))
}

pub use sluice_store::suite::new_queue;

/// Creates a queue that must not exist yet.
pub async fn create(store: &dyn Store, name: &str, config: QueueConfig) -> Arc<QueueInfo> {
    match store.create_queue(new_queue(name, config), T0).await.unwrap() {
        CreateOutcome::Created(i) => i,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// The payload of message `id`: self-describing, with its own checksum, so a
/// corrupted body can be recognised without a side table.
pub fn payload_of(id: u128) -> Bytes {
    let len = (id % 97) as usize * 7;
    let body: String = format!("m{id}:") + &"x".repeat(len);
    let crc = crc32c::crc32c(body.as_bytes());
    Bytes::from(format!("{body}:{crc:08x}"))
}

/// True when `p` is the intact payload of `id`.
pub fn payload_ok(id: u128, p: &[u8]) -> bool {
    p == payload_of(id).as_ref()
}

/// A message with a self-checking payload.
pub fn message(id: u128) -> NewMessage {
    NewMessage { message_id: id, payload: payload_of(id), delay_secs: 0, group_id: None, dedup_id: None }
}

/// Receive parameters.
pub fn params(max: usize, vis: u32) -> ReceiveParams {
    ReceiveParams { max, visibility_timeout_secs: vis, inflight_limit: 120_000, attempt_id: None }
}

/// Bytes of every file of `fs` under `dir`.
pub fn disk_bytes(fs: &FaultIo, dir: &Path) -> u64 {
    fs.files().iter().filter(|(p, _)| p.starts_with(dir)).map(|(_, n)| n).sum()
}

/// Polls `done` until it holds, for two minutes at most: a bounded wait for
/// a background thread (checkpointer, preparer, idle timer) to get there.
/// Returns whether it held; callers then assert on the state with what
/// they know of it.
pub async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A current-thread runtime for tests that drive many short async scenarios.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A `LogOptions::checkpoint_range_hook` that, while `armed`, reports each
/// range a checkpoint writes on `ranges` and holds the checkpointing thread
/// there until `go_on` is sent (or dropped).
pub struct RangeGate {
    pub armed: Arc<std::sync::atomic::AtomicBool>,
    pub ranges: tokio::sync::mpsc::UnboundedReceiver<()>,
    pub go_on: std::sync::mpsc::Sender<()>,
    pub hook: Arc<dyn Fn() + Send + Sync>,
}

/// A disarmed [`RangeGate`].
pub fn range_gate() -> RangeGate {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let armed = Arc::new(AtomicBool::new(false));
    let (range_tx, ranges) = tokio::sync::mpsc::unbounded_channel();
    let (go_on, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let a = armed.clone();
    let hook = move || {
        if a.load(SeqCst) && range_tx.send(()).is_ok() {
            let _ = go_rx.lock().unwrap().recv();
        }
    };
    RangeGate { armed, ranges, go_on, hook: Arc::new(hook) }
}
