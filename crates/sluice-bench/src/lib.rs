//! `sluice bench`: a load generator for SQS-compatible endpoints (sluice or any other server),
//! with a stub built in so every run can be set against the ceiling of the client and the
//! machine it runs on.
//!
//! The `sluice` binary flattens [`BenchArgs`] under its `bench` subcommand and calls [`run`].
//! Pieces: `args` (command line), `client` (signed SQS requests over hyper, JSON or query),
//! `sigv4` (signing), `driver` (run context, producer and consumer loops, progress),
//! `scenarios` (one module per scenario), `stub` (the ceiling server), `tracker` (body header,
//! lost/duplicate/order accounting), `stats` (HDR histograms), `procfs` (server CPU and RSS),
//! `report` (text and JSON).
//!
//! The ceiling: unless `--ceiling-msgs-per-sec` gives one from an earlier `ceiling` run, each
//! scenario first runs its own shape (same protocol, connections, consumers, batch and size,
//! no rate limit) against an in-process stub for `--ceiling-duration` (or `--count` messages),
//! then runs against the endpoint; the report gives the run's headline as a fraction of it.
//! The target server is idle meanwhile, so the two do not compete for the cores.

mod args;
mod client;
mod driver;
mod procfs;
mod report;
mod scenarios;
mod sigv4;
mod stats;
mod stub;
mod tracker;

pub use args::{parse_duration, BenchArgs, ScenarioKind};
pub use client::{CallError, Protocol, Received, SqsClient};
pub use procfs::ProcessUsage;
pub use report::{BacklogFigures, Ceiling, Report, Settings, WaiterFigures};
pub use sigv4::{Credentials, Signature, Signer};
pub use stats::{LatencySummary, Throughput};
pub use stub::{Stub, StubConfig};
pub use tracker::Accounting;

use driver::Bench;

/// Runs the benchmark the arguments describe, prints its report to stdout (text, or JSON with
/// `--json`; nothing with `--quiet`) and returns it.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    args.validate()?;
    // Every connection is a file descriptor; sqs-waiters holds one per waiter.
    let nofile = procfs::raise_open_files_limit();
    if args.scenario == ScenarioKind::SqsWaiters {
        if let Some(n) = nofile.filter(|n| (*n as usize) < args.waiters + args.connections + 64) {
            anyhow::bail!(
                "the open-files limit of this process is {n}, too low for {} waiters; raise the hard limit (ulimit -Hn)",
                args.waiters
            );
        }
    }
    let report = match args.scenario {
        ScenarioKind::Ceiling => {
            let mut r = against_stub(&args, args.shape, false).await?;
            r.ceiling =
                Some(Ceiling { msgs_per_sec: r.throughput.msgs_per_sec, source: "this run".to_owned(), fraction: 1.0 });
            r
        }
        kind => {
            let ceiling = match args.ceiling_msgs_per_sec {
                Some(c) => Some((c, "given with --ceiling-msgs-per-sec".to_owned())),
                None if args.ceiling_duration.is_zero() => None,
                // Parked long polls have no throughput a stub could bound: its receives
                // answer at once, so there is no ceiling to set them against.
                None if kind == ScenarioKind::SqsWaiters => None,
                None => {
                    let r = against_stub(&args, kind, true).await?;
                    let how = match args.count {
                        Some(_) => format!("{} messages", r.throughput.messages),
                        None => format!("{:.1} s", r.throughput.secs),
                    };
                    Some((r.throughput.msgs_per_sec, format!("measured in-process just before, {how}")))
                }
            };
            let endpoint = args.endpoint.clone().expect("validated: non-ceiling scenarios have an endpoint");
            let bench = Bench::new(args.clone(), endpoint, kind.name().to_owned())?;
            let mut r = scenarios::run(&bench, kind).await?;
            r.ceiling = ceiling.map(|(msgs_per_sec, source)| Ceiling {
                msgs_per_sec,
                source,
                fraction: if msgs_per_sec > 0.0 { r.throughput.msgs_per_sec / msgs_per_sec } else { 0.0 },
            });
            r
        }
    };
    if !args.quiet {
        if args.json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.to_human());
        }
    }
    Ok(report)
}

/// Runs `shape` against a fresh in-process stub with the load settings of `args`.
/// `as_ceiling_of` a scenario: no rate limit, `--ceiling-duration` instead of `--duration`.
async fn against_stub(args: &BenchArgs, shape: ScenarioKind, as_ceiling_of: bool) -> anyhow::Result<Report> {
    // The backlog's headline is its fill, a send shape.
    let (shape, count) = match shape {
        ScenarioKind::SqsBacklog => (ScenarioKind::SqsSend, args.count.map(|_| args.backlog)),
        // The fair scenario's requests are a round trip's.
        ScenarioKind::SqsFair => (ScenarioKind::SqsRoundtrip, args.count),
        s => (s, args.count),
    };
    let stub = Stub::start(StubConfig { echo: shape.receives() })?;
    let mut a = args.clone();
    a.endpoint = Some(stub.url());
    a.server_pid = None;
    a.queue = None;
    a.keep_queue = false;
    a.count = count;
    if as_ceiling_of {
        a.rate = None;
        a.duration = args.ceiling_duration;
    }
    let bench = Bench::new(a, stub.url(), format!("ceiling {}", shape.name()))?;
    let result = scenarios::run(&bench, shape).await;
    drop(bench);
    // Stopping the stub joins its thread; keep that off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(stub)).await;
    let mut r = result?;
    r.scenario = ScenarioKind::Ceiling.name().to_owned();
    r.shape = Some(shape.name().to_owned());
    r.endpoint = "stub".to_owned();
    Ok(r)
}
