//! `sluice bench` against the real server: each SQS scenario runs to a small
//! fixed count and its accounting is exact (every acknowledged message
//! delivered, none lost, no FIFO order violation). Speed is not asserted here;
//! it is measured by the benchmark and written to docs/benchmarks.md.

use clap::Parser;
use sluice_bench::BenchArgs;
use sluice_testkit::{Engine, TestServer};

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: BenchArgs,
}

async fn run(server: &TestServer, argv: &[&str]) -> sluice_bench::Report {
    let endpoint = server.endpoint();
    let mut full = vec!["bench"];
    full.extend_from_slice(argv);
    full.extend_from_slice(&["--endpoint", &endpoint, "--quiet", "--ceiling-duration", "0"]);
    let w = Wrap::try_parse_from(full).expect("bench arguments");
    sluice_bench::run(w.args).await.expect("bench run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_and_fifo_scenarios_account_for_every_message() {
    let s = TestServer::start(env!("CARGO_BIN_EXE_sluice").as_ref(), Engine::DurableTemp, &[]);
    let r = run(&s, &["sqs-roundtrip", "--count", "2000", "--connections", "2", "--consumers", "2"]).await;
    let a = r.accounting.expect("round trip accounting");
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
    assert_eq!(a.acknowledged, 2000);
    assert_eq!(a.delivered, 2000);
    assert_eq!(a.lost, 0);
    assert_eq!(a.duplicates, 0);

    let r = run(&s, &["sqs-fifo", "--count", "1000", "--connections", "2", "--consumers", "2"]).await;
    let a = r.accounting.expect("fifo accounting");
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
    assert_eq!(a.acknowledged, 1000);
    assert_eq!(a.delivered, 1000);
    assert_eq!(a.lost, 0);
    assert_eq!(a.order_violations, 0);

    let r = run(&s, &["sqs-send", "--count", "500", "--connections", "2"]).await;
    assert_eq!(r.sent, 500);
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);

    // Fair queues: the quiet tenant's messages are all delivered and measured apart.
    let r = run(&s, &["sqs-fair", "--count", "2000", "--flood", "1000", "--quiet-rate", "200", "--connections", "3", "--consumers", "2"]).await;
    let a = r.accounting.expect("fair accounting");
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
    assert_eq!(a.lost, 0);
    assert_eq!(a.delivered, a.acknowledged);
    assert_eq!(r.latency["end-to-end quiet tenant"].count, 20);
    assert!(r.latency["end-to-end noisy tenant"].count >= 2000);

    let r = run(&s, &["sqs-backlog", "--backlog", "3000", "--count", "20", "--connections", "2"]).await;
    let b = r.backlog.expect("backlog figures");
    assert_eq!(b.filled, 3000);
    assert!(b.depth_reported.is_some_and(|d| d >= 3000), "{:?}", b.depth_reported);
    assert_eq!(b.wakeup_misses, 0);
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
}

/// R18 in small: every send wakes exactly one parked waiter with its message, none is lost,
/// no waiter answers empty before its wait ends, and the server runs no thread per waiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_scenario_wakes_exactly_one_waiter_per_send() {
    let s = TestServer::start(env!("CARGO_BIN_EXE_sluice").as_ref(), Engine::DurableTemp, &[]);
    let pid = s.pid().expect("running").to_string();
    let argv = ["sqs-waiters", "--waiters", "200", "--queues", "20", "--wait-secs", "8", "--connections", "4"];
    let mut argv = argv.to_vec();
    argv.extend_from_slice(&["--server-pid", &pid]);
    let r = run(&s, &argv).await;
    let w = r.waiters.expect("waiter figures");
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
    assert_eq!(w.parked_reported, Some(200), "the server reported every waiter parked before the sends");
    assert_eq!(w.sends, 20);
    assert_eq!(w.woke_exactly_one, 20);
    assert_eq!((w.lost, w.left_in_queue, w.duplicates), (0, 0, 0));
    assert_eq!((w.empty_early, w.refused), (0, 0));
    assert_eq!(w.empty_at_wait_end, 180);
    assert_eq!(r.latency["long-poll wake-up"].count, 20);
    assert_eq!(r.latency["SendMessage"].count, 20);
    // Threads are the runtime's workers, the blocking pool and the engine's own few; a
    // thread per waiter would be at least 200.
    let threads = w.server_threads_parked.expect("server threads read from /proc");
    assert!(threads < 64, "{threads} server threads with 200 waiters parked");
    assert!(w.server_fds_parked.expect("server fds read from /proc") >= 200, "a connection per waiter");
}
