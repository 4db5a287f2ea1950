//! CreateQueue: validate name and attributes, create, or return the existing
//! queue when every given attribute matches (else QueueNameExists).

use crate::attributes::{self, check_queue_name};
use crate::errors::{missing, SqsError};
use crate::input::Input;
use crate::{limits, RequestContext, Sqs};
use serde_json::{json, Value};
use sluice_store::{CreateOutcome, NewQueue, QueueName};
use std::sync::Arc;

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let name = i.str("QueueName")?.ok_or_else(|| missing("QueueName"))?;
    let given = i.str_map("Attributes")?;
    let tags = i.str_map("tags")?;
    let fifo_attr = given.get("FifoQueue").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let fifo = name.ends_with(".fifo");
    if fifo && !fifo_attr {
        return Err(SqsError::InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length".into(),
        ));
    }
    check_queue_name(name, fifo_attr)?;
    if fifo && !attributes::FIFO_SUPPORTED {
        return Err(SqsError::UnsupportedOperation("FIFO queues are not supported by this sluice build yet.".into()));
    }
    super::tag_queue::check_tags(&tags, 0)?;
    let qname = QueueName::new(ctx.account.clone(), name);
    let base = attributes::defaults(fifo);
    let (attrs, config) = attributes::apply(sqs, &qname, &ctx.region, fifo, &base, &given, true).await?;
    let now = sqs.now_ms();
    let new = NewQueue {
        name: qname.clone(),
        region: ctx.region.clone(),
        attributes: attributes::stored(attrs.clone(), fifo),
        config,
        tags,
        refuse_if_deleted_after_ms: now.saturating_sub(limits::RECREATE_COOLDOWN_MS),
    };
    match sqs.store.create_queue(new, now).await? {
        CreateOutcome::Created(q) => Ok(json!({ "QueueUrl": sqs.queue_url(ctx, &q.name) })),
        CreateOutcome::Exists(q) => {
            // Only the attributes the caller gave are compared, against the
            // existing queue's effective values.
            let existing = attributes::effective(&q);
            for k in given.keys() {
                if attrs.get(k) != existing.get(k) {
                    return Err(SqsError::QueueNameExists(k.clone()));
                }
            }
            Ok(json!({ "QueueUrl": sqs.queue_url(ctx, &q.name) }))
        }
        CreateOutcome::DeletedRecently => Err(SqsError::QueueDeletedRecently),
    }
}
