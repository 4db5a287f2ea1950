//! SendMessage, and the per-message validation SendMessageBatch shares.

use crate::errors::{invalid_value, missing, SqsError};
use crate::input::{Fields, Input};
use crate::message::{self, Envelope};
use crate::{limits, RequestContext, Sqs};
use serde_json::{Map, Value};
use sluice_store::{NewMessage, QueueInfo, SendOutcome};
use std::sync::Arc;

/// A validated message ready for the store, with the digests to report.
pub struct Prepared {
    /// What the store gets.
    pub message: NewMessage,
    /// Body size plus attributes, as SQS counts it.
    pub size: usize,
    /// What the response reports of it.
    pub digests: Digests,
}

/// The digests a send reports for one message.
pub struct Digests {
    md5_body: String,
    md5_attrs: Option<String>,
    md5_system: Option<String>,
}

impl Digests {
    /// The result fields of SendMessage / a SendMessageBatch entry, with
    /// room for the entry's `Id`.
    pub fn result(self, sent: &SendOutcome, fifo: bool) -> Map<String, Value> {
        let mut m = Map::with_capacity(6);
        m.insert("MessageId".into(), Value::String(message::message_id(sent.message_id)));
        m.insert("MD5OfMessageBody".into(), Value::String(self.md5_body));
        if let Some(a) = self.md5_attrs {
            m.insert("MD5OfMessageAttributes".into(), Value::String(a));
        }
        if let Some(s) = self.md5_system {
            m.insert("MD5OfMessageSystemAttributes".into(), Value::String(s));
        }
        if fifo {
            m.insert("SequenceNumber".into(), Value::String(format!("{:020}", sent.sequence_number)));
        }
        m
    }
}

/// Validates one message (SendMessage input or a batch entry) for queue `q`.
pub fn prepare(q: &QueueInfo, i: &Input<'_>, ctx: &RequestContext) -> Result<Prepared, SqsError> {
    prepare_with(q, i, ctx, None)
}

/// `prepare`, with the body's MD5 when the caller has computed it already
/// (SendMessageBatch hashes its bodies together, see `md5x`).
pub fn prepare_with<'a>(q: &QueueInfo, i: &impl Fields<'a>, ctx: &RequestContext, body_md5: Option<[u8; 16]>) -> Result<Prepared, SqsError> {
    let body = i.str("MessageBody")?.filter(|b| !b.is_empty()).ok_or_else(|| missing("MessageBody"))?;
    message::check_body(body)?;
    let delay = match i.int("DelaySeconds")? {
        Some(d) if !(0..=limits::DELAY_SECS_MAX).contains(&d) => {
            return Err(invalid_value("DelaySeconds", d, "DelaySeconds must be >= 0 and <= 900."))
        }
        // FIFO queues take only the queue's delay (REFERENCE.md; ElasticMQ #274 allows 0).
        Some(d) if q.config.fifo && d != 0 => {
            return Err(invalid_value("DelaySeconds", d, "The request include parameter that is not valid for this queue type."))
        }
        Some(d) if !q.config.fifo => d as u32,
        _ => q.config.delay_secs,
    };
    let attributes = message::parse_attributes(i.raw("MessageAttributes"), false)?;
    let system = message::parse_attributes(i.raw("MessageSystemAttributes"), true)?;
    let group_id = i.str("MessageGroupId")?;
    let explicit_dedup = i.str("MessageDeduplicationId")?;
    if !q.config.fifo && explicit_dedup.is_some() {
        return Err(invalid_value(
            "MessageDeduplicationId",
            explicit_dedup.unwrap_or_default(),
            "The request include parameter that is not valid for this queue type",
        ));
    }
    let token_ok = |t: &str| !t.is_empty() && t.len() <= limits::GROUP_ID_CHARS_MAX && t.chars().all(|c| c.is_ascii_graphic());
    if let Some(g) = group_id {
        if !token_ok(g) {
            return Err(invalid_value("MessageGroupId", g, "MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length."));
        }
    }
    if q.config.fifo && group_id.is_none() {
        return Err(missing("MessageGroupId"));
    }
    if let Some(d) = explicit_dedup {
        if !token_ok(d) {
            return Err(invalid_value("MessageDeduplicationId", d, "MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length."));
        }
    }
    // FIFO deduplication: the explicit id, else SHA-256 of the body when
    // ContentBasedDeduplication is on (the body only, not the attributes).
    let dedup_id = match (q.config.fifo, explicit_dedup) {
        (false, _) => None,
        (true, Some(d)) => Some(d.to_string()),
        (true, None) if q.config.content_based_dedup => {
            use sha2::Digest;
            Some(message::hex_lower(&sha2::Sha256::digest(body.as_bytes())))
        }
        (true, None) => {
            return Err(SqsError::InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
            ))
        }
    };
    let size = message::message_size(body, &attributes);
    let max = q
        .attributes
        .get("MaximumMessageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(limits::MESSAGE_BYTES_MAX);
    if size > max {
        return Err(SqsError::InvalidParameterValue(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    let md5_attrs = (!attributes.is_empty()).then(|| message::md5_of_attributes(&attributes));
    let md5_system = (!system.is_empty()).then(|| message::md5_of_attributes(&system));
    let trace_header = system.get("AWSTraceHeader").and_then(|a| match &a.value {
        message::AttrValue::Text(s) => Some(s.clone()),
        message::AttrValue::Binary(_) => None,
    });
    let envelope = Envelope {
        body: body.to_string(),
        attributes,
        trace_header,
        sender_id: ctx.access_key.clone().unwrap_or_else(|| ctx.account.clone()),
    };
    let md5_body: [u8; 16] = body_md5.unwrap_or_else(|| {
        use md5::Digest;
        md5::Md5::digest(body.as_bytes()).into()
    });
    Ok(Prepared {
        message: NewMessage {
            message_id: uuid::Uuid::new_v4().as_u128(),
            payload: envelope.encode_with_md5(&md5_body),
            delay_secs: delay,
            group_id: group_id.map(str::to_string),
            dedup_id,
        },
        size,
        digests: Digests { md5_body: message::hex_lower(&md5_body), md5_attrs, md5_system },
    })
}

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    let p = prepare(&q, i, ctx)?;
    let sent = sqs.store.send(q.id, vec![p.message], sqs.now_ms()).await?;
    let s = sent.first().ok_or(SqsError::InternalError)?;
    Ok(Value::Object(p.digests.result(s, q.config.fifo)))
}
