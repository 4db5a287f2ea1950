//! The `sluice` binary: command line, configuration and wiring.
//!
//! `sluice` (or `sluice serve`) starts the server. Every flag can also be set
//! by an environment variable `SLUICE_<FLAG>`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_server::{App, AppConfig};
use sluice_sqs::{Sqs, SqsConfig};
use sluice_engine::{FsyncPolicy, LogOptions, LogStore, StdIo};
use sluice_store::{MemoryStore, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// mimalloc: the server allocates per request (decoded inputs, rendered
/// outputs); glibc malloc spent 15-20% of server CPU in profiles, with lock
/// contention between the runtime's threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "sluice", version, about = "AWS-compatible messaging: SQS today, SNS and Kinesis next")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Copy every intact record of a damaged data directory into a new one.
    Salvage(SalvageArgs),
    /// Load-test any SQS-compatible endpoint (see docs/benchmarks.md).
    Bench(Box<sluice_bench::BenchArgs>),
}

#[derive(clap::Args, Debug, Clone)]
struct SalvageArgs {
    /// The damaged data directory (only read).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    data_dir: PathBuf,
    /// Where to write the salvaged data directory (must not exist yet).
    #[arg(long)]
    out: PathBuf,
}

/// `--fsync always|interval:<ms>|never`.
#[derive(Debug, Clone, Copy)]
struct Fsync(FsyncPolicy);

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync(FsyncPolicy::Always)),
            "never" => Ok(Fsync(FsyncPolicy::Never)),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| format!("expected always, interval:<ms> or never, got {other:?}"))?;
                Ok(Fsync(FsyncPolicy::Interval(Duration::from_millis(ms))))
            }
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Data directory of the durable engine.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    data_dir: PathBuf,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long, env = "SLUICE_IN_MEMORY", default_value_t = false)]
    in_memory: bool,
    /// Durability: `always` (fsync before every acknowledgement, group
    /// commit), `interval:<ms>` (survives a crash of sluice, a power cut may
    /// lose the last <ms>), or `never` (survives a crash of sluice only).
    #[arg(long, env = "SLUICE_FSYNC", default_value = "always")]
    fsync: Fsync,
    /// Region reported in ARNs when a request does not name one.
    #[arg(long, env = "SLUICE_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id that owns every resource.
    #[arg(long, env = "SLUICE_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// Most long-poll ReceiveMessage calls parked at once; one more is refused
    /// at once with `RequestThrottled` (each waiter holds a connection, so a
    /// file descriptor: keep it below the open-files limit).
    #[arg(long, env = "SLUICE_MAX_WAITERS", default_value_t = sluice_sqs::limits::WAITERS_MAX_DEFAULT)]
    max_waiters: usize,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "SLUICE_LOG", default_value = "info")]
    log: String,
}

/// mimalloc's option `arena_eager_commit` (`mi_option_t` 4 in mimalloc v2,
/// which `libmimalloc-sys` builds by default; it names no constant for it).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Makes mimalloc commit its arenas on demand rather than eagerly. It must
/// run before the first allocation, which reserves the first arena and
/// happens before `main`, so it is an ELF initializer (`.init_array`, run by
/// the loader before the Rust runtime starts). Measured: an idle server held
/// 12.6 MiB after start and 19.3 – 21.4 MiB after its first requests;
/// 6.9 – 7.2 and 8.4 – 8.8 MiB so, with the same throughput and CPU per
/// message (`docs/benchmarks.md`). `MIMALLOC_ARENA_EAGER_COMMIT` in the
/// environment still wins (mimalloc reads it when this has not run).
extern "C" fn commit_arenas_on_demand() {
    // `getenv`, not `std::env`: nothing may allocate before the option is set.
    // SAFETY: a NUL-terminated name; no thread changes the environment yet.
    let set_by_user = unsafe { !libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() };
    if !set_by_user {
        // SAFETY: sets one of mimalloc's own options; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    }
}

#[used]
#[cfg_attr(target_os = "linux", link_section = ".init_array")]
static COMMIT_ARENAS_ON_DEMAND: extern "C" fn() = commit_arenas_on_demand;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Salvage(a)) => return salvage(a),
        Some(Command::Bench(a)) => return bench(*a),
        None => cli.serve,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(args))
}

fn bench(a: sluice_bench::BenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(sluice_bench::run(a))?;
    Ok(())
}

fn salvage(a: SalvageArgs) -> anyhow::Result<()> {
    let report = sluice_engine::salvage(&StdIo, &a.data_dir, &a.out)
        .map_err(|e| anyhow::anyhow!("salvage of {} failed: {e}", a.data_dir.display()))?;
    println!("{report:#?}");
    Ok(())
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    k
}

/// The receipt-handle key of a data directory, created on first start, so
/// that handles stay valid across restarts.
fn receipt_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    use std::io::Write;
    let path = dir.join("receipt.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes);
            Ok(k)
        }
        Ok(_) => anyhow::bail!("{} is not a 32-byte key", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let k = random_key();
            let tmp = dir.join("receipt.key.tmp");
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&k)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(k)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Takes an exclusive `flock` on `<dir>/LOCK` (creating the directory), or
/// fails naming the process that holds it. The lock goes with the process,
/// however it ends (kill -9 included), so a stale lock never blocks a start.
fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::io::AsRawFd;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join("LOCK");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock only takes a file descriptor we own for the call.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        anyhow::bail!(
            "data directory {} is in use by another sluice process (pid {}); stop it or choose another --data-dir",
            dir.display(),
            holder.trim()
        );
    }
    f.set_len(0)?;
    f.rewind()?;
    f.write_all(std::process::id().to_string().as_bytes())?;
    Ok(f)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.account_id.len() != 12 || !args.account_id.chars().all(|c| c.is_ascii_digit()) {
        anyhow::bail!("--account-id must be 12 digits, got {:?}", args.account_id);
    }
    let started = std::time::Instant::now();
    raise_open_files_limit(args.max_waiters);
    // Held until the process exits: a second server on the same data
    // directory would interleave its writes with ours and corrupt the log.
    let _dir_lock = if args.in_memory { None } else { Some(lock_data_dir(&args.data_dir)?) };
    let (store, log, key): (Arc<dyn Store>, Option<Arc<LogStore>>, [u8; 32]) = if args.in_memory {
        (Arc::new(MemoryStore::new()), None, random_key())
    } else {
        let dir = args.data_dir.clone();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating data directory {}", dir.display()))?;
        let key = receipt_key(&dir)?;
        let mut opts = LogOptions::new(Arc::new(StdIo));
        opts.fsync = args.fsync.0;
        match opts.fsync {
            FsyncPolicy::Always => {}
            FsyncPolicy::Interval(d) => tracing::warn!(
                "--fsync interval:{}: acknowledged writes survive a crash of sluice, but a power loss or kernel crash may lose those of the last {} ms",
                d.as_millis(),
                d.as_millis()
            ),
            FsyncPolicy::Never => tracing::warn!(
                "--fsync never: acknowledged writes survive a crash of sluice, but a power loss or kernel crash may lose everything written since the last segment end or checkpoint"
            ),
        }
        let log = tokio::task::spawn_blocking(move || {
            let log = LogStore::open(&dir, opts);
            // Recovery decodes the whole state once, on this thread and a
            // helper that has exited; give what it freed back to the system
            // now rather than keep it (about 60 bytes per stored message).
            // SAFETY: mi_collect only walks mimalloc's own heaps.
            unsafe { libmimalloc_sys::mi_collect(true) };
            log
        })
            .await?
            .map_err(|e| anyhow::anyhow!("opening the data directory {} failed: {e} (see `sluice salvage --help`)", args.data_dir.display()))?;
        let r = log.recovery_report();
        tracing::info!(data_dir = %args.data_dir.display(), recovery = ?r, "durable engine opened");
        (log.clone() as Arc<dyn Store>, Some(log), key)
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    // The clock starts no earlier than the latest time the data directory
    // holds, so that a restart with the wall clock set back leaves no stored
    // time in the future (RELIABILITY.md R15); from then on it follows
    // monotonic time only (R14).
    let clock = sluice_core::SystemClock::with_floor(store.time_floor_ms());
    if clock.start_ahead_of_wall_ms() > 0 {
        tracing::warn!(
            ahead_ms = clock.start_ahead_of_wall_ms(),
            "the wall clock is behind the latest time in the data directory; sluice's clock starts there instead"
        );
    }
    let sqs = Sqs::new(store.clone(), Arc::new(clock), SqsConfig { max_waiters: args.max_waiters, ..SqsConfig::new(local.to_string(), key) });
    let app = Arc::new(App { sqs: sqs.clone(), config: AppConfig { region: args.region.clone(), account_id: args.account_id.clone() } });
    match sluice_sqs::move_tasks::resume(&sqs, &args.account_id).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(tasks = n, "resumed message move tasks"),
        Err(e) => tracing::warn!(error = %e, "could not resume message move tasks"),
    }
    let maintenance = sluice_server::spawn_maintenance(&app);
    tracing::info!(
        listen = %local,
        engine = store.engine_name(),
        region = %args.region,
        ready_ms = started.elapsed().as_millis() as u64,
        "sluice ready"
    );
    sluice_server::serve(listener, app, shutdown_signal()).await?;
    maintenance.abort();
    if let Some(log) = log {
        if let Err(e) = log.close().await {
            tracing::error!(error = %e, "closing the data directory failed");
        }
    }
    tracing::info!("sluice stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, as servers do:
/// every connection (a parked long poll holds one) is a file descriptor, and
/// the usual soft limit of 1,024 would refuse connections long before
/// `--max-waiters`. Logs the limit, and warns when it is below the waiter cap.
fn raise_open_files_limit(max_waiters: usize) {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "could not read the open-files limit");
            return;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            } else {
                tracing::warn!(error = %std::io::Error::last_os_error(), "could not raise the open-files limit");
            }
        }
        tracing::info!(soft = lim.rlim_cur, was = before, hard = lim.rlim_max, "open-files limit");
        if (lim.rlim_cur as u128) < max_waiters as u128 {
            tracing::warn!(
                limit = lim.rlim_cur,
                max_waiters,
                "the open-files limit is below --max-waiters: connections will be refused before the waiter cap is reached"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = max_waiters;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
