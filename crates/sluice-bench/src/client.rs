//! A small SQS client for load generation: the handful of operations the scenarios use, over
//! AWS JSON 1.0 or the query protocol, SigV4-signed, on a keep-alive hyper connection pool.
//!
//! It is deliberately not an SDK: no retries (a failure is a measurement), no MD5 checks (the
//! body header in `tracker.rs` identifies each message), and it decodes only the response
//! fields the bench reads. Plain `http://` endpoints only.

use crate::sigv4::{Credentials, Signer};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// How long any request may take beyond its long-poll wait before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The SQS API version the query protocol names.
const SQS_VERSION: &str = "2012-11-05";
/// Batch entry ids: the bench numbers entries `0..n` in every batch.
const ENTRY_IDS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/// Most entries in one SQS batch.
pub const BATCH_ENTRIES_MAX: usize = 10;

/// The wire protocol requests are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Action>`), what current SDKs send.
    Json,
    /// The query protocol (form-encoded `Action=...`, XML responses), what older SDKs send.
    Query,
}

impl Protocol {
    /// The protocol's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::Query => "query",
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The connection or the HTTP exchange failed.
    Transport(String),
    /// No complete answer within the timeout.
    Timeout,
    /// The server answered with an error.
    Aws {
        /// HTTP status.
        status: u16,
        /// AWS error code (the part after `#` for JSON `__type`s).
        code: String,
        /// The error message.
        message: String,
    },
    /// The answer could not be decoded.
    Decode(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "transport: {e}"),
            CallError::Timeout => write!(f, "timed out"),
            CallError::Aws { status, code, message } => write!(f, "{code} ({status}): {message}"),
            CallError::Decode(e) => write!(f, "undecodable response: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// One entry of a send.
#[derive(Debug, Clone, Copy)]
pub struct SendEntry<'a> {
    /// The message body.
    pub body: &'a str,
    /// `MessageGroupId` (FIFO queues).
    pub group: Option<&'a str>,
    /// `MessageDeduplicationId` (FIFO queues).
    pub dedup: Option<&'a str>,
}

/// The result of a batch call: which entries (by index in the request) succeeded or failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Indexes of the entries that succeeded.
    pub ok: Vec<usize>,
    /// Indexes of the entries that failed, with their error code.
    pub failed: Vec<(usize, String)>,
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The body.
    pub body: String,
    /// The receipt handle to delete it with.
    pub receipt_handle: String,
}

/// A signed SQS client for one endpoint.
#[derive(Debug)]
pub struct SqsClient {
    http: Client<HttpConnector, Full<Bytes>>,
    base: Uri,
    host: HeaderValue,
    host_str: String,
    protocol: Protocol,
    signer: Signer,
}

impl SqsClient {
    /// A client for `endpoint` (`http://host:port`), signing with `credentials`.
    pub fn new(endpoint: &str, protocol: Protocol, credentials: Credentials) -> Result<Self, CallError> {
        let uri: Uri = endpoint.parse().map_err(|e| CallError::Transport(format!("bad endpoint {endpoint:?}: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(CallError::Transport(format!("endpoint {endpoint:?} must be http://host:port")));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| CallError::Transport(format!("endpoint {endpoint:?} has no host")))?
            .to_string();
        let base: Uri = format!("http://{authority}/").parse().map_err(|e| CallError::Transport(format!("{e}")))?;
        let mut connector = HttpConnector::new();
        // Requests are small and latency is measured: never let Nagle hold a write back.
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(Self {
            http,
            base,
            host: HeaderValue::from_str(&authority).map_err(|e| CallError::Transport(e.to_string()))?,
            host_str: authority,
            protocol,
            signer: Signer::new(credentials),
        })
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends one request and returns the status and body of the answer.
    async fn call(&self, action: &'static str, body: Vec<u8>, wait: Duration) -> Result<(u16, Bytes), CallError> {
        let target;
        let content_type = match self.protocol {
            Protocol::Json => {
                target = format!("AmazonSQS.{action}");
                "application/x-amz-json-1.0"
            }
            Protocol::Query => {
                target = String::new();
                "application/x-www-form-urlencoded"
            }
        };
        let mut signed = vec![("content-type", content_type), ("host", self.host_str.as_str())];
        if self.protocol == Protocol::Json {
            signed.push(("x-amz-target", target.as_str()));
        }
        let sig = self.signer.sign_now("POST", "/", "", &signed, &body);
        let mut req = Request::post(self.base.clone())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, content_type)
            .header("x-amz-date", sig.amz_date)
            .header(AUTHORIZATION, sig.authorization);
        if self.protocol == Protocol::Json {
            req = req.header("x-amz-target", target);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| CallError::Transport(e.to_string()))?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| CallError::Transport(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| CallError::Transport(error_chain(&e)))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT + wait, exchange).await.map_err(|_| CallError::Timeout)?
    }

    /// Sends, then turns a non-200 answer into [`CallError::Aws`].
    async fn call_ok(&self, action: &'static str, body: Vec<u8>, wait: Duration) -> Result<Bytes, CallError> {
        let (status, body) = self.call(action, body, wait).await?;
        if status == 200 {
            Ok(body)
        } else {
            Err(self.error_of(status, &body))
        }
    }

    fn error_of(&self, status: u16, body: &[u8]) -> CallError {
        let (code, message) = match self.protocol {
            Protocol::Json => match serde_json::from_slice::<JsonError>(body) {
                Ok(e) => {
                    let code = e.type_.unwrap_or_default();
                    let code = code.rsplit('#').next().unwrap_or_default().to_owned();
                    (code, e.message.or(e.message_upper).unwrap_or_default())
                }
                Err(_) => (String::new(), String::from_utf8_lossy(body).chars().take(200).collect()),
            },
            Protocol::Query => {
                match std::str::from_utf8(body).ok().and_then(|x| xml_records(x, "Error", &["Code", "Message"]).ok()) {
                    Some(mut r) if !r.is_empty() => {
                        let mut e = r.swap_remove(0);
                        (e[0].take().unwrap_or_default(), e[1].take().unwrap_or_default())
                    }
                    _ => (String::new(), String::from_utf8_lossy(body).chars().take(200).collect()),
                }
            }
        };
        let code = if code.is_empty() { format!("HTTP {status}") } else { code };
        CallError::Aws { status, code, message }
    }

    fn query_form(action: &str) -> form_urlencoded::Serializer<'static, String> {
        let mut f = form_urlencoded::Serializer::new(String::with_capacity(256));
        f.append_pair("Action", action).append_pair("Version", SQS_VERSION);
        f
    }

    /// `GET /health`: the `long_poll_waiters` a sluice server reports, or `None` from servers
    /// that report no such figure.
    pub async fn parked_waiters(&self) -> Option<u64> {
        let uri: Uri = format!("http://{}/health", self.host_str).parse().ok()?;
        let req = Request::get(uri).header(HOST, self.host.clone()).body(Full::new(Bytes::new())).ok()?;
        let exchange = async {
            let resp = self.http.request(req).await.ok()?;
            if resp.status() != 200 {
                return None;
            }
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            serde_json::from_slice::<serde_json::Value>(&body).ok()?.get("long_poll_waiters")?.as_u64()
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.ok().flatten()
    }

    /// `CreateQueue`; returns the queue URL.
    pub async fn create_queue(&self, name: &str, attributes: &[(&str, &str)]) -> Result<String, CallError> {
        let body = match self.protocol {
            Protocol::Json => {
                let attrs: HashMap<&str, &str> = attributes.iter().copied().collect();
                let mut v = serde_json::json!({ "QueueName": name });
                if !attrs.is_empty() {
                    v["Attributes"] = serde_json::json!(attrs);
                }
                serde_json::to_vec(&v).map_err(|e| CallError::Decode(e.to_string()))?
            }
            Protocol::Query => {
                let mut f = Self::query_form("CreateQueue");
                f.append_pair("QueueName", name);
                for (i, (k, v)) in attributes.iter().enumerate() {
                    f.append_pair(&format!("Attribute.{}.Name", i + 1), k);
                    f.append_pair(&format!("Attribute.{}.Value", i + 1), v);
                }
                f.finish().into_bytes()
            }
        };
        let resp = self.call_ok("CreateQueue", body, Duration::ZERO).await?;
        match self.protocol {
            Protocol::Json => Ok(decode_json::<CreateQueueJson>(&resp)?.queue_url),
            Protocol::Query => xml_single(&resp, "CreateQueueResult", "QueueUrl"),
        }
    }

    /// `DeleteQueue`.
    pub async fn delete_queue(&self, queue_url: &str) -> Result<(), CallError> {
        let body = self.queue_only("DeleteQueue", queue_url);
        self.call_ok("DeleteQueue", body, Duration::ZERO).await.map(|_| ())
    }

    fn queue_only(&self, action: &str, queue_url: &str) -> Vec<u8> {
        match self.protocol {
            Protocol::Json => serde_json::to_vec(&serde_json::json!({ "QueueUrl": queue_url })).unwrap_or_default(),
            Protocol::Query => {
                let mut f = Self::query_form(action);
                f.append_pair("QueueUrl", queue_url);
                f.finish().into_bytes()
            }
        }
    }

    /// `GetQueueAttributes(ApproximateNumberOfMessages)`: the visible depth.
    pub async fn queue_depth(&self, queue_url: &str) -> Result<u64, CallError> {
        const NAME: &str = "ApproximateNumberOfMessages";
        let body = match self.protocol {
            Protocol::Json => {
                serde_json::to_vec(&serde_json::json!({ "QueueUrl": queue_url, "AttributeNames": [NAME] }))
                    .unwrap_or_default()
            }
            Protocol::Query => {
                let mut f = Self::query_form("GetQueueAttributes");
                f.append_pair("QueueUrl", queue_url).append_pair("AttributeName.1", NAME);
                f.finish().into_bytes()
            }
        };
        let resp = self.call_ok("GetQueueAttributes", body, Duration::ZERO).await?;
        let value = match self.protocol {
            Protocol::Json => decode_json::<AttributesJson>(&resp)?.attributes.remove(NAME),
            Protocol::Query => xml_records(utf8(&resp)?, "Attribute", &["Name", "Value"])?
                .into_iter()
                .find(|r| r[0].as_deref() == Some(NAME))
                .and_then(|mut r| r[1].take()),
        };
        value.and_then(|v| v.parse().ok()).ok_or_else(|| CallError::Decode(format!("no numeric {NAME} in the answer")))
    }

    /// `SendMessage` of one entry.
    pub async fn send(&self, queue_url: &str, entry: SendEntry<'_>) -> Result<(), CallError> {
        let body = match self.protocol {
            Protocol::Json => {
                let mut out = Vec::with_capacity(entry.body.len() + 256);
                out.extend_from_slice(b"{\"QueueUrl\":");
                push_json_str(&mut out, queue_url);
                push_entry_fields(&mut out, entry);
                out.push(b'}');
                out
            }
            Protocol::Query => {
                let mut f = Self::query_form("SendMessage");
                f.append_pair("QueueUrl", queue_url).append_pair("MessageBody", entry.body);
                if let Some(g) = entry.group {
                    f.append_pair("MessageGroupId", g);
                }
                if let Some(d) = entry.dedup {
                    f.append_pair("MessageDeduplicationId", d);
                }
                f.finish().into_bytes()
            }
        };
        self.call_ok("SendMessage", body, Duration::ZERO).await.map(|_| ())
    }

    /// `SendMessageBatch` of up to ten entries, numbered `0..n`.
    pub async fn send_batch(&self, queue_url: &str, entries: &[SendEntry<'_>]) -> Result<BatchOutcome, CallError> {
        assert!(entries.len() <= BATCH_ENTRIES_MAX, "callers split batches");
        let body = match self.protocol {
            Protocol::Json => encode_send_batch_json(queue_url, entries),
            Protocol::Query => {
                let mut f = Self::query_form("SendMessageBatch");
                f.append_pair("QueueUrl", queue_url);
                for (i, e) in entries.iter().enumerate() {
                    let p = format!("SendMessageBatchRequestEntry.{}", i + 1);
                    f.append_pair(&format!("{p}.Id"), ENTRY_IDS[i]);
                    f.append_pair(&format!("{p}.MessageBody"), e.body);
                    if let Some(g) = e.group {
                        f.append_pair(&format!("{p}.MessageGroupId"), g);
                    }
                    if let Some(d) = e.dedup {
                        f.append_pair(&format!("{p}.MessageDeduplicationId"), d);
                    }
                }
                f.finish().into_bytes()
            }
        };
        let resp = self.call_ok("SendMessageBatch", body, Duration::ZERO).await?;
        self.batch_outcome(&resp, "SendMessageBatchResultEntry", entries.len())
    }

    /// `ReceiveMessage`.
    pub async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        wait_secs: u32,
        visibility_timeout_secs: Option<u32>,
    ) -> Result<Vec<Received>, CallError> {
        let body = match self.protocol {
            Protocol::Json => serde_json::to_vec(&ReceiveJsonRequest {
                queue_url,
                max_number_of_messages: max,
                wait_time_seconds: wait_secs,
                visibility_timeout: visibility_timeout_secs,
            })
            .map_err(|e| CallError::Decode(e.to_string()))?,
            Protocol::Query => {
                let mut f = Self::query_form("ReceiveMessage");
                f.append_pair("QueueUrl", queue_url)
                    .append_pair("MaxNumberOfMessages", &max.to_string())
                    .append_pair("WaitTimeSeconds", &wait_secs.to_string());
                if let Some(v) = visibility_timeout_secs {
                    f.append_pair("VisibilityTimeout", &v.to_string());
                }
                f.finish().into_bytes()
            }
        };
        let resp = self.call_ok("ReceiveMessage", body, Duration::from_secs(wait_secs.into())).await?;
        match self.protocol {
            Protocol::Json => Ok(decode_json::<ReceiveJson>(&resp)?
                .messages
                .into_iter()
                .map(|m| Received { body: m.body, receipt_handle: m.receipt_handle })
                .collect()),
            Protocol::Query => xml_records(utf8(&resp)?, "Message", &["Body", "ReceiptHandle"])?
                .into_iter()
                .map(|mut r| match (r[0].take(), r[1].take()) {
                    (Some(body), Some(receipt_handle)) => Ok(Received { body, receipt_handle }),
                    (None, Some(receipt_handle)) => Ok(Received { body: String::new(), receipt_handle }),
                    _ => Err(CallError::Decode("a received message has no ReceiptHandle".into())),
                })
                .collect(),
        }
    }

    /// `DeleteMessageBatch` of up to ten receipt handles, numbered `0..n`.
    pub async fn delete_batch(&self, queue_url: &str, receipt_handles: &[&str]) -> Result<BatchOutcome, CallError> {
        assert!(receipt_handles.len() <= BATCH_ENTRIES_MAX, "callers split batches");
        let body = match self.protocol {
            Protocol::Json => serde_json::to_vec(&DeleteBatchJson {
                queue_url,
                entries: receipt_handles
                    .iter()
                    .zip(ENTRY_IDS)
                    .map(|(h, id)| DeleteBatchEntryJson { id, receipt_handle: h })
                    .collect(),
            })
            .map_err(|e| CallError::Decode(e.to_string()))?,
            Protocol::Query => {
                let mut f = Self::query_form("DeleteMessageBatch");
                f.append_pair("QueueUrl", queue_url);
                for (i, h) in receipt_handles.iter().enumerate() {
                    f.append_pair(&format!("DeleteMessageBatchRequestEntry.{}.Id", i + 1), ENTRY_IDS[i]);
                    f.append_pair(&format!("DeleteMessageBatchRequestEntry.{}.ReceiptHandle", i + 1), h);
                }
                f.finish().into_bytes()
            }
        };
        let resp = self.call_ok("DeleteMessageBatch", body, Duration::ZERO).await?;
        self.batch_outcome(&resp, "DeleteMessageBatchResultEntry", receipt_handles.len())
    }

    /// Reads a batch answer; entry ids outside `0..n` are ignored.
    fn batch_outcome(&self, resp: &[u8], ok_record: &str, n: usize) -> Result<BatchOutcome, CallError> {
        let index = |id: &str| id.parse::<usize>().ok().filter(|i| *i < n);
        let mut out = BatchOutcome::default();
        match self.protocol {
            Protocol::Json => {
                let r: BatchResultJson = decode_json(resp)?;
                out.ok = r.successful.iter().filter_map(|e| index(&e.id)).collect();
                out.failed = r
                    .failed
                    .into_iter()
                    .filter_map(|e| index(&e.id).map(|i| (i, e.code.unwrap_or_default())))
                    .collect();
            }
            Protocol::Query => {
                let xml = utf8(resp)?;
                out.ok = xml_records(xml, ok_record, &["Id"])?
                    .into_iter()
                    .filter_map(|r| r[0].as_deref().and_then(index))
                    .collect();
                out.failed = xml_records(xml, "BatchResultErrorEntry", &["Id", "Code"])?
                    .into_iter()
                    .filter_map(|mut r| r[0].as_deref().and_then(index).map(|i| (i, r[1].take().unwrap_or_default())))
                    .collect();
            }
        }
        Ok(out)
    }
}

/// `SendMessageBatch` in AWS JSON 1.0, written by hand: this runs for every batch at the
/// ceiling's rate, and bench bodies never need escaping, so the generic serializer's
/// byte-by-byte escape scan is the largest cost it would add.
fn encode_send_batch_json(queue_url: &str, entries: &[SendEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.body.len() + 96).sum::<usize>() + queue_url.len() + 32);
    out.extend_from_slice(b"{\"QueueUrl\":");
    push_json_str(&mut out, queue_url);
    out.extend_from_slice(b",\"Entries\":[");
    for (i, (e, id)) in entries.iter().zip(ENTRY_IDS).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"Id\":\"");
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
        push_entry_fields(&mut out, *e);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// `,"MessageBody":...` and the FIFO fields of an entry.
fn push_entry_fields(out: &mut Vec<u8>, e: SendEntry<'_>) {
    out.extend_from_slice(b",\"MessageBody\":");
    push_json_str(out, e.body);
    if let Some(g) = e.group {
        out.extend_from_slice(b",\"MessageGroupId\":");
        push_json_str(out, g);
    }
    if let Some(d) = e.dedup {
        out.extend_from_slice(b",\"MessageDeduplicationId\":");
        push_json_str(out, d);
    }
}

/// Appends `s` as a JSON string; copies it as is when nothing in it needs escaping.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // A branch-free check the compiler vectorizes; non-ASCII is left to serde_json too.
    let plain = s.bytes().fold(true, |ok, b| ok & ((0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing a string to a Vec cannot fail");
    }
}

/// Formats an error with its chain of sources (hyper's own messages are terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn utf8(b: &[u8]) -> Result<&str, CallError> {
    std::str::from_utf8(b).map_err(|e| CallError::Decode(e.to_string()))
}

fn decode_json<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, CallError> {
    serde_json::from_slice(b).map_err(|e| CallError::Decode(e.to_string()))
}

fn xml_single(resp: &[u8], record: &str, field: &str) -> Result<String, CallError> {
    xml_records(utf8(resp)?, record, &[field])?
        .into_iter()
        .find_map(|mut r| r[0].take())
        .ok_or_else(|| CallError::Decode(format!("no {record}/{field} in the answer")))
}

/// Collects, for each element named `record` (outermost occurrences), the text of its direct
/// children named in `fields`, in that order. Entities and character references are resolved.
pub fn xml_records(xml: &str, record: &str, fields: &[&str]) -> Result<Vec<Vec<Option<String>>>, CallError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut record_depth: Option<usize> = None;
    let mut current: Vec<Option<String>> = Vec::new();
    let mut field: Option<(usize, String)> = None;
    let field_index = |name: &str| fields.iter().position(|f| *f == name);
    loop {
        match reader.read_event().map_err(|e| CallError::Decode(format!("XML: {e}")))? {
            Event::Start(e) => {
                depth += 1;
                let name = e.local_name();
                match record_depth {
                    None if name.as_ref() == record => {
                        record_depth = Some(depth);
                        current = vec![None; fields.len()];
                    }
                    Some(rd) if depth == rd + 1 => field = field_index(name.as_ref()).map(|i| (i, String::new())),
                    _ => {}
                }
            }
            Event::Empty(e) => {
                let name = e.local_name();
                match record_depth {
                    None if name.as_ref() == record => out.push(vec![None; fields.len()]),
                    Some(rd) if depth == rd => {
                        if let Some(i) = field_index(name.as_ref()) {
                            current[i] = Some(String::new());
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some((_, buf)) = field.as_mut() {
                    buf.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some((_, buf)) = field.as_mut() {
                    buf.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, buf)) = field.as_mut() {
                    match r.resolve_char_ref() {
                        Ok(Some(ch)) => buf.push(ch),
                        _ => {
                            let name = r.xml10_content();
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => buf.push_str(s),
                                None => return Err(CallError::Decode(format!("XML: unknown entity &{name};"))),
                            }
                        }
                    }
                }
            }
            Event::End(_) => {
                if let Some(rd) = record_depth {
                    if depth == rd + 1 {
                        if let Some((i, buf)) = field.take() {
                            current[i] = Some(buf);
                        }
                    } else if depth == rd {
                        out.push(std::mem::take(&mut current));
                        record_depth = None;
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveJsonRequest<'a> {
    queue_url: &'a str,
    max_number_of_messages: usize,
    wait_time_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility_timeout: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteBatchJson<'a> {
    queue_url: &'a str,
    entries: Vec<DeleteBatchEntryJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteBatchEntryJson<'a> {
    id: &'a str,
    receipt_handle: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateQueueJson {
    queue_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributesJson {
    #[serde(default)]
    attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveJson {
    #[serde(default)]
    messages: Vec<MessageJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MessageJson {
    body: String,
    receipt_handle: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchResultJson {
    #[serde(default)]
    successful: Vec<BatchOkJson>,
    #[serde(default)]
    failed: Vec<BatchFailedJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchOkJson {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchFailedJson {
    id: String,
    code: Option<String>,
}

#[derive(Deserialize)]
struct JsonError {
    #[serde(rename = "__type")]
    type_: Option<String>,
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
}

#[cfg(test)]
mod tests {
    //! Goal: the XML reader finds the fields the query protocol answers carry, including
    //! escaped text and empty elements, and ignores nested elements of the same name.
    //! Method: decode hand-written answers in the shape SQS documents.

    use super::*;

    #[test]
    fn receive_answer_yields_bodies_and_handles_with_entities_resolved() {
        let xml = r#"<?xml version="1.0"?><ReceiveMessageResponse><ReceiveMessageResult>
            <Message><MessageId>m1</MessageId><ReceiptHandle>rh&amp;1</ReceiptHandle><MD5OfBody>x</MD5OfBody>
              <Body>a &lt;b&gt; &#65;</Body><Attribute><Name>SenderId</Name><Value>v</Value></Attribute></Message>
            <Message><ReceiptHandle>rh2</ReceiptHandle><Body/></Message>
            </ReceiveMessageResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ReceiveMessageResponse>"#;
        let r = xml_records(xml, "Message", &["Body", "ReceiptHandle"]).unwrap();
        assert_eq!(
            r,
            vec![
                vec![Some("a <b> A".to_owned()), Some("rh&1".to_owned())],
                vec![Some(String::new()), Some("rh2".to_owned())],
            ]
        );
    }

    #[test]
    fn batch_answer_yields_successes_and_failures() {
        let xml = "<SendMessageBatchResponse><SendMessageBatchResult>\
            <SendMessageBatchResultEntry><Id>0</Id><MessageId>a</MessageId></SendMessageBatchResultEntry>\
            <BatchResultErrorEntry><Id>1</Id><Code>InvalidMessageContents</Code><SenderFault>true</SenderFault></BatchResultErrorEntry>\
            </SendMessageBatchResult></SendMessageBatchResponse>";
        let ok = xml_records(xml, "SendMessageBatchResultEntry", &["Id"]).unwrap();
        assert_eq!(ok, vec![vec![Some("0".to_owned())]]);
        let failed = xml_records(xml, "BatchResultErrorEntry", &["Id", "Code"]).unwrap();
        assert_eq!(failed, vec![vec![Some("1".to_owned()), Some("InvalidMessageContents".to_owned())]]);
    }

    #[test]
    fn error_answer_yields_code_and_message() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code>\
            <Message>The specified queue does not exist.</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        let r = xml_records(xml, "Error", &["Code", "Message"]).unwrap();
        assert_eq!(r[0][0].as_deref(), Some("AWS.SimpleQueueService.NonExistentQueue"));
        assert_eq!(r[0][1].as_deref(), Some("The specified queue does not exist."));
    }

    #[test]
    fn malformed_xml_is_a_decode_error() {
        assert!(matches!(xml_records("<a><b></a>", "a", &["b"]), Err(CallError::Decode(_))));
    }

    #[test]
    fn hand_written_send_batch_json_means_what_serde_would_write() {
        let entries = [
            SendEntry { body: "plain body", group: None, dedup: None },
            SendEntry { body: "needs \"escaping\" \\ \n and ünïcode", group: Some("g1"), dedup: Some("d-1") },
        ];
        let got: serde_json::Value = serde_json::from_slice(&encode_send_batch_json("http://h/0/q", &entries)).unwrap();
        let want = serde_json::json!({
            "QueueUrl": "http://h/0/q",
            "Entries": [
                { "Id": "0", "MessageBody": "plain body" },
                { "Id": "1", "MessageBody": "needs \"escaping\" \\ \n and ünïcode", "MessageGroupId": "g1", "MessageDeduplicationId": "d-1" },
            ]
        });
        assert_eq!(got, want);
    }

    #[test]
    fn endpoints_must_be_plain_http() {
        let creds = Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            region: "us-east-1".into(),
            service: "sqs".into(),
        };
        assert!(SqsClient::new("https://example.com", Protocol::Json, creds.clone()).is_err());
        assert!(SqsClient::new("http://127.0.0.1:4566", Protocol::Json, creds).is_ok());
    }
}
