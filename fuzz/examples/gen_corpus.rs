//! Regenerates the seed corpus (`corpus/<target>/seed-*`) and the libFuzzer
//! dictionaries (`dicts/`). Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus [target...]`
//! (with targets, only their seeds). The engine seeds differ slightly from run to run:
//! where the writer's group commits fall depends on thread timing.
//!
//! Seeds come from real traffic where there is some:
//! - `sqs_query`: the request bodies botocore 1.34.89's own query serializer produced
//!   (`crates/sluice-protocol/testdata/query_requests.json`, the fixture the decoder's
//!   unit tests use), plus the URL-addressed, presigned and malformed forms;
//! - `sqs_json`: the same inputs as SQS JSON 1.0 bodies with their `X-Amz-Target`;
//! - `engine_recovery`: the files a real `LogStore` wrote on `FaultIo` while running
//!   every kind of record (sends, receives, dead-lettering, deletes, visibility
//!   changes, FIFO deduplication, moves, move tasks, purge, queue deletion, expiry),
//!   closed cleanly, after a power cut (torn tail) and with a checkpoint;
//! - `engine_model`: operation sequences covering every operation, restarts, power
//!   cuts and checkpoints, and a few fixed pseudo-random ones.
//!
//! Only `seed-*` files are replaced; inputs kept from findings (`regress-*`) stay.

use bytes::Bytes;
use serde_json::Value;
use sluice_engine::{CutMode, FaultIo, FsyncPolicy, LogOptions, LogStore};
use sluice_fuzz::{FIX_CRCS, FIX_MARKERS};
use sluice_protocol::{Model, ServiceKind};
use sluice_sqs::receipt::ReceiptCodec;
use sluice_store::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T0: u64 = 1_700_000_000_000;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Replaces the `seed-*` files of one target's corpus.
fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("seed-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
    println!("{target}: {} seeds", seeds.len());
}

fn botocore_cases() -> Vec<Value> {
    let path = fuzz_dir().join("../crates/sluice-protocol/testdata/query_requests.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn query_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, case) in botocore_cases().iter().enumerate() {
        let name = format!("botocore-{}-{}-{i:02}", case["service"].as_str().unwrap(), case["operation"].as_str().unwrap());
        seeds.push((name, format!("/\n\n{}", case["body"].as_str().unwrap()).into_bytes()));
    }
    let auth = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x";
    let extra: [(&str, String); 7] = [
        ("url-addressed", format!("/000000000000/jobs?Action=ReceiveMessage\n{auth}\nMaxNumberOfMessages=10&AttributeName.1=All&WaitTimeSeconds=0")),
        ("presigned-get", "/?Action=ListQueues&Version=2012-11-05&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fsqs%2Faws4_request&QueueNamePrefix=a\n\n".into()),
        ("bad-integer", "/\n\nAction=ReceiveMessage&QueueUrl=q&MaxNumberOfMessages=ten".into()),
        ("missing-action", "/\n\nVersion=2012-11-05&QueueUrl=q".into()),
        ("invalid-action", "/\n\nAction=Nope&Version=2012-11-05".into()),
        ("empty-list", "/\n\nAction=GetQueueAttributes&QueueUrl=q&AttributeNames=".into()),
        ("sns-scope", "/\nAWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x\nAction=Subscribe&TopicArn=t&Protocol=sqs&ReturnSubscriptionArn=true&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true".into()),
    ];
    seeds.extend(extra.into_iter().map(|(n, s)| (n.to_owned(), s.into_bytes())));
    seeds
}

fn json_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, case) in botocore_cases().iter().enumerate().filter(|(_, c)| c["service"] == "sqs") {
        let op = case["operation"].as_str().unwrap();
        seeds.push((format!("sdk-{op}-{i:02}"), format!("AmazonSQS.{op}\n{}", case["input"]).into_bytes()));
    }
    let extra: [(&str, &str); 6] = [
        ("empty-body", "AmazonSQS.ListQueues\n"),
        ("wrong-type", "AmazonSQS.ChangeMessageVisibility\n{\"QueueUrl\":\"q\",\"ReceiptHandle\":\"r\",\"VisibilityTimeout\":\"30\"}"),
        ("null-in-list", "AmazonSQS.GetQueueAttributes\n{\"QueueUrl\":\"q\",\"AttributeNames\":[\"All\",null]}"),
        ("not-an-object", "AmazonSQS.ListQueues\n[1,2]"),
        ("unknown-target", "DynamoDB_20120810.ListTables\n{}"),
        ("kinesis", "Kinesis_20131202.ListStreams\n{\"Limit\":5}"),
    ];
    seeds.extend(extra.into_iter().map(|(n, s)| (n.to_owned(), s.as_bytes().to_vec())));
    seeds
}

fn xml_seeds() -> Vec<(String, Vec<u8>)> {
    let join = |parts: &[&[u8]]| parts.join(&0xFFu8);
    vec![
        ("plain".into(), join(&[b"hello", b"m-1", b"SenderId", b"AIDA", b"s", b"v", b"req-1", b"The specified queue does not exist.", b"AWS.SimpleQueueService.NonExistentQueue"])),
        ("markup".into(), join(&[b"a\r\nb & <c> \"d\" 'e' ]]>", b"<id>", b"&amp;", b"\"q\"", b"<x/>", b"&#xD;", b"r&d", b"bad <thing> & \x01 \r", b"C<o>de"])),
        ("controls".into(), join(&[b"\x00\x01\x08\x0b\x0c\x0e\x1f\x7f", b"\t\n\r", b"\x1b[31m", b"\xef\xbf\xbe\xef\xbf\xbf", b"\xed\xa0\x80", b"\xc2\x85\xe2\x80\xa8", b"\r", b"\x00", b"\x0b"])),
        ("unicode".into(), join(&[b"\xc3\xbcn\xc3\xafc\xc3\xb6d\xc3\xa9 \xf0\x9f\x98\x80", b"\xe4\xb8\xad", b"\xf4\x8f\xbf\xbf", b"\xee\x80\x80", b"k", b"v", b"", b"", b""])),
    ]
}

fn receipt_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, (key, queue, seq, generation)) in [([1u8; 32], 1u64, 1u64, 1u32), ([7; 32], 9, 42, 3), ([0xAB; 32], u64::MAX, u64::MAX, u32::MAX)].into_iter().enumerate() {
        let mut head = key.to_vec();
        head.extend_from_slice(&queue.to_le_bytes());
        head.extend_from_slice(&seq.to_le_bytes());
        head.extend_from_slice(&generation.to_le_bytes());
        head.push(i as u8 * 17);
        let handle = ReceiptCodec::new(key).encode(queue, Receipt { sequence_number: seq, generation });
        let mut valid = head.clone();
        valid.extend_from_slice(handle.as_bytes());
        seeds.push((format!("issued-{i}"), valid));
        let mut forged = head.clone();
        forged.extend_from_slice(b"AQAAAAAAAAABAAAAAAAAAAEAAAABAAAAAAAAAAAAAAAAAAAAAAA");
        seeds.push((format!("forged-{i}"), forged));
    }
    seeds.push(("empty".into(), Vec::new()));
    seeds
}

fn new_queue(name: &str, config: QueueConfig) -> NewQueue {
    NewQueue {
        name: QueueName::new("000000000000", name),
        region: "us-east-1".into(),
        attributes: BTreeMap::from([("VisibilityTimeout".to_owned(), config.visibility_timeout_secs.to_string())]),
        config,
        tags: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
        refuse_if_deleted_after_ms: 0,
    }
}

async fn create(s: &LogStore, name: &str, config: QueueConfig, now: u64) -> QueueId {
    match s.create_queue(new_queue(name, config), now).await.unwrap() {
        CreateOutcome::Created(i) => i.id,
        other => panic!("{other:?}"),
    }
}

fn message(id: u128, group: Option<&str>, dedup: Option<&str>, delay: u32) -> NewMessage {
    let body = format!("message {id}: {}", "body ".repeat((id % 7) as usize * 5));
    NewMessage { message_id: id, payload: Bytes::from(body), delay_secs: delay, group_id: group.map(str::to_owned), dedup_id: dedup.map(str::to_owned) }
}

/// How the scenario ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Close,
    PowerCut,
}

/// Runs every kind of record through a real store; returns the data directory's files.
async fn scenario(checkpoint: bool, end: End) -> Vec<(PathBuf, Vec<u8>)> {
    let fs = FaultIo::new();
    let opts = LogOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes: 4 << 10,
        checkpoint_every_bytes: None,
        checkpoint_every_records: None,
        idle_checkpoint_after: None,
        quiet_log_bytes: sluice_engine::limits::QUIET_LOG_BYTES_DEFAULT,
        enospc_retry: Duration::from_millis(20),
        body_cache_bytes: 0,
        ..LogOptions::new(fs.as_io())
    };
    let s = LogStore::open(Path::new("/data"), opts).unwrap();
    let mut now = T0;
    let dlq = create(&s, "dlq", QueueConfig::default(), now).await;
    let redrive = Redrive { dead_letter_target: QueueName::new("000000000000", "dlq"), max_receive_count: 1 };
    let std_q = create(&s, "jobs", QueueConfig { redrive: Some(redrive), ..Default::default() }, now).await;
    let fifo = create(&s, "f.fifo", QueueConfig { fifo: true, content_based_dedup: true, ..Default::default() }, now).await;
    let other = create(&s, "other", QueueConfig::default(), now).await;
    s.send(std_q, (1..=4).map(|i| message(i, None, None, 0)).collect(), now).await.unwrap();
    s.send(std_q, vec![message(5, None, None, 30)], now).await.unwrap();
    s.send(fifo, vec![message(6, Some("g1"), Some("d1"), 0), message(7, Some("g2"), Some("d2"), 0)], now).await.unwrap();
    s.send(fifo, vec![message(8, Some("g1"), Some("d1"), 0)], now).await.unwrap();
    let params = |max, vis| ReceiveParams { max, visibility_timeout_secs: vis, inflight_limit: 120_000, attempt_id: None };
    let got = s.receive(std_q, params(2, 0), now).await.unwrap();
    now += 1_000;
    // Received again past maxReceiveCount: dead-lettered.
    let _ = s.receive(std_q, params(2, 30), now).await.unwrap();
    let got2 = s.receive(std_q, params(2, 30), now).await.unwrap();
    if let Some(m) = got2.messages.first() {
        s.delete_messages(std_q, &[m.receipt], now).await.unwrap();
    }
    if let Some(m) = got2.messages.get(1) {
        s.change_visibility(std_q, &[(m.receipt, 5)], now).await.unwrap();
    }
    let _ = got;
    let f = s.receive(fifo, ReceiveParams { attempt_id: Some("a1".into()), ..params(10, 30) }, now).await.unwrap();
    if let Some(m) = f.messages.first() {
        s.delete_messages(fifo, &[m.receipt], now).await.unwrap();
    }
    if checkpoint {
        s.checkpoint().await.unwrap();
    }
    now += 1_000;
    s.move_messages(dlq, MoveDestination::OriginalSource, 10, now).await.unwrap();
    s.put_move_task(MoveTask {
        task_handle: "th-1".into(),
        source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
        destination_arn: None,
        max_per_second: Some(10),
        status: "COMPLETED".into(),
        moved: 1,
        to_move: 1,
        started_ms: now,
        failure_reason: None,
    })
    .await
    .unwrap();
    s.send(other, vec![message(9, None, None, 0)], now).await.unwrap();
    s.purge(other, now).await.unwrap();
    s.delete_queue(other, now).await.unwrap();
    let attrs = BTreeMap::from([("VisibilityTimeout".to_owned(), "45".to_owned())]);
    let config = QueueConfig { visibility_timeout_secs: 45, retention_secs: 60, ..Default::default() };
    s.update_queue(std_q, QueueUpdate { attributes: Some((attrs, config)), tags: None, last_purge_ms: None }, now).await.unwrap();
    s.send(std_q, vec![message(10, None, None, 0)], now).await.unwrap();
    now += 120_000;
    s.expire(now).await.unwrap();
    s.send(std_q, (11..=13).map(|i| message(i, None, None, 0)).collect(), now).await.unwrap();
    match end {
        End::Close => s.close().await.unwrap(),
        End::PowerCut => {
            fs.power_cut(CutMode::KeepPrefix, false, 7);
            drop(s);
            fs.reboot();
        }
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs.files().into_iter().filter_map(|(p, _)| fs.read_file(&p).map(|b| (p, b))).collect();
    files.sort();
    files
}

/// One engine input: the flag byte, then the files.
fn engine_input(flags: u8, files: &[&(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![flags];
    for (_, bytes) in files {
        out.extend_from_slice(bytes);
    }
    out
}

async fn engine_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let ext = |p: &PathBuf| p.extension().and_then(|e| e.to_str()).unwrap_or_default().to_owned();
    let log = scenario(false, End::Close).await;
    let all: Vec<_> = log.iter().collect();
    seeds.push(("log-closed".into(), engine_input(0, &all)));
    seeds.push(("log-closed-fixed".into(), engine_input(FIX_CRCS | FIX_MARKERS, &all)));
    for (i, f) in all.iter().enumerate() {
        seeds.push((format!("log-segment-{}", i + 1), engine_input(FIX_CRCS | FIX_MARKERS, &[f])));
    }
    let torn = scenario(false, End::PowerCut).await;
    seeds.push(("log-power-cut".into(), engine_input(0, &torn.iter().collect::<Vec<_>>())));
    let ck = scenario(true, End::Close).await;
    let all: Vec<_> = ck.iter().collect();
    seeds.push(("checkpoint-and-log".into(), engine_input(0, &all)));
    seeds.push(("checkpoint-and-log-fixed".into(), engine_input(FIX_CRCS | FIX_MARKERS, &all)));
    let ckpt_only: Vec<_> = ck.iter().filter(|(p, _)| ext(p) != "seg").collect();
    seeds.push(("checkpoint-only".into(), engine_input(FIX_CRCS, &ckpt_only)));
    // A damaged checkpoint: recovery must reject it and fall back to the log.
    let mut damaged = ck.clone();
    if let Some((_, b)) = damaged.iter_mut().find(|(p, _)| ext(p) == "ckpt") {
        let at = b.len() / 2;
        b[at] ^= 0x10;
    }
    seeds.push(("checkpoint-damaged".into(), engine_input(0, &damaged.iter().collect::<Vec<_>>())));
    let ck_torn = scenario(true, End::PowerCut).await;
    seeds.push(("checkpoint-power-cut".into(), engine_input(0, &ck_torn.iter().collect::<Vec<_>>())));
    seeds.push(("header-only".into(), engine_input(0, &[&(PathBuf::new(), sluice_engine::format::segment_header(1).to_vec())])));
    seeds
}

/// `engine_model` inputs: four bytes per operation (see the target's opcode table).
fn model_seeds() -> Vec<(String, Vec<u8>)> {
    let ops = |ops: &[[u8; 4]]| ops.concat();
    let mut seeds = vec![
        // Create, send, receive, delete, restart, counts.
        ("standard".to_owned(), ops(&[[0, 0, 0, 0], [4, 0, 1, 0], [7, 0, 1, 1], [9, 0, 0, 0], [18, 0, 0, 0], [16, 0, 0, 0]])),
        // FIFO with deduplication and attempt ids across a power cut.
        ("fifo".to_owned(), ops(&[[0, 1, 1, 0], [4, 0, 0, 0x40], [4, 0, 0, 0x40], [7, 0, 0x81, 1], [18, 1, 1, 1], [7, 0, 0x81, 1], [11, 0, 0, 5], [17, 0xff, 0xff, 0]])),
        // A dead-letter queue, dead-lettering by receives, a move back, a checkpoint, a cut.
        ("dead-letter".to_owned(), ops(&[[0, 2, 0, 0], [0, 0, 2, 2], [4, 1, 2, 0], [7, 1, 3, 0], [7, 1, 3, 0], [13, 0, 0, 0], [19, 0, 0, 0], [18, 1, 2, 0], [15, 1, 1, 0], [16, 0, 0, 0]])),
        // Delays, purge, queue deletion and re-creation, expiry after short retention.
        ("lifecycle".to_owned(), ops(&[[0, 3, 0, 0], [4, 0, 0x82, 2], [3, 0, 10, 1], [17, 0x60, 0xea, 0], [14, 0, 0, 0], [12, 0, 0, 0], [2, 0, 0, 0], [0, 3, 0, 0], [18, 0, 0, 0]])),
    ];
    // Pseudo-random sequences (a fixed LCG), 64 operations each.
    let mut x: u64 = 0x5eed;
    for i in 0..4 {
        let bytes = (0..256)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        seeds.push((format!("random-{i}"), bytes));
    }
    seeds
}

/// libFuzzer dictionary entries from the SQS model: operation and member names.
fn dictionary(tokens: impl IntoIterator<Item = String>) -> String {
    let set: BTreeSet<String> = tokens.into_iter().collect();
    let escape = |t: &str| -> String {
        t.bytes()
            .map(|b| match b {
                b'"' | b'\\' => format!("\\{}", b as char),
                0x20..=0x7e => (b as char).to_string(),
                _ => format!("\\x{b:02X}"),
            })
            .collect()
    };
    set.iter().map(|t| format!("\"{}\"\n", escape(t))).collect()
}

fn model_names() -> Vec<String> {
    let model = Model::get(ServiceKind::Sqs);
    let mut names: Vec<String> = model.operations().map(|o| o.name.clone()).collect();
    for shape in model.shapes() {
        for m in &shape.members {
            names.push(m.name.clone());
            if let Some(l) = &m.location_name {
                names.push(l.clone());
            }
        }
        if let Some(l) = shape.member.as_ref().and_then(|m| m.location_name.clone()) {
            names.push(l);
        }
        names.extend(shape.enum_values.iter().cloned());
    }
    names
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Targets named on the command line, else all of them.
    let only: Vec<String> = std::env::args().skip(1).collect();
    let want = |t: &str| only.is_empty() || only.iter().any(|o| o == t);
    if want("sqs_query") {
        write_seeds("sqs_query", &query_seeds());
    }
    if want("sqs_json") {
        write_seeds("sqs_json", &json_seeds());
    }
    if want("xml_escape") {
        write_seeds("xml_escape", &xml_seeds());
    }
    if want("receipt_handle") {
        write_seeds("receipt_handle", &receipt_seeds());
    }
    if want("engine_recovery") {
        write_seeds("engine_recovery", &engine_seeds().await);
    }
    if want("engine_model") {
        write_seeds("engine_model", &model_seeds());
    }
    if !only.is_empty() {
        return;
    }

    let dicts = fuzz_dir().join("dicts");
    std::fs::create_dir_all(&dicts).unwrap();
    let names = model_names();
    let query = names.iter().flat_map(|n| [n.clone(), format!("{n}=")]).chain(
        ["Action=", "Version=2012-11-05", "&", ".1", ".2", ".member.", ".entry.", ".Name", ".Value", "%", "="].map(str::to_owned),
    );
    std::fs::write(dicts.join("sqs_query.dict"), dictionary(query)).unwrap();
    let json = names.iter().map(|n| format!("\"{n}\":")).chain(["AmazonSQS.", "null", "true", "[]", "{}", "1e9"].map(str::to_owned)).chain(
        Model::get(ServiceKind::Sqs).operations().map(|o| format!("AmazonSQS.{}\n", o.name)),
    );
    std::fs::write(dicts.join("sqs_json.dict"), dictionary(json)).unwrap();
    println!("dictionaries written");
}
