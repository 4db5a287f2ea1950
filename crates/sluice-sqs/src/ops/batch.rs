//! The checks every batch operation makes before touching any entry.

use crate::errors::SqsError;
use crate::input::Fields;
use crate::limits;

/// Validates the entry list: present, at most 10, ids well-formed and distinct.
/// `entry_name` is the model's entry shape (`SendMessageBatchRequestEntry`).
pub fn check_entries<'a, E: Fields<'a>>(entries: &[E], entry_name: &str) -> Result<Vec<&'a str>, SqsError> {
    if entries.is_empty() {
        return Err(SqsError::EmptyBatchRequest(format!(
            "There should be at least one {entry_name} in the request."
        )));
    }
    if entries.len() > limits::BATCH_ENTRIES_MAX {
        return Err(SqsError::TooManyEntriesInBatchRequest(entries.len()));
    }
    // At most ten: a scan of the ids so far is cheaper than hashing them.
    let mut ids: Vec<&str> = Vec::with_capacity(entries.len());
    for e in entries {
        let id = e.req_str("Id")?;
        if id.is_empty()
            || id.len() > limits::BATCH_ENTRY_ID_CHARS_MAX
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SqsError::InvalidBatchEntryId);
        }
        if ids.contains(&id) {
            return Err(SqsError::BatchEntryIdsNotDistinct(format!("Id {id} repeated.")));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A per-entry failure as the batch result reports it.
pub fn failed(id: &str, e: &SqsError) -> serde_json::Value {
    use sluice_core::AwsError;
    serde_json::json!({
        "Id": id,
        "SenderFault": e.status() < 500,
        "Code": e.query_code(),
        "Message": e.message(),
    })
}

/// A batch operation's output, `{"Successful": [...], "Failed": [...]}`, with
/// the entries moved in (`json!` would serialize a copy of every entry).
pub fn result(successful: Vec<serde_json::Value>, failed: Vec<serde_json::Value>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("Successful".into(), serde_json::Value::Array(successful));
    out.insert("Failed".into(), serde_json::Value::Array(failed));
    serde_json::Value::Object(out)
}
