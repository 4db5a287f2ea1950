//! ReceiveMessage with long polling.
//!
//! A long poll registers on the queue's notifier *before* each receive
//! attempt, so a send that lands between the attempt and the wait still wakes
//! it; it also wakes at the next moment a delayed or in-flight message becomes
//! visible, and never busy-polls. A poll stays registered while its attempt
//! runs (with the durable engine that includes the attempt's fsync), so a
//! send's `notify_one` can land on a poll that then answers with what it
//! already took: tokio's `Notified` hands such an unused wake-up on to the
//! next waiter when it is dropped (tests/long_poll_handoff.rs holds it to that).
//!
//! Waiter cap: a poll takes a place under `--max-waiters` only when it is
//! about to park (its first attempt found nothing), so a long poll on a queue
//! with messages is answered whatever the load. Past the cap it is refused at
//! once with `RequestThrottled` (403, legacy code `RequestThrottled`). Why an
//! error and not an early empty answer: AWS answers a long poll empty only
//! when its wait has run out, so consumer loops re-poll an empty answer at
//! once — an early empty answer under load would turn every parked consumer
//! into a busy-poller hammering the server that is already full. The
//! `RequestThrottled` code is in the throttling lists of botocore's standard
//! retries, the Rust SDK (`aws-runtime` `THROTTLING_ERRORS`) and the JS SDK,
//! and botocore's legacy `_retry.json` retries it for SQS when the status is
//! 403: every SDK backs off and retries by itself, and nothing was received,
//! so nothing is lost or made invisible by the refusal.

use crate::errors::{invalid_value, SqsError};
use crate::input::Input;
use crate::message::{self, Envelope};
use crate::{limits, RequestContext, Sqs};
use serde_json::{json, Map, Value};
use sluice_store::{QueueInfo, ReceiveParams, ReceivedMessage};
use std::sync::Arc;
use std::time::Duration;

const SYSTEM_ATTRIBUTES: &[&str] = &[
    "All",
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let max = match i.int("MaxNumberOfMessages")? {
        Some(n) if !(1..=limits::RECEIVE_MESSAGES_MAX).contains(&n) => {
            return Err(invalid_value("MaxNumberOfMessages", n, "Must be between 1 and 10, if provided."))
        }
        Some(n) => n as usize,
        None => 1,
    };
    let visibility = match i.int("VisibilityTimeout")? {
        Some(v) if !(0..=limits::VISIBILITY_TIMEOUT_SECS_MAX).contains(&v) => {
            return Err(invalid_value("VisibilityTimeout", v, "Must be >= 0 and <= 43200, if provided."))
        }
        Some(v) => v as u32,
        None => q.config.visibility_timeout_secs,
    };
    let wait = match i.int("WaitTimeSeconds")? {
        Some(w) if !(0..=limits::WAIT_TIME_SECS_MAX).contains(&w) => {
            return Err(invalid_value("WaitTimeSeconds", w, "Must be >= 0 and <= 20, if provided."))
        }
        Some(w) => w as u64,
        None => q.attributes.get("ReceiveMessageWaitTimeSeconds").and_then(|v| v.parse().ok()).unwrap_or(0),
    };
    let mut system_names = i.str_list("AttributeNames")?;
    system_names.extend(i.str_list("MessageSystemAttributeNames")?);
    for n in &system_names {
        if !SYSTEM_ATTRIBUTES.contains(&n.as_str()) {
            return Err(SqsError::InvalidAttributeName(format!("Unknown Attribute {n}.")));
        }
    }
    let attribute_names = i.str_list("MessageAttributeNames")?;
    let attempt_id = match i.str("ReceiveRequestAttemptId")? {
        Some(a) if a.is_empty() || a.len() > 128 || !a.chars().all(|c| c.is_ascii_graphic()) => {
            return Err(invalid_value("ReceiveRequestAttemptId", a, "ReceiveRequestAttemptId can only include alphanumeric and punctuation characters. 1 to 128 in length."))
        }
        // Attempt ids only mean something on FIFO queues; standard queues ignore them.
        Some(a) if q.config.fifo => Some(a.to_string()),
        _ => None,
    };
    let params = ReceiveParams {
        max,
        visibility_timeout_secs: visibility,
        inflight_limit: limits::INFLIGHT_MESSAGES_MAX,
        attempt_id,
    };

    // The wait is measured on the monotonic clock (a wall-clock jump must not
    // stretch or cut a long poll); message visibility is measured on `Clock`.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let notify = sqs.store.notifier(q.id).ok_or(SqsError::QueueDoesNotExist)?;
    let mut slot = None;
    let received = loop {
        let notified = notify.notified();
        let stop = sqs.shutdown.notified();
        tokio::pin!(notified, stop);
        notified.as_mut().enable();
        stop.as_mut().enable();
        let now = sqs.now_ms();
        let out = sqs.store.receive(q.id, params.clone(), now).await?;
        if out.over_limit && out.messages.is_empty() && !q.config.fifo {
            return Err(SqsError::OverLimit(format!(
                "Too many messages in flight: the limit of {} in-flight messages is reached.",
                limits::INFLIGHT_MESSAGES_MAX
            )));
        }
        let mono = tokio::time::Instant::now();
        if !out.messages.is_empty() || mono >= deadline || sqs.is_stopping() {
            break out.messages;
        }
        if slot.is_none() {
            slot = Some(sqs.park_slot().ok_or_else(|| {
                tracing::debug!(max_waiters = sqs.config.max_waiters, "long poll refused: waiter cap reached");
                SqsError::RequestThrottled(format!(
                    "The request was denied due to request throttling: {} long-poll receives are already waiting on this server (its --max-waiters limit). Retry with backoff.",
                    sqs.config.max_waiters
                ))
            })?);
        }
        let wake = match out.next_visible_ms {
            Some(t) => deadline.min(mono + Duration::from_millis(t.saturating_sub(now).max(1))),
            None => deadline,
        };
        tokio::select! {
            _ = &mut notified => {}
            _ = &mut stop => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    };
    drop(slot);
    let mut messages = Vec::with_capacity(received.len());
    for r in &received {
        messages.push(render(sqs, &q, r, &system_names, &attribute_names).await?);
    }
    let mut out = Map::new();
    if !messages.is_empty() {
        out.insert("Messages".into(), Value::Array(messages));
    }
    Ok(Value::Object(out))
}

async fn render(
    sqs: &Sqs,
    q: &QueueInfo,
    r: &ReceivedMessage,
    system_names: &[String],
    attribute_names: &[String],
) -> Result<Value, SqsError> {
    let m = &r.message;
    let (env, md5_body) = Envelope::decode_with_md5(&m.payload).ok_or_else(|| {
        tracing::error!(queue = %q.name.name, seq = m.sequence_number, "undecodable message payload");
        SqsError::InternalError
    })?;
    let mut o = Map::new();
    o.insert("MessageId".into(), Value::String(crate::message::message_id(m.message_id)));
    o.insert("ReceiptHandle".into(), Value::String(sqs.receipts.encode(q.id, r.receipt)));
    o.insert("MD5OfBody".into(), Value::String(md5_body));
    o.insert("Body".into(), Value::String(env.body));
    let wants = |n: &str| system_names.iter().any(|x| x == "All" || x == n);
    let mut attrs = Map::new();
    if wants("SenderId") {
        attrs.insert("SenderId".into(), Value::String(env.sender_id));
    }
    if wants("SentTimestamp") {
        attrs.insert("SentTimestamp".into(), Value::String(m.sent_ms.to_string()));
    }
    if wants("ApproximateReceiveCount") {
        attrs.insert("ApproximateReceiveCount".into(), Value::String(m.receive_count.to_string()));
    }
    if wants("ApproximateFirstReceiveTimestamp") {
        attrs.insert("ApproximateFirstReceiveTimestamp".into(), Value::String(m.first_receive_ms.to_string()));
    }
    if wants("AWSTraceHeader") {
        if let Some(t) = &env.trace_header {
            attrs.insert("AWSTraceHeader".into(), json!(t));
        }
    }
    if wants("MessageGroupId") {
        if let Some(g) = &m.group_id {
            attrs.insert("MessageGroupId".into(), json!(g));
        }
    }
    if q.config.fifo {
        if wants("SequenceNumber") {
            attrs.insert("SequenceNumber".into(), Value::String(format!("{:020}", m.sequence_number)));
        }
        if wants("MessageDeduplicationId") {
            if let Some(d) = &m.dedup_id {
                attrs.insert("MessageDeduplicationId".into(), json!(d));
            }
        }
    }
    if wants("DeadLetterQueueSourceArn") {
        if let Some(src) = m.dead_letter_source {
            if let Some(sq) = sqs.store.get_queue_by_id(src).await? {
                attrs.insert("DeadLetterQueueSourceArn".into(), json!(sqs.queue_arn(&sq)));
            }
        }
    }
    if !attrs.is_empty() {
        o.insert("Attributes".into(), Value::Object(attrs));
    }
    let selected: Vec<_> =
        env.attributes.iter().filter(|(n, _)| message::name_selected(attribute_names, n)).collect();
    if !selected.is_empty() {
        o.insert("MD5OfMessageAttributes".into(), json!(message::md5_of_attributes(selected.iter().copied())));
        o.insert("MessageAttributes".into(), message::attributes_to_json(selected.iter().copied()));
    }
    Ok(Value::Object(o))
}
