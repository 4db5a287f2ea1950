//! The ceiling stub: an HTTP server inside the bench that answers SQS requests with fixed,
//! well-formed responses, so a run against it measures the client and the machine, not a server.
//!
//! It keeps no queue semantics. Sends are answered from responses rendered once at start
//! (one per batch size and protocol). In echo mode, which the receiving shapes need, it also
//! keeps sent bodies in a bounded FIFO per queue name and hands them to `ReceiveMessage`
//! (waking long polls), so a round trip closes and can be counted; there is no visibility
//! timeout, no receipt handle check, and deletes are answered without effect. MD5 digests and
//! message ids in its answers are placeholders: the bench client checks neither.
//!
//! It runs on its own small tokio runtime in its own thread, as a separate server process
//! would, and stops when the [`Stub`] is dropped.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Worker threads of the stub's runtime (as many as the machine the targets were set for).
pub const STUB_WORKER_THREADS: usize = 2;
/// Most bodies kept per queue in echo mode; a send that would go beyond it waits for room,
/// so producers faster than consumers are held back instead of growing memory without bound.
pub const ECHO_MESSAGES_MAX: usize = 200_000;
/// Longest long poll honoured.
const WAIT_MAX: Duration = Duration::from_secs(20);
/// Account id in the queue URLs the stub hands out.
const ACCOUNT_ID: &str = "000000000000";
/// Placeholder message id in every answer.
const MESSAGE_ID: &str = "00000000-0000-4000-8000-000000000000";
/// Placeholder MD5 digest in every answer.
const MD5: &str = "00000000000000000000000000000000";
/// Request id in every answer.
const REQUEST_ID: &str = "00000000-0000-4000-8000-00000000cafe";

/// How the stub behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct StubConfig {
    /// Keep sent bodies and hand them back to `ReceiveMessage` (needed by shapes that receive).
    pub echo: bool,
}

/// A running stub; dropping it stops the server.
#[derive(Debug)]
pub struct Stub {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stub {
    /// Starts a stub on a free loopback port.
    pub fn start(config: StubConfig) -> std::io::Result<Stub> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(STUB_WORKER_THREADS)
            .thread_name("sluice-bench-stub")
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let state = Arc::new(State::new(config, addr));
        let thread = std::thread::Builder::new().name("sluice-bench-stub".into()).spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "stub listener");
                        return;
                    }
                };
                serve(listener, state, rx).await;
            });
            rt.shutdown_timeout(Duration::from_millis(200));
        })?;
        Ok(Stub { addr, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Json,
    Query,
}

/// Responses rendered once, by protocol.
struct Canned {
    send_batch: Vec<Bytes>,
    delete_batch: Vec<Bytes>,
    send: Bytes,
    empty: Bytes,
}

struct State {
    echo: bool,
    addr: SocketAddr,
    json: Canned,
    query: Canned,
    queues: Mutex<HashMap<String, Arc<EchoQueue>>>,
}

struct EchoQueue {
    bodies: Mutex<VecDeque<String>>,
    arrived: Notify,
    /// One permit per free place in `bodies`.
    room: tokio::sync::Semaphore,
}

impl Default for EchoQueue {
    fn default() -> Self {
        Self { bodies: Mutex::default(), arrived: Notify::new(), room: tokio::sync::Semaphore::new(ECHO_MESSAGES_MAX) }
    }
}

impl EchoQueue {
    async fn push(&self, bodies: Vec<String>) {
        // A batch holds at most ten bodies, far below the bound, so this always gets its room.
        if let Ok(permits) = self.room.acquire_many(bodies.len() as u32).await {
            permits.forget();
        }
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).extend(bodies);
        self.arrived.notify_waiters();
    }

    fn pop(&self, max: usize) -> Vec<String> {
        let got: Vec<String> = {
            let mut q = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
            let n = max.min(q.len());
            q.drain(..n).collect()
        };
        self.room.add_permits(got.len());
        got
    }

    fn len(&self) -> usize {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Pops up to `max` bodies, waiting up to `wait` for the first to arrive.
    async fn pop_wait(&self, max: usize, wait: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Register before looking, so a push between the look and the wait is not missed.
            arrived.as_mut().enable();
            let got = self.pop(max);
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.pop(max);
            }
        }
    }
}

fn canned(wire: Wire) -> Canned {
    let send_batch = (0..=10)
        .map(|n| {
            let body = match wire {
                Wire::Json => {
                    let ok: Vec<String> = (0..n)
                        .map(|i| format!(r#"{{"Id":"{i}","MessageId":"{MESSAGE_ID}","MD5OfMessageBody":"{MD5}"}}"#))
                        .collect();
                    format!(r#"{{"Successful":[{}],"Failed":[]}}"#, ok.join(","))
                }
                Wire::Query => {
                    let ok: String = (0..n)
                        .map(|i| {
                            format!(
                                "<SendMessageBatchResultEntry><Id>{i}</Id><MessageId>{MESSAGE_ID}</MessageId>\
                                 <MD5OfMessageBody>{MD5}</MD5OfMessageBody></SendMessageBatchResultEntry>"
                            )
                        })
                        .collect();
                    query_response("SendMessageBatch", &ok)
                }
            };
            Bytes::from(body)
        })
        .collect();
    let delete_batch = (0..=10)
        .map(|n| {
            let body = match wire {
                Wire::Json => {
                    let ok: Vec<String> = (0..n).map(|i| format!(r#"{{"Id":"{i}"}}"#)).collect();
                    format!(r#"{{"Successful":[{}],"Failed":[]}}"#, ok.join(","))
                }
                Wire::Query => {
                    let ok: String = (0..n)
                        .map(|i| format!("<DeleteMessageBatchResultEntry><Id>{i}</Id></DeleteMessageBatchResultEntry>"))
                        .collect();
                    query_response("DeleteMessageBatch", &ok)
                }
            };
            Bytes::from(body)
        })
        .collect();
    let send = match wire {
        Wire::Json => format!(r#"{{"MessageId":"{MESSAGE_ID}","MD5OfMessageBody":"{MD5}"}}"#),
        Wire::Query => query_response(
            "SendMessage",
            &format!("<MessageId>{MESSAGE_ID}</MessageId><MD5OfMessageBody>{MD5}</MD5OfMessageBody>"),
        ),
    };
    let empty = match wire {
        Wire::Json => "{}".to_owned(),
        // The action name is not known here; clients read no element of an empty answer.
        Wire::Query => query_response("Stub", ""),
    };
    Canned { send_batch, delete_batch, send: Bytes::from(send), empty: Bytes::from(empty) }
}

/// `<ActionResponse><ActionResult>inner</ActionResult><ResponseMetadata>...</ActionResponse>`.
fn query_response(action: &str, result: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><{action}Response xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata></{action}Response>"#
    )
}

/// Counts non-overlapping occurrences of `needle`.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    let first = needle[0];
    let mut n = 0;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay[i] == first && &hay[i..i + needle.len()] == needle {
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    n
}

/// The queue name at the end of a queue URL.
fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueueReq {
    #[serde(default)]
    queue_url: String,
    #[serde(default)]
    queue_name: String,
    #[serde(default)]
    message_body: String,
    #[serde(default)]
    entries: Vec<EntryReq>,
    max_number_of_messages: Option<usize>,
    wait_time_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryReq {
    #[serde(default)]
    message_body: String,
}

impl QueueReq {
    fn from_form(body: &[u8]) -> QueueReq {
        let mut r = QueueReq {
            queue_url: String::new(),
            queue_name: String::new(),
            message_body: String::new(),
            entries: Vec::new(),
            max_number_of_messages: None,
            wait_time_seconds: None,
        };
        let mut entries: Vec<(usize, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "QueueUrl" => r.queue_url = v.into_owned(),
                "QueueName" => r.queue_name = v.into_owned(),
                "MessageBody" => r.message_body = v.into_owned(),
                "MaxNumberOfMessages" => r.max_number_of_messages = v.parse().ok(),
                "WaitTimeSeconds" => r.wait_time_seconds = v.parse().ok(),
                k => {
                    if let Some(n) = k
                        .strip_prefix("SendMessageBatchRequestEntry.")
                        .and_then(|rest| rest.strip_suffix(".MessageBody"))
                        .and_then(|n| n.parse().ok())
                    {
                        entries.push((n, v.into_owned()));
                    }
                }
            }
        }
        entries.sort_by_key(|(n, _)| *n);
        r.entries = entries.into_iter().map(|(_, message_body)| EntryReq { message_body }).collect();
        r
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveResp<'a> {
    messages: Vec<MessageResp<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageResp<'a> {
    message_id: &'a str,
    receipt_handle: String,
    #[serde(rename = "MD5OfBody")]
    md5_of_body: &'a str,
    body: &'a str,
}

impl State {
    fn new(config: StubConfig, addr: SocketAddr) -> Self {
        Self {
            echo: config.echo,
            addr,
            json: canned(Wire::Json),
            query: canned(Wire::Query),
            queues: Mutex::new(HashMap::new()),
        }
    }

    fn queue(&self, url_or_name: &str) -> Arc<EchoQueue> {
        let name = queue_name(url_or_name);
        let mut qs = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        qs.entry(name.to_owned()).or_default().clone()
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return respond(StatusCode::BAD_REQUEST, Wire::Query, Bytes::from_static(b"unreadable body")),
        };
        let (wire, action) = match &target {
            Some(t) => (Wire::Json, t.strip_prefix("AmazonSQS.").unwrap_or(t).to_owned()),
            None => (
                Wire::Query,
                form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "Action")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default(),
            ),
        };
        let canned = match wire {
            Wire::Json => &self.json,
            Wire::Query => &self.query,
        };
        let parse = || -> Option<QueueReq> {
            match wire {
                Wire::Json => serde_json::from_slice(&body).ok(),
                Wire::Query => Some(QueueReq::from_form(&body)),
            }
        };
        match action.as_str() {
            "SendMessageBatch" => {
                let n = if self.echo {
                    let Some(r) = parse() else { return bad_request(wire) };
                    let n = r.entries.len();
                    self.queue(&r.queue_url).push(r.entries.into_iter().map(|e| e.message_body).collect()).await;
                    n
                } else {
                    match wire {
                        Wire::Json => count(&body, br#""MessageBody""#),
                        Wire::Query => count(&body, b".MessageBody="),
                    }
                };
                respond(StatusCode::OK, wire, canned.send_batch[n.min(10)].clone())
            }
            "SendMessage" => {
                if self.echo {
                    let Some(r) = parse() else { return bad_request(wire) };
                    self.queue(&r.queue_url).push(vec![r.message_body]).await;
                }
                respond(StatusCode::OK, wire, canned.send.clone())
            }
            "DeleteMessageBatch" => {
                let n = match wire {
                    Wire::Json => count(&body, br#""ReceiptHandle""#),
                    Wire::Query => count(&body, b".ReceiptHandle="),
                };
                respond(StatusCode::OK, wire, canned.delete_batch[n.min(10)].clone())
            }
            "ReceiveMessage" => {
                let Some(r) = parse() else { return bad_request(wire) };
                let max = r.max_number_of_messages.unwrap_or(1).clamp(1, 10);
                let wait = Duration::from_secs(r.wait_time_seconds.unwrap_or(0)).min(WAIT_MAX);
                let bodies = self.queue(&r.queue_url).pop_wait(max, wait).await;
                respond(StatusCode::OK, wire, Bytes::from(render_receive(wire, &bodies)))
            }
            "CreateQueue" | "GetQueueUrl" => {
                let Some(r) = parse() else { return bad_request(wire) };
                let url = format!("http://{}/{ACCOUNT_ID}/{}", self.addr, r.queue_name);
                let body = match wire {
                    Wire::Json => serde_json::json!({ "QueueUrl": url }).to_string(),
                    Wire::Query => query_response(&action, &format!("<QueueUrl>{}</QueueUrl>", xml_escape(&url))),
                };
                respond(StatusCode::OK, wire, Bytes::from(body))
            }
            "GetQueueAttributes" => {
                let Some(r) = parse() else { return bad_request(wire) };
                let depth = self.queue(&r.queue_url).len();
                let body = match wire {
                    Wire::Json => {
                        serde_json::json!({ "Attributes": { "ApproximateNumberOfMessages": depth.to_string() } })
                            .to_string()
                    }
                    Wire::Query => query_response(
                        "GetQueueAttributes",
                        &format!(
                            "<Attribute><Name>ApproximateNumberOfMessages</Name><Value>{depth}</Value></Attribute>"
                        ),
                    ),
                };
                respond(StatusCode::OK, wire, Bytes::from(body))
            }
            "DeleteQueue" => {
                if let Some(r) = parse() {
                    let mut qs = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                    qs.remove(queue_name(&r.queue_url));
                }
                respond(StatusCode::OK, wire, canned.empty.clone())
            }
            "DeleteMessage" | "PurgeQueue" | "SetQueueAttributes" | "ChangeMessageVisibility" => {
                respond(StatusCode::OK, wire, canned.empty.clone())
            }
            other => {
                let message = format!("The stub does not answer {other:?}.");
                let body = match wire {
                    Wire::Json => serde_json::json!({ "__type": "com.amazonaws.sqs#InvalidAction", "message": message }).to_string(),
                    Wire::Query => format!(
                        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>{}</Message></Error><RequestId>{REQUEST_ID}</RequestId></ErrorResponse>",
                        xml_escape(&message)
                    ),
                };
                respond(StatusCode::BAD_REQUEST, wire, Bytes::from(body))
            }
        }
    }
}

fn render_receive(wire: Wire, bodies: &[String]) -> String {
    match wire {
        Wire::Json if bodies.is_empty() => "{}".to_owned(),
        Wire::Json => {
            let messages = bodies
                .iter()
                .enumerate()
                .map(|(i, b)| MessageResp {
                    message_id: MESSAGE_ID,
                    receipt_handle: format!("stub-{i}"),
                    md5_of_body: MD5,
                    body: b,
                })
                .collect();
            serde_json::to_string(&ReceiveResp { messages }).unwrap_or_default()
        }
        Wire::Query => {
            let mut inner = String::with_capacity(bodies.iter().map(|b| b.len() + 200).sum());
            for (i, b) in bodies.iter().enumerate() {
                inner.push_str(&format!(
                    "<Message><MessageId>{MESSAGE_ID}</MessageId><ReceiptHandle>stub-{i}</ReceiptHandle><MD5OfBody>{MD5}</MD5OfBody><Body>{}</Body></Message>",
                    xml_escape(b)
                ));
            }
            query_response("ReceiveMessage", &inner)
        }
    }
}

fn xml_escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn bad_request(wire: Wire) -> Response<Full<Bytes>> {
    let body = match wire {
        Wire::Json => r#"{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"The stub could not read the request."}"#.to_owned(),
        Wire::Query => format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>The stub could not read the request.</Message></Error><RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
        ),
    };
    respond(StatusCode::BAD_REQUEST, wire, Bytes::from(body))
}

fn respond(status: StatusCode, wire: Wire, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let ct = match wire {
        Wire::Json => "application/x-amz-json-1.0",
        Wire::Query => "text/xml",
    };
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
    r.headers_mut().insert("x-amzn-requestid", http::HeaderValue::from_static(REQUEST_ID));
    r
}

#[cfg(test)]
mod tests {
    //! Goal: the stub's canned answers decode with the bench's own client decoders, and the
    //! entry counting that picks them is exact.
    //! Method: decode the canned bodies with `client::xml_records` / serde_json.

    use super::*;

    #[test]
    fn counting_finds_every_entry() {
        assert_eq!(
            count(br#"{"Entries":[{"Id":"0","MessageBody":"a"},{"Id":"1","MessageBody":"b"}]}"#, br#""MessageBody""#),
            2
        );
        assert_eq!(count(b"x.MessageBody=1&y.MessageBody=2&z.MessageBody=3", b".MessageBody="), 3);
        assert_eq!(count(b"", b".MessageBody="), 0);
    }

    #[test]
    fn canned_batch_answers_list_exactly_n_entries() {
        let json = canned(Wire::Json);
        let query = canned(Wire::Query);
        for n in 0..=10 {
            let v: serde_json::Value = serde_json::from_slice(&json.send_batch[n]).unwrap();
            assert_eq!(v["Successful"].as_array().unwrap().len(), n);
            let xml = std::str::from_utf8(&query.delete_batch[n]).unwrap();
            let ids = crate::client::xml_records(xml, "DeleteMessageBatchResultEntry", &["Id"]).unwrap();
            assert_eq!(ids.len(), n);
        }
    }

    #[test]
    fn received_bodies_are_escaped_in_xml_and_read_back_intact() {
        let xml = render_receive(Wire::Query, &["a<b&c".to_owned()]);
        let r = crate::client::xml_records(&xml, "Message", &["Body"]).unwrap();
        assert_eq!(r[0][0].as_deref(), Some("a<b&c"));
    }

    #[test]
    fn form_requests_keep_batch_entries_in_order() {
        let r = QueueReq::from_form(
            b"Action=SendMessageBatch&QueueUrl=http%3A%2F%2Fh%2F0%2Fq&SendMessageBatchRequestEntry.2.MessageBody=b&SendMessageBatchRequestEntry.1.MessageBody=a",
        );
        assert_eq!(queue_name(&r.queue_url), "q");
        let bodies: Vec<_> = r.entries.iter().map(|e| e.message_body.as_str()).collect();
        assert_eq!(bodies, ["a", "b"]);
    }
}
