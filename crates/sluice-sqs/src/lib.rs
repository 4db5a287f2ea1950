//! SQS semantics as plain async functions over the storage interface.
//!
//! Input arrives as the JSON-shaped `serde_json::Value` the protocol crate
//! decoded (from AWS JSON 1.0 or the query protocol alike); output leaves as a
//! `Value` of the operation's output shape. This crate validates every
//! parameter with AWS's limits and wording, then calls the `Store`. It never
//! sees HTTP or wire bytes, and never sees which engine runs.

pub mod attributes;
pub mod errors;
pub mod input;
pub mod limits;
pub mod md5x;
pub mod message;
pub mod move_tasks;
pub mod ops;
pub mod receipt;

pub use errors::SqsError;

use sluice_core::Clock;
use sluice_store::{QueueInfo, QueueName, Store};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Who is calling and how the request reached us.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller's account (owner of queues it creates).
    pub account: String,
    /// The region the request was addressed to.
    pub region: String,
    /// The Host header, used to build queue URLs the caller can reach.
    pub host: Option<String>,
    /// The request path (the query protocol may address the queue by it).
    pub path: String,
    /// The caller's access key id, reported as SenderId.
    pub access_key: Option<String>,
}

/// Settings of the SQS service.
#[derive(Debug, Clone)]
pub struct SqsConfig {
    /// Host (and port) for queue URLs when a request carries no Host header.
    pub default_host: String,
    /// Key for receipt handles.
    pub receipt_key: [u8; 32],
    /// Most long-poll receives parked at once (`--max-waiters`); one more is
    /// refused with `RequestThrottled` (`limits::WAITERS_MAX_DEFAULT`).
    pub max_waiters: usize,
}

impl SqsConfig {
    /// Settings with the default limits.
    pub fn new(default_host: impl Into<String>, receipt_key: [u8; 32]) -> Self {
        Self { default_host: default_host.into(), receipt_key, max_waiters: limits::WAITERS_MAX_DEFAULT }
    }
}

/// The SQS service.
pub struct Sqs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: SqsConfig,
    pub(crate) receipts: receipt::ReceiptCodec,
    pub(crate) shutdown: Arc<Notify>,
    pub(crate) stopping: AtomicBool,
    pub(crate) move_tasks: move_tasks::Runner,
    /// Long-poll receives parked right now (bounded by `config.max_waiters`).
    pub(crate) waiters: AtomicUsize,
}

/// A parked long poll's place under the waiter cap; given back when dropped
/// (answer, error, or the request future dropped with its connection).
pub(crate) struct WaiterSlot<'a>(&'a AtomicUsize);

impl Drop for WaiterSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sqs {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: SqsConfig) -> Arc<Self> {
        let receipts = receipt::ReceiptCodec::new(config.receipt_key);
        Arc::new(Self {
            store,
            clock,
            config,
            receipts,
            shutdown: Arc::new(Notify::new()),
            stopping: AtomicBool::new(false),
            move_tasks: move_tasks::Runner::default(),
            waiters: AtomicUsize::new(0),
        })
    }

    /// Long-poll receives parked right now.
    pub fn waiting(&self) -> usize {
        self.waiters.load(Ordering::Acquire)
    }

    /// Takes a place under the waiter cap, or `None` when all are taken.
    pub(crate) fn park_slot(&self) -> Option<WaiterSlot<'_>> {
        let max = self.config.max_waiters;
        self.waiters
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| WaiterSlot(&self.waiters))
    }

    /// The store behind the service.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock every operation reads (the expiry sweep reads it too).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Ends every long poll now (they answer with what they have) and stops move tasks.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
        self.move_tasks.cancel_all();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Runs one SQS operation.
    pub async fn dispatch(
        self: &Arc<Self>,
        operation: &str,
        input: serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<serde_json::Value, SqsError> {
        let empty = serde_json::Map::new();
        let map = input.as_object().unwrap_or(&empty);
        let i = input::Input::new(map);
        ops::dispatch(self, operation, &i, ctx).await
    }

    /// Runs an operation whose input came decoded into its shape
    /// (`sluice_protocol::decode_typed`).
    pub async fn dispatch_typed(
        self: &Arc<Self>,
        input: sluice_protocol::TypedInput,
        ctx: &RequestContext,
    ) -> Result<serde_json::Value, SqsError> {
        match input {
            sluice_protocol::TypedInput::SqsSendMessageBatch(i) => ops::send_message_batch::run_typed(self, i, ctx).await,
            sluice_protocol::TypedInput::SqsDeleteMessageBatch(i) => ops::delete_message_batch::run_typed(self, i, ctx).await,
        }
    }

    /// The URL of a queue as seen by this caller.
    pub(crate) fn queue_url(&self, ctx: &RequestContext, name: &QueueName) -> String {
        let host = ctx.host.as_deref().unwrap_or(&self.config.default_host);
        format!("http://{host}/{}/{}", name.account, name.name)
    }

    /// The ARN of a queue.
    pub(crate) fn queue_arn(&self, q: &QueueInfo) -> String {
        sluice_core::ids::arn("sqs", &q.region, &q.name.account, &q.name.name)
    }

    /// Finds the queue a request addresses: `QueueUrl`, or the request path
    /// (query protocol), in the caller's account when the URL names none.
    pub(crate) async fn resolve(&self, i: &input::Input<'_>, ctx: &RequestContext) -> Result<Arc<QueueInfo>, SqsError> {
        self.resolve_url(i.str("QueueUrl")?, ctx).await
    }

    /// `resolve`, given the request's `QueueUrl`.
    pub(crate) async fn resolve_url(&self, url: Option<&str>, ctx: &RequestContext) -> Result<Arc<QueueInfo>, SqsError> {
        let url = match url {
            Some(u) => u.to_string(),
            None if ctx.path.trim_matches('/').contains('/') => ctx.path.clone(),
            None => return Err(errors::missing("QueueUrl")),
        };
        let name = parse_queue_url(&url, &ctx.account).ok_or_else(|| SqsError::InvalidAddress(url.clone()))?;
        self.store.get_queue(&name).await?.ok_or(SqsError::QueueDoesNotExist)
    }

    /// Queues of `account` that `keep` selects, in name order, starting after
    /// the name `after`, at most `limit`; and whether more would follow.
    /// Scans the catalog a page at a time.
    pub(crate) async fn scan_queues(
        &self,
        account: &str,
        after: Option<String>,
        limit: usize,
        keep: impl Fn(&QueueInfo) -> bool,
    ) -> Result<(Vec<Arc<QueueInfo>>, bool), SqsError> {
        const PAGE: usize = 1000;
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.store.list_queues(account, "", cursor.as_deref(), PAGE).await?;
            for q in &page {
                if keep(q) {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(q.clone());
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => cursor = Some(last.name.name.clone()),
                _ => return Ok((out, false)),
            }
        }
    }

    /// Finds a queue by ARN.
    pub(crate) async fn resolve_arn(&self, arn: &str) -> Result<Option<Arc<QueueInfo>>, SqsError> {
        let Some(a) = sluice_core::ids::Arn::parse(arn) else { return Ok(None) };
        if a.service != "sqs" {
            return Ok(None);
        }
        Ok(self.store.get_queue(&QueueName::new(a.account, a.resource)).await?)
    }
}

/// Parses a queue URL (`http://host/account/name`, or just the path) into a
/// queue name; a URL with only a name is taken in `default_account`.
pub fn parse_queue_url(url: &str, default_account: &str) -> Option<QueueName> {
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("")
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [account, name] => Some(QueueName::new(*account, *name)),
        [name] if !url.contains("://") => Some(QueueName::new(default_account, *name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_queue_urls() {
        let q = |a: &str, n: &str| Some(QueueName::new(a, n));
        assert_eq!(parse_queue_url("http://127.0.0.1:4566/000000000000/jobs", "1"), q("000000000000", "jobs"));
        assert_eq!(parse_queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/a.fifo", "1"), q("123456789012", "a.fifo"));
        assert_eq!(parse_queue_url("/000000000000/jobs", "1"), q("000000000000", "jobs"));
        assert_eq!(parse_queue_url("jobs", "1"), q("1", "jobs"));
        assert_eq!(parse_queue_url("http://host/", "1"), None);
        assert_eq!(parse_queue_url("http://host/a/b/c", "1"), None);
    }
}
