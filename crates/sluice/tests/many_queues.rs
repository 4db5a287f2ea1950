//! R17 (RELIABILITY.md): 10,000 queues on the durable engine, used and restarted.
//!
//! Goal: every queue comes back after a graceful restart and after SIGKILL with its
//! attributes, tags and message; ListQueues pagination (MaxResults / NextToken) returns every
//! queue exactly once; the server keeps no file descriptor (open fds stay < 1,000) and no
//! thread per queue.
//!
//! Method: the real binary, driven through `aws-sdk-sqs` with a fixed number of concurrent
//! requests. Queue `i` is FIFO when `i % 4 == 0`, has non-default attributes when
//! `i % 10 == 0`, tags when `i % 7 == 0`, and one message when `i % 25 == 0`. The count is
//! `SLUICE_R17_QUEUES` (default 10,000; CI may lower it on slow machines).
//!
//! Figures, printed and never asserted (speed belongs to the benchmarks): RSS growth per idle
//! queue (a fresh process with the queues against a fresh empty one, both just ready), and
//! restart-to-ready time. Run with `--nocapture` to see them; use `--release` for the figures
//! written down in docs/benchmarks.md.

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use sluice_testkit::{open_fds, proc_status, Engine, TestServer};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Requests in flight at once.
const PARALLEL: usize = 32;
/// Ceiling on the server's open fds (R17): none per queue.
const FDS_MAX: u64 = 1_000;
/// Ceiling on the server's threads: runtime workers, blocking pool, the engine's writer and
/// checkpointer; a thread per queue would be thousands.
const THREADS_MAX: u64 = 64;

fn queue_count() -> usize {
    std::env::var("SLUICE_R17_QUEUES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// What queue `i` should look like.
struct Expect {
    name: String,
    fifo: bool,
    attributes: Vec<(&'static str, String)>,
    tags: Vec<(String, String)>,
    message: bool,
}

fn expect(i: usize) -> Expect {
    let fifo = i.is_multiple_of(4);
    let name = if fifo { format!("r17-{i:05}.fifo") } else { format!("r17-{i:05}") };
    let mut attributes = Vec::new();
    if fifo {
        attributes.push(("FifoQueue", "true".to_string()));
    }
    if i.is_multiple_of(10) {
        attributes.push(("VisibilityTimeout", (i % 43_200).to_string()));
        // Long enough that no message expires while the test runs.
        attributes.push(("MessageRetentionPeriod", (3_600 + i % 1_000).to_string()));
        attributes.push(("DelaySeconds", "0".to_string()));
    }
    let tags = if i.is_multiple_of(7) { vec![("team".to_string(), format!("t{}", i % 13)), ("idx".to_string(), i.to_string())] } else { vec![] };
    Expect { name, fifo, attributes, tags, message: i.is_multiple_of(25) }
}

/// Runs `f(i)` for every `i < n`, `PARALLEL` at a time.
async fn for_each<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    f(i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
}

/// Checks the server's fds and threads against the ceilings; returns (fds, threads, RSS KiB).
fn footprint(s: &TestServer, when: &str) -> (u64, u64, u64) {
    let pid = s.pid().expect("running");
    let (fds, threads, rss) = (open_fds(pid).expect("/proc/PID/fd"), proc_status(pid, "Threads").expect("Threads"), proc_status(pid, "VmRSS").expect("VmRSS"));
    println!("r17 {when}: {fds} open fds, {threads} threads, RSS {:.1} MiB", rss as f64 / 1024.0);
    assert!(fds < FDS_MAX, "{when}: {fds} open fds");
    assert!(threads < THREADS_MAX, "{when}: {threads} threads");
    (fds, threads, rss)
}

async fn create_all(c: &Client, n: usize) {
    let c = c.clone();
    for_each(n, move |i| {
        let c = c.clone();
        async move {
            let e = expect(i);
            let mut req = c.create_queue().queue_name(&e.name);
            for (k, v) in &e.attributes {
                req = req.attributes(QueueAttributeName::from(*k), v);
            }
            for (k, v) in &e.tags {
                req = req.tags(k, v);
            }
            let url = req.send().await.unwrap_or_else(|err| panic!("CreateQueue {}: {err:?}", e.name)).queue_url.unwrap();
            if e.message {
                let mut send = c.send_message().queue_url(&url).message_body(format!("hello {i}"));
                if e.fifo {
                    send = send.message_group_id("g").message_deduplication_id(format!("d{i}"));
                }
                send.send().await.unwrap_or_else(|err| panic!("SendMessage {}: {err:?}", e.name));
            }
        }
    })
    .await;
}

/// Every queue with its attributes, tags and message count.
async fn check_all(c: &Client, endpoint: &str, n: usize) {
    let c = c.clone();
    let endpoint = endpoint.to_string();
    for_each(n, move |i| {
        let (c, e) = (c.clone(), expect(i));
        let url = format!("{endpoint}/000000000000/{}", e.name);
        async move {
            let got = c
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap_or_else(|err| panic!("GetQueueAttributes {}: {err:?}", e.name));
            let attrs: HashMap<String, String> =
                got.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
            for (k, v) in &e.attributes {
                assert_eq!(attrs.get(*k), Some(v), "{} attribute {k}", e.name);
            }
            assert_eq!(attrs.contains_key("FifoQueue"), e.fifo, "{}", e.name);
            let depth = attrs.get("ApproximateNumberOfMessages").map(String::as_str);
            assert_eq!(depth, Some(if e.message { "1" } else { "0" }), "{} depth", e.name);
            if !e.tags.is_empty() {
                let tags = c.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap_or_default();
                let tags: BTreeMap<_, _> = tags.into_iter().collect();
                let want: BTreeMap<_, _> = e.tags.iter().cloned().collect();
                assert_eq!(tags, want, "{} tags", e.name);
            }
        }
    })
    .await;
}

/// Pages through ListQueues with `page` results at a time; every queue exactly once, in order.
async fn check_pagination(c: &Client, n: usize, page: i32) {
    let mut seen: Vec<String> = Vec::with_capacity(n);
    let mut token = None;
    let mut pages = 0;
    loop {
        let r = c.list_queues().max_results(page).set_next_token(token).send().await.expect("ListQueues");
        let urls = r.queue_urls.unwrap_or_default();
        assert!(urls.len() <= page as usize);
        seen.extend(urls.into_iter().map(|u| u.rsplit('/').next().unwrap().to_string()));
        pages += 1;
        token = r.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut want: Vec<String> = (0..n).map(|i| expect(i).name).collect();
    want.sort();
    assert_eq!(seen.len(), n, "ListQueues with MaxResults {page} returned {} names", seen.len());
    assert_eq!(seen, want, "ListQueues with MaxResults {page}: every queue exactly once, in name order");
    assert_eq!(pages, n.div_ceil(page as usize).max(1), "pages of {page}");
}

async fn check_everything(s: &TestServer, n: usize, when: &str) {
    let c = s.sqs().await;
    let t = Instant::now();
    check_all(&c, &s.endpoint(), n).await;
    check_pagination(&c, n, 1_000).await;
    check_pagination(&c, n, 333).await;
    println!("r17 {when}: {n} queues checked in {:.1} s", t.elapsed().as_secs_f64());
    footprint(s, when);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_many_queues_when_restarted_gracefully_or_killed_should_keep_every_queue_without_per_queue_fds_or_threads()
{
    let n = queue_count();
    let dir = tempfile::tempdir().expect("data directory");
    let bin = env!("CARGO_BIN_EXE_sluice");
    let mut s = TestServer::start(bin.as_ref(), Engine::Durable(dir.path().to_path_buf()), &[]);
    let (_, _, rss_empty) = footprint(&s, "empty, just ready");

    let c = s.sqs().await;
    let t = Instant::now();
    create_all(&c, n).await;
    println!("r17: created {n} queues ({} with a message) in {:.1} s", n.div_ceil(25), t.elapsed().as_secs_f64());
    let (_, _, rss_created) = footprint(&s, "after creating");
    check_everything(&s, n, "before any restart").await;

    s.stop();
    let t = Instant::now();
    s.restart();
    let graceful_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (_, _, rss_restarted) = footprint(&s, "just ready after a graceful restart");
    check_everything(&s, n, "after a graceful restart").await;

    let t = Instant::now();
    s.restart(); // SIGKILL, then start again.
    let killed_ms = t.elapsed().as_secs_f64() * 1000.0;
    footprint(&s, "just ready after SIGKILL");
    check_everything(&s, n, "after SIGKILL").await;

    let per_queue = |rss: u64| (rss.saturating_sub(rss_empty)) as f64 * 1024.0 / n as f64;
    println!(
        "r17 figures: {n} queues; RSS growth per idle queue {:.0} B (fresh process, just ready) and {:.0} B (the process that created them); restart to ready {graceful_ms:.0} ms after a graceful stop, {killed_ms:.0} ms after SIGKILL (process start included)",
        per_queue(rss_restarted),
        per_queue(rss_created),
    );
}
