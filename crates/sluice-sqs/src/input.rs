//! Typed access to the JSON-shaped input of an operation, with SQS's wording
//! for missing and malformed parameters.

use crate::errors::{invalid_value, missing, SqsError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The members of one batch entry, read the same way from an `Input` and
/// from a typed entry (`sluice_protocol::SendMessageBatchEntry`,
/// `DeleteMessageBatchEntry`).
pub trait Fields<'a> {
    /// An optional string member.
    fn str(&self, key: &str) -> Result<Option<&'a str>, SqsError>;
    /// An optional integer member.
    fn int(&self, key: &str) -> Result<Option<i64>, SqsError>;
    /// The raw value of a member the typed shape does not have (message
    /// attributes); `None` there.
    fn raw(&self, key: &str) -> Option<&'a Value>;
    /// A required string member.
    fn req_str(&self, key: &str) -> Result<&'a str, SqsError> {
        self.str(key)?.ok_or_else(|| missing(key))
    }
}

impl<'a> Fields<'a> for Input<'a> {
    fn str(&self, key: &str) -> Result<Option<&'a str>, SqsError> {
        Input::str(self, key)
    }
    fn int(&self, key: &str) -> Result<Option<i64>, SqsError> {
        Input::int(self, key)
    }
    fn raw(&self, key: &str) -> Option<&'a Value> {
        Input::raw(self, key)
    }
}

/// A typed batch entry: its members by their model names. It has no
/// message attributes (such entries take the general path).
impl<'a> Fields<'a> for &'a sluice_protocol::SendMessageBatchEntry {
    fn str(&self, key: &str) -> Result<Option<&'a str>, SqsError> {
        let e: &'a sluice_protocol::SendMessageBatchEntry = self;
        Ok(match key {
            "Id" => e.id.as_deref(),
            "MessageBody" => e.message_body.as_deref(),
            "MessageDeduplicationId" => e.message_deduplication_id.as_deref(),
            "MessageGroupId" => e.message_group_id.as_deref(),
            _ => None,
        })
    }
    fn int(&self, key: &str) -> Result<Option<i64>, SqsError> {
        Ok(match key {
            "DelaySeconds" => self.delay_seconds.map(i64::from),
            _ => None,
        })
    }
    fn raw(&self, _key: &str) -> Option<&'a Value> {
        None
    }
}

/// A typed DeleteMessageBatch entry.
impl<'a> Fields<'a> for &'a sluice_protocol::DeleteMessageBatchEntry {
    fn str(&self, key: &str) -> Result<Option<&'a str>, SqsError> {
        let e: &'a sluice_protocol::DeleteMessageBatchEntry = self;
        Ok(match key {
            "Id" => e.id.as_deref(),
            "ReceiptHandle" => e.receipt_handle.as_deref(),
            _ => None,
        })
    }
    fn int(&self, _key: &str) -> Result<Option<i64>, SqsError> {
        Ok(None)
    }
    fn raw(&self, _key: &str) -> Option<&'a Value> {
        None
    }
}

/// Members up to which `Input::raw` scans instead of hashing.
const SCAN_MEMBERS_MAX: usize = 8;

/// The input object of one operation.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Input<'a> {
    /// Wraps an input object.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map }
    }

    /// The raw value of a member.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        // An input holds a handful of members: comparing their names in
        // order is cheaper than hashing the key (SipHash, in `Map::get`),
        // which each entry of a batch paid six times.
        let found = if self.map.len() <= SCAN_MEMBERS_MAX {
            self.map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        } else {
            self.map.get(key)
        };
        found.filter(|v| !v.is_null())
    }

    /// An optional string member.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, SqsError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(invalid_value(key, v, "Must be a string.")),
        }
    }

    /// A required string member.
    pub fn req_str(&self, key: &str) -> Result<&'a str, SqsError> {
        self.str(key)?.ok_or_else(|| missing(key))
    }

    /// An optional integer member (a JSON number, or a numeric string).
    pub fn int(&self, key: &str) -> Result<Option<i64>, SqsError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid_value(key, n, "Must be an integer.")),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| invalid_value(key, s, "Must be an integer."))
            }
            Some(v) => Err(invalid_value(key, v, "Must be an integer.")),
        }
    }

    /// An integer member checked against a range, with SQS's wording.
    pub fn int_in(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, SqsError> {
        match self.int(key)? {
            Some(v) if v < min || v > max => {
                Err(invalid_value(key, v, &format!("Must be between {min} and {max}, if provided.")))
            }
            v => Ok(v),
        }
    }

    /// A list of strings.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, SqsError> {
        match self.raw(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid_value(key, v, "Must be a list of strings.")))
                .collect(),
            Some(v) => Err(invalid_value(key, v, "Must be a list of strings.")),
        }
    }

    /// A map of string to string.
    pub fn str_map(&self, key: &str) -> Result<BTreeMap<String, String>, SqsError> {
        match self.raw(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => return Err(invalid_value(key, other, "Must be a map of strings.")),
                    };
                    Ok((k.clone(), s))
                })
                .collect(),
            Some(v) => Err(invalid_value(key, v, "Must be a map of strings.")),
        }
    }

    /// A list of objects (batch entries).
    pub fn entries(&self, key: &str) -> Result<Vec<Input<'a>>, SqsError> {
        match self.raw(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_object().map(Input::new).ok_or_else(|| invalid_value(key, v, "Must be a list of entries.")))
                .collect(),
            Some(v) => Err(invalid_value(key, v, "Must be a list of entries.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_finds_every_member_of_small_and_large_inputs_and_skips_nulls() {
        for n in 1..=SCAN_MEMBERS_MAX + 4 {
            let mut map = Map::new();
            for k in 0..n {
                map.insert(format!("Member{k}"), Value::from(k));
            }
            map.insert("Null".into(), Value::Null);
            let i = Input::new(&map);
            for k in 0..n {
                assert_eq!(i.raw(&format!("Member{k}")), Some(&Value::from(k)), "{n} members");
            }
            assert_eq!(i.raw("Member"), None);
            assert_eq!(i.raw("Null"), None);
            assert_eq!(i.raw(&format!("Member{n}")), None);
        }
    }
}
