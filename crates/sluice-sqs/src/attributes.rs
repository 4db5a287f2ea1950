//! Queue attributes: which exist, their bounds and defaults, their validation
//! (with the wording SQS uses), and the `QueueConfig` the engine applies.

use crate::errors::SqsError;
use crate::limits;
use crate::Sqs;
use serde_json::{json, Value};
use sluice_store::{QueueConfig, QueueInfo, QueueName, Redrive};
use std::collections::BTreeMap;

/// Attributes a caller may set.
pub const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Attributes computed by the service, readable only.
pub const COMPUTED: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

const FIFO_ONLY: &[&str] = &["FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"];

/// Whether this build serves FIFO queues.
pub const FIFO_SUPPORTED: bool = true;

fn bad_value(name: &str) -> SqsError {
    SqsError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."))
}

fn int_attr(name: &str, v: &str, min: i64, max: i64) -> Result<i64, SqsError> {
    let n: i64 = v.trim().parse().map_err(|_| bad_value(name))?;
    if n < min || n > max {
        return Err(bad_value(name));
    }
    Ok(n)
}

fn bool_attr(name: &str, v: &str) -> Result<bool, SqsError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_value(name)),
    }
}

/// The effective attributes of a new queue: defaults, overlaid by `given`.
pub fn defaults(fifo: bool) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("VisibilityTimeout".into(), limits::VISIBILITY_TIMEOUT_SECS_DEFAULT.to_string());
    m.insert("MaximumMessageSize".into(), limits::MESSAGE_BYTES_MAX.to_string());
    m.insert("MessageRetentionPeriod".into(), limits::RETENTION_SECS_DEFAULT.to_string());
    m.insert("DelaySeconds".into(), "0".into());
    m.insert("ReceiveMessageWaitTimeSeconds".into(), "0".into());
    m.insert("SqsManagedSseEnabled".into(), "true".into());
    if fifo {
        m.insert("FifoQueue".into(), "true".into());
        m.insert("ContentBasedDeduplication".into(), "false".into());
        m.insert("DeduplicationScope".into(), "queue".into());
        m.insert("FifoThroughputLimit".into(), "perQueue".into());
    }
    m
}

/// The effective attributes of a stored queue: the defaults overlaid by what
/// is stored. Older data directories stored every value; both read the same.
pub fn effective(q: &QueueInfo) -> BTreeMap<String, String> {
    let mut m = defaults(q.config.fifo);
    m.extend(q.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    m
}

/// What is stored of a queue's effective attributes: only the values that
/// differ from the defaults (`effective` adds those back). An idle queue with
/// default attributes then stores none: six to ten strings and a tree node
/// fewer per queue, about 0.7 KiB of heap (R17: 10,000 idle queues).
/// Every default is present in every effective map (no attribute with a
/// default can be removed), so nothing is lost.
pub fn stored(mut attrs: BTreeMap<String, String>, fifo: bool) -> BTreeMap<String, String> {
    let d = defaults(fifo);
    attrs.retain(|k, v| d.get(k) != Some(v));
    attrs
}

/// Validates `given` attributes for a queue named `name` (being created when
/// `existing` is None) and returns the normalised effective attributes and
/// the engine configuration.
pub async fn apply(
    sqs: &Sqs,
    name: &QueueName,
    region: &str,
    fifo: bool,
    base: &BTreeMap<String, String>,
    given: &BTreeMap<String, String>,
    creating: bool,
) -> Result<(BTreeMap<String, String>, QueueConfig), SqsError> {
    let mut attrs = base.clone();
    for (k, v) in given {
        if !SETTABLE.contains(&k.as_str()) {
            return Err(SqsError::InvalidAttributeName(format!("Unknown Attribute {k}.")));
        }
        if FIFO_ONLY.contains(&k.as_str()) && !fifo {
            // FifoQueue=true on a name without `.fifo` is a bad queue name;
            // any other FIFO attribute on a standard queue, FifoQueue=false
            // included, is unknown there (aws/aws-sdk-php#1331).
            if k == "FifoQueue" && creating && v.eq_ignore_ascii_case("true") {
                return Err(SqsError::InvalidParameterValue(
                    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into(),
                ));
            }
            return Err(SqsError::InvalidAttributeName(format!("Unknown Attribute {k}.")));
        }
        let normalised = match k.as_str() {
            "DelaySeconds" => int_attr(k, v, 0, limits::DELAY_SECS_MAX)?.to_string(),
            "MaximumMessageSize" => {
                int_attr(k, v, limits::MESSAGE_BYTES_MIN_SETTING as i64, limits::MESSAGE_BYTES_MAX as i64)?.to_string()
            }
            "MessageRetentionPeriod" => {
                int_attr(k, v, limits::RETENTION_SECS_MIN, limits::RETENTION_SECS_MAX)?.to_string()
            }
            "ReceiveMessageWaitTimeSeconds" => int_attr(k, v, 0, limits::WAIT_TIME_SECS_MAX)?.to_string(),
            "VisibilityTimeout" => int_attr(k, v, 0, limits::VISIBILITY_TIMEOUT_SECS_MAX)?.to_string(),
            "KmsDataKeyReusePeriodSeconds" => int_attr(k, v, 60, 86_400)?.to_string(),
            "SqsManagedSseEnabled" | "ContentBasedDeduplication" => bool_attr(k, v)?.to_string(),
            "FifoQueue" => {
                // Only `true` fits a FIFO queue; setting it again is a no-op.
                if !bool_attr(k, v)? {
                    return Err(SqsError::InvalidAttributeValue(
                        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.".into(),
                    ));
                }
                "true".into()
            }
            "DeduplicationScope" => match v.as_str() {
                "queue" | "messageGroup" => v.clone(),
                _ => return Err(bad_value(k)),
            },
            "FifoThroughputLimit" => match v.as_str() {
                "perQueue" | "perMessageGroupId" => v.clone(),
                _ => return Err(bad_value(k)),
            },
            "Policy" => {
                if v.is_empty() {
                    attrs.remove(k);
                    continue;
                }
                let p: Value = serde_json::from_str(v).map_err(|_| bad_value(k))?;
                if !p.is_object() {
                    return Err(bad_value(k));
                }
                v.clone()
            }
            "KmsMasterKeyId" => {
                if v.is_empty() {
                    attrs.remove(k);
                    attrs.remove("KmsDataKeyReusePeriodSeconds");
                    continue;
                }
                attrs.insert("SqsManagedSseEnabled".into(), "false".into());
                attrs.entry("KmsDataKeyReusePeriodSeconds".into()).or_insert_with(|| "300".into());
                v.clone()
            }
            "RedrivePolicy" => {
                if v.is_empty() {
                    attrs.remove(k);
                    continue;
                }
                redrive_policy(sqs, name, region, fifo, v).await?
            }
            "RedriveAllowPolicy" => {
                if v.is_empty() {
                    attrs.remove(k);
                    continue;
                }
                redrive_allow_policy(v)?
            }
            _ => v.clone(),
        };
        attrs.insert(k.clone(), normalised);
    }
    if given.get("SqsManagedSseEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) && given.contains_key("KmsMasterKeyId") {
        return Err(SqsError::InvalidAttributeValue(
            "You can use one type of server-side encryption (SSE) at one time. You can either enable KMS SSE or SQS SSE.".into(),
        ));
    }
    // High throughput for FIFO queues: perMessageGroupId throughput needs
    // messageGroup deduplication (CreateQueue documentation, FifoThroughputLimit).
    if fifo
        && attrs.get("FifoThroughputLimit").map(String::as_str) == Some("perMessageGroupId")
        && attrs.get("DeduplicationScope").map(String::as_str) != Some("messageGroup")
    {
        return Err(SqsError::InvalidAttributeValue(
            "Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId requires DeduplicationScope messageGroup.".into(),
        ));
    }
    let config = config_of(&attrs, fifo);
    Ok((attrs, config))
}

/// Derives the engine configuration from effective attributes.
pub fn config_of(attrs: &BTreeMap<String, String>, fifo: bool) -> QueueConfig {
    let num = |k: &str, d: u32| attrs.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let redrive = attrs.get("RedrivePolicy").and_then(|p| {
        let v: Value = serde_json::from_str(p).ok()?;
        let arn = sluice_core::ids::Arn::parse(v.get("deadLetterTargetArn")?.as_str()?)?;
        let max = v.get("maxReceiveCount")?.as_u64()? as u32;
        Some(Redrive { dead_letter_target: QueueName::new(arn.account, arn.resource), max_receive_count: max })
    });
    QueueConfig {
        visibility_timeout_secs: num("VisibilityTimeout", limits::VISIBILITY_TIMEOUT_SECS_DEFAULT),
        delay_secs: num("DelaySeconds", 0),
        retention_secs: num("MessageRetentionPeriod", limits::RETENTION_SECS_DEFAULT),
        redrive,
        fifo,
        content_based_dedup: attrs.get("ContentBasedDeduplication").is_some_and(|v| v == "true"),
        dedup_scope_group: attrs.get("DeduplicationScope").is_some_and(|v| v == "messageGroup"),
    }
}

async fn redrive_policy(sqs: &Sqs, source: &QueueName, region: &str, fifo: bool, v: &str) -> Result<String, SqsError> {
    let invalid = |reason: &str| {
        SqsError::InvalidParameterValue(format!("Value {v} for parameter RedrivePolicy is invalid. Reason: {reason}"))
    };
    let p: Value = serde_json::from_str(v).map_err(|_| invalid("Redrive policy is not a valid JSON map."))?;
    let obj = p.as_object().ok_or_else(|| invalid("Redrive policy is not a valid JSON map."))?;
    for k in obj.keys() {
        if k != "deadLetterTargetArn" && k != "maxReceiveCount" {
            return Err(invalid("Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount]."));
        }
    }
    let arn = obj
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn."))?;
    let max = match obj.get("maxReceiveCount") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        None => return Err(invalid("Redrive policy does not contain mandatory attribute: maxReceiveCount.")),
        _ => None,
    }
    .filter(|n| (1..=limits::MAX_RECEIVE_COUNT_MAX).contains(n))
    .ok_or_else(|| invalid("Invalid value for maxReceiveCount: must be an integer from 1 to 1000."))?;
    let target = sqs.resolve_arn(arn).await?.ok_or_else(|| invalid("Dead letter target does not exist."))?;
    if target.config.fifo != fifo {
        return Err(invalid("Dead-letter queue must be same type of queue as the source."));
    }
    if &target.name == source {
        return Err(invalid("Dead-letter target cannot be the queue itself."));
    }
    let source_arn = sluice_core::ids::arn("sqs", region, &source.account, &source.name);
    if !redrive_allowed(&target, &source_arn) {
        return Err(invalid(&format!("Queue {arn} does not allow this queue to use it as a dead-letter queue.")));
    }
    Ok(json!({"deadLetterTargetArn": arn, "maxReceiveCount": max}).to_string())
}

/// Does the dead-letter queue's RedriveAllowPolicy let `source_arn` use it?
pub fn redrive_allowed(dlq: &QueueInfo, source_arn: &str) -> bool {
    let Some(p) = dlq.attributes.get("RedriveAllowPolicy") else { return true };
    let Ok(v) = serde_json::from_str::<Value>(p) else { return true };
    match v.get("redrivePermission").and_then(Value::as_str) {
        Some("denyAll") => false,
        Some("byQueue") => v
            .get("sourceQueueArns")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(source_arn))),
        _ => true,
    }
}

fn redrive_allow_policy(v: &str) -> Result<String, SqsError> {
    let invalid = |reason: &str| {
        SqsError::InvalidParameterValue(format!(
            "Value {v} for parameter RedriveAllowPolicy is invalid. Reason: {reason}"
        ))
    };
    let p: Value = serde_json::from_str(v).map_err(|_| invalid("Amazon SQS can't parse the RedriveAllowPolicy."))?;
    let perm = p
        .get("redrivePermission")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Redrive permission is required."))?;
    let sources = p.get("sourceQueueArns");
    match perm {
        "allowAll" | "denyAll" => {
            if sources.is_some() {
                return Err(invalid("Source queue ARNs can only be specified when redrivePermission is byQueue."));
            }
            Ok(json!({"redrivePermission": perm}).to_string())
        }
        "byQueue" => {
            let arr = sources
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && a.len() <= limits::REDRIVE_ALLOW_SOURCES_MAX && a.iter().all(Value::is_string))
                .ok_or_else(|| invalid("sourceQueueArns must list 1 to 10 queue ARNs when redrivePermission is byQueue."))?;
            Ok(json!({"redrivePermission": perm, "sourceQueueArns": arr}).to_string())
        }
        _ => Err(invalid("Redrive permission must be one of allowAll, denyAll or byQueue.")),
    }
}

/// Checks a queue name: 1 to 80 of `[A-Za-z0-9_-]`, plus `.fifo` for FIFO queues.
pub fn check_queue_name(name: &str, fifo: bool) -> Result<(), SqsError> {
    let stem = if fifo { name.strip_suffix(".fifo").unwrap_or("") } else { name };
    let ok = !stem.is_empty()
        && name.len() <= limits::QUEUE_NAME_CHARS_MAX
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        return Ok(());
    }
    Err(SqsError::InvalidParameterValue(if fifo {
        "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into()
    } else {
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length".into()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names() {
        assert!(check_queue_name("jobs-1_a", false).is_ok());
        assert!(check_queue_name(&"a".repeat(80), false).is_ok());
        assert!(check_queue_name(&"a".repeat(81), false).is_err());
        assert!(check_queue_name("", false).is_err());
        assert!(check_queue_name("a.b", false).is_err());
        assert!(check_queue_name("a.fifo", true).is_ok());
        assert!(check_queue_name(".fifo", true).is_err());
        assert!(check_queue_name("a", true).is_err());
    }

    #[test]
    fn config_from_attributes() {
        let mut a = defaults(false);
        a.insert("VisibilityTimeout".into(), "7".into());
        a.insert(
            "RedrivePolicy".into(),
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}"#.into(),
        );
        let c = config_of(&a, false);
        assert_eq!(c.visibility_timeout_secs, 7);
        assert_eq!(c.retention_secs, 345_600);
        let r = c.redrive.unwrap();
        assert_eq!(r.max_receive_count, 3);
        assert_eq!(r.dead_letter_target, QueueName::new("000000000000", "dlq"));
    }

    #[test]
    fn only_values_other_than_the_defaults_are_stored_and_effective_restores_them() {
        for fifo in [false, true] {
            assert!(stored(defaults(fifo), fifo).is_empty(), "an idle queue stores no attribute");
            let mut effective_attrs = defaults(fifo);
            effective_attrs.insert("VisibilityTimeout".into(), "7".into());
            effective_attrs.insert("SqsManagedSseEnabled".into(), "false".into());
            effective_attrs.insert("Policy".into(), "{}".into());
            let kept = stored(effective_attrs.clone(), fifo);
            assert_eq!(kept.keys().map(String::as_str).collect::<Vec<_>>(), ["Policy", "SqsManagedSseEnabled", "VisibilityTimeout"]);
            let q = QueueInfo {
                id: 1,
                name: QueueName::new("000000000000", if fifo { "q.fifo" } else { "q" }),
                region: "us-east-1".into(),
                attributes: kept,
                config: config_of(&effective_attrs, fifo),
                tags: BTreeMap::new(),
                created_ms: 0,
                last_modified_ms: 0,
                last_purge_ms: None,
            };
            assert_eq!(effective(&q), effective_attrs);
            // A data directory written before defaults were left out reads the same.
            assert_eq!(effective(&QueueInfo { attributes: effective_attrs.clone(), ..q }), effective_attrs);
        }
    }
}
