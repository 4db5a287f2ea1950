//! Goal: the scenarios run end to end over real HTTP and count every message exactly, in both
//! wire protocols, without a server: against the ceiling stub started in-process.
//! Method: start a `Stub`, run `sqs-send` and `sqs-roundtrip` (and `sqs-fifo`, `sqs-backlog`,
//! `ceiling`) through the public `run()` with a small `--count`, and assert the counts.
//! No timing assertions: speed belongs to `sluice bench` itself.

use sluice_bench::{run, BenchArgs, Report, Stub, StubConfig};

fn args(list: &[&str]) -> BenchArgs {
    let mut all = list.to_vec();
    // Keep the tests quiet and skip the in-process ceiling: these check counts, not speed.
    all.extend(["--quiet", "--ceiling-duration", "0"]);
    BenchArgs::try_parse_from(all).expect("valid arguments")
}

async fn run_ok(list: &[&str]) -> Report {
    let r = run(args(list)).await.expect("the run completes");
    assert_eq!(r.errors, 0, "errors: {:?}", r.error_samples);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_send_against_the_stub_sends_exactly_the_count() {
    let stub = Stub::start(StubConfig::default()).unwrap();
    let url = stub.url();
    for protocol in ["json", "query"] {
        for batch in ["10", "1"] {
            let r = run_ok(&[
                "sqs-send",
                "--endpoint",
                &url,
                "--protocol",
                protocol,
                "--batch",
                batch,
                "--count",
                "1005",
                "--connections",
                "3",
            ])
            .await;
            assert_eq!((r.sent, r.send_failed, r.received), (1005, 0, 0), "{protocol} batch {batch}");
            assert_eq!(r.throughput.messages, 1005);
            let op = if batch == "1" { "SendMessage" } else { "SendMessageBatch" };
            let expected_requests = if batch == "1" { 1005 } else { 101 };
            assert_eq!(r.latency[op].count, expected_requests, "{protocol} batch {batch}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_roundtrip_against_the_echo_stub_delivers_everything_once() {
    let stub = Stub::start(StubConfig { echo: true }).unwrap();
    let url = stub.url();
    for protocol in ["json", "query"] {
        let r = run_ok(&[
            "sqs-roundtrip",
            "--endpoint",
            &url,
            "--protocol",
            protocol,
            "--count",
            "2000",
            "--connections",
            "4",
            "--consumers",
            "3",
            "--message-size",
            "200",
        ])
        .await;
        let a = r.accounting.expect("round trips account");
        assert_eq!((r.sent, r.received, r.deleted, r.foreign), (2000, 2000, 2000, 0), "{protocol}");
        assert_eq!(
            (a.acknowledged, a.delivered, a.lost, a.duplicates, a.unacknowledged_delivered),
            (2000, 2000, 0, 0, 0)
        );
        assert_eq!(r.latency["end-to-end"].count, 2000);
        assert_eq!(r.throughput.messages, 2000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_fifo_against_the_echo_stub_accounts_every_message() {
    // The stub is no FIFO queue: only counts are asserted, not order.
    let stub = Stub::start(StubConfig { echo: true }).unwrap();
    let r =
        run_ok(&["sqs-fifo", "--endpoint", &stub.url(), "--count", "500", "--groups", "5", "--consumers", "1"]).await;
    let a = r.accounting.unwrap();
    assert_eq!((a.acknowledged, a.delivered, a.lost, a.duplicates), (500, 500, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_backlog_against_the_echo_stub_fills_and_probes() {
    let stub = Stub::start(StubConfig { echo: true }).unwrap();
    let r = run_ok(&["sqs-backlog", "--endpoint", &stub.url(), "--backlog", "3000", "--count", "5"]).await;
    let b = r.backlog.expect("backlog figures");
    assert_eq!((b.filled, b.depth_reported, b.wakeup_misses), (3000, Some(3000), 0));
    for probe in ["at depth: ReceiveMessage(10)", "at depth: SendMessage", "long-poll wake-up"] {
        assert_eq!(r.latency[probe].count, 5, "{probe}");
    }
    // Fill, 5 sends at depth, 5 wake-up sends.
    assert_eq!(r.sent, 3010);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceiling_scenario_runs_its_shape_and_is_its_own_ceiling() {
    let r = run_ok(&["ceiling", "--shape", "sqs-roundtrip", "--count", "300"]).await;
    assert_eq!(
        (r.scenario.as_str(), r.shape.as_deref(), r.endpoint.as_str()),
        ("ceiling", Some("sqs-roundtrip"), "stub")
    );
    assert_eq!(r.accounting.unwrap().delivered, 300);
    assert_eq!(r.ceiling.unwrap().fraction, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_report_their_share_of_an_in_process_ceiling() {
    let stub = Stub::start(StubConfig::default()).unwrap();
    let list = ["sqs-send", "--endpoint", &stub.url(), "--count", "400", "--quiet"];
    let r = run(BenchArgs::try_parse_from(list).unwrap()).await.unwrap();
    let c = r.ceiling.expect("a ceiling was measured first");
    assert!(c.source.contains("400 messages"), "{}", c.source);
    assert!(c.msgs_per_sec > 0.0 && c.fraction > 0.0);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_not_a_hang() {
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let e = run(args(&["sqs-send", "--endpoint", "http://127.0.0.1:9", "--count", "10"])).await.unwrap_err();
    assert!(e.to_string().contains("CreateQueue"), "{e}");
}
