//! TagQueue, and the tag rules shared with CreateQueue.

use crate::errors::{missing, SqsError};
use crate::input::Input;
use crate::{limits, RequestContext, Sqs};
use serde_json::Value;
use sluice_store::QueueUpdate;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Checks tag keys and values, and that `existing + new` stays within the limit.
pub fn check_tags(tags: &BTreeMap<String, String>, existing: usize) -> Result<(), SqsError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(SqsError::InvalidParameterValue(format!("Tag key {k} is invalid: must be 1 to 128 characters.")));
        }
        if v.chars().count() > 256 {
            return Err(SqsError::InvalidParameterValue(format!("Tag value for key {k} is invalid: must be at most 256 characters.")));
        }
    }
    if existing + tags.len() > limits::TAGS_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Too many tags added for queue. The maximum number of tags is {}.",
            limits::TAGS_MAX
        )));
    }
    Ok(())
}

pub async fn run(sqs: &Arc<Sqs>, i: &Input<'_>, ctx: &RequestContext) -> Result<Value, SqsError> {
    let q = sqs.resolve(i, ctx).await?;
    if i.raw("Tags").is_none() {
        return Err(missing("Tags"));
    }
    let new = i.str_map("Tags")?;
    let mut tags = q.tags.clone();
    let added = new.keys().filter(|k| !tags.contains_key(*k)).count();
    check_tags(&new, 0)?;
    if tags.len() + added > limits::TAGS_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Too many tags added for queue. The maximum number of tags is {}.",
            limits::TAGS_MAX
        )));
    }
    tags.extend(new);
    sqs.store.update_queue(q.id, QueueUpdate { tags: Some(tags), ..Default::default() }, sqs.now_ms()).await?;
    Ok(super::empty())
}
