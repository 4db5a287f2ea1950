//! Every SQS error sluice can return, with its AWS code, HTTP status and the
//! legacy query code that the query protocol and `x-amzn-query-error` carry
//! (from the `error` traits of the botocore 1.34.89 query model).

use sluice_core::AwsError;

/// An SQS error. Variant names are the AWS codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqsError {
    /// The queue does not exist.
    QueueDoesNotExist,
    /// A queue with this name and different attributes exists.
    QueueNameExists(String),
    /// A queue with this name was deleted less than 60 s ago.
    QueueDeletedRecently,
    /// A parameter value is invalid.
    InvalidParameterValue(String),
    /// A required parameter is missing.
    MissingParameter(String),
    /// Unknown attribute name.
    InvalidAttributeName(String),
    /// Invalid attribute value.
    InvalidAttributeValue(String),
    /// The message body contains characters outside the allowed set.
    InvalidMessageContents(String),
    /// The receipt handle is not valid.
    ReceiptHandleIsInvalid(String),
    /// The message is not in flight.
    MessageNotInflight,
    /// PurgeQueue within 60 s of the last one.
    PurgeQueueInProgress(String),
    /// Too many messages in flight.
    OverLimit(String),
    /// The server refuses the request for now: too many long polls are waiting
    /// (`--max-waiters`). Retryable with backoff.
    RequestThrottled(String),
    /// Batch with no entries.
    EmptyBatchRequest(String),
    /// Batch with more than 10 entries.
    TooManyEntriesInBatchRequest(usize),
    /// Two entries with the same id.
    BatchEntryIdsNotDistinct(String),
    /// Batch payload too large.
    BatchRequestTooLong(usize),
    /// Malformed batch entry id.
    InvalidBatchEntryId,
    /// Not supported on this queue.
    UnsupportedOperation(String),
    /// The queue URL does not name a queue on this endpoint.
    InvalidAddress(String),
    /// Resource (move task) not found.
    ResourceNotFoundException(String),
    /// An unknown operation.
    InvalidAction(String),
    /// The storage engine cannot accept the request now.
    ServiceUnavailable,
    /// An internal fault.
    InternalError,
}

impl std::fmt::Display for SqsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for SqsError {}

impl AwsError for SqsError {
    fn code(&self) -> &str {
        use SqsError::*;
        match self {
            QueueDoesNotExist => "QueueDoesNotExist",
            QueueNameExists(_) => "QueueNameExists",
            QueueDeletedRecently => "QueueDeletedRecently",
            // The JSON protocol's `__type` for these two unmodelled errors, as
            // AWS answers (LocalStack's AWS-recorded snapshots); the query code
            // stays InvalidParameterValue / MissingParameter.
            InvalidParameterValue(_) => "InvalidParameterValueException",
            MissingParameter(_) => "MissingRequiredParameterException",
            InvalidAttributeName(_) => "InvalidAttributeName",
            InvalidAttributeValue(_) => "InvalidAttributeValue",
            InvalidMessageContents(_) => "InvalidMessageContents",
            ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            MessageNotInflight => "MessageNotInflight",
            PurgeQueueInProgress(_) => "PurgeQueueInProgress",
            OverLimit(_) => "OverLimit",
            RequestThrottled(_) => "RequestThrottled",
            EmptyBatchRequest(_) => "EmptyBatchRequest",
            TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            BatchRequestTooLong(_) => "BatchRequestTooLong",
            InvalidBatchEntryId => "InvalidBatchEntryId",
            UnsupportedOperation(_) => "UnsupportedOperation",
            InvalidAddress(_) => "InvalidAddress",
            ResourceNotFoundException(_) => "ResourceNotFoundException",
            InvalidAction(_) => "InvalidAction",
            ServiceUnavailable => "ServiceUnavailable",
            InternalError => "InternalError",
        }
    }

    fn query_code(&self) -> &str {
        use SqsError::*;
        match self {
            QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            QueueNameExists(_) => "QueueAlreadyExists",
            QueueDeletedRecently => "AWS.SimpleQueueService.QueueDeletedRecently",
            MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            PurgeQueueInProgress(_) => "AWS.SimpleQueueService.PurgeQueueInProgress",
            EmptyBatchRequest(_) => "AWS.SimpleQueueService.EmptyBatchRequest",
            TooManyEntriesInBatchRequest(_) => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            BatchEntryIdsNotDistinct(_) => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            BatchRequestTooLong(_) => "AWS.SimpleQueueService.BatchRequestTooLong",
            InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            UnsupportedOperation(_) => "AWS.SimpleQueueService.UnsupportedOperation",
            InvalidParameterValue(_) => "InvalidParameterValue",
            MissingParameter(_) => "MissingParameter",
            other => other.code(),
        }
    }

    fn status(&self) -> u16 {
        use SqsError::*;
        match self {
            // RequestThrottled: the shape has no `error` trait in the botocore
            // models (so its code is the shape name), and botocore's
            // `_retry.json` retries SQS's `RequestThrottled` only with status
            // 403 (policy `request_limit_exceeded`); standard-mode retries in
            // botocore, the Rust and the JS SDKs match the code alone.
            OverLimit(_) | PurgeQueueInProgress(_) | RequestThrottled(_) => 403,
            ResourceNotFoundException(_) => 404,
            ServiceUnavailable => 503,
            InternalError => 500,
            _ => 400,
        }
    }

    fn message(&self) -> String {
        use SqsError::*;
        match self {
            QueueDoesNotExist => "The specified queue does not exist.".into(),
            QueueNameExists(attr) => {
                format!("A queue already exists with the same name and a different value for attribute {attr}")
            }
            QueueDeletedRecently => {
                "You must wait 60 seconds after deleting a queue before you can create another queue with the same name."
                    .into()
            }
            InvalidParameterValue(m)
            | MissingParameter(m)
            | InvalidAttributeName(m)
            | InvalidAttributeValue(m)
            | InvalidMessageContents(m)
            | PurgeQueueInProgress(m)
            | OverLimit(m)
            | RequestThrottled(m)
            | EmptyBatchRequest(m)
            | BatchEntryIdsNotDistinct(m)
            | UnsupportedOperation(m)
            | ResourceNotFoundException(m) => m.clone(),
            ReceiptHandleIsInvalid(h) => format!("The input receipt handle \"{h}\" is not a valid receipt handle."),
            MessageNotInflight => "Message does not exist or is not available for visibility timeout change.".into(),
            TooManyEntriesInBatchRequest(n) => format!("Maximum number of entries per request are 10. You have sent {n}."),
            BatchRequestTooLong(n) => {
                format!("Batch requests cannot be longer than 1048576 bytes. You have sent {n} bytes.")
            }
            InvalidBatchEntryId => "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.".into(),
            InvalidAddress(u) => format!("The address {u} is not valid for this endpoint."),
            InvalidAction(a) => format!("The action {a} is not valid for this endpoint."),
            ServiceUnavailable => "The request has failed due to a temporary failure of the server.".into(),
            InternalError => "We encountered an internal error. Please try again.".into(),
        }
    }
}

impl From<sluice_store::StoreError> for SqsError {
    fn from(e: sluice_store::StoreError) -> Self {
        use sluice_store::StoreError;
        match e {
            StoreError::QueueNotFound => SqsError::QueueDoesNotExist,
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                SqsError::ServiceUnavailable
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                SqsError::InternalError
            }
        }
    }
}

/// `Value X for parameter P is invalid. Reason: R` — the wording SQS uses.
pub fn invalid_value(param: &str, value: impl std::fmt::Display, reason: &str) -> SqsError {
    SqsError::InvalidParameterValue(format!("Value {value} for parameter {param} is invalid. Reason: {reason}"))
}

/// `The request must contain the parameter P.`
pub fn missing(param: &str) -> SqsError {
    SqsError::MissingParameter(format!("The request must contain the parameter {param}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_codes_match_the_query_model() {
        // From the `error.code` traits of botocore 1.34.89's SQS query model.
        let table = [
            (SqsError::QueueDoesNotExist, "AWS.SimpleQueueService.NonExistentQueue", 400),
            (SqsError::QueueNameExists("x".into()), "QueueAlreadyExists", 400),
            (SqsError::OverLimit("x".into()), "OverLimit", 403),
            // No `error` trait in either model: the code is the shape name;
            // 403 is what botocore's legacy SQS retry policy expects.
            (SqsError::RequestThrottled("x".into()), "RequestThrottled", 403),
            (SqsError::PurgeQueueInProgress("x".into()), "AWS.SimpleQueueService.PurgeQueueInProgress", 403),
            (SqsError::ResourceNotFoundException("x".into()), "ResourceNotFoundException", 404),
            (SqsError::MessageNotInflight, "AWS.SimpleQueueService.MessageNotInflight", 400),
            (SqsError::InvalidBatchEntryId, "AWS.SimpleQueueService.InvalidBatchEntryId", 400),
            (SqsError::QueueDeletedRecently, "AWS.SimpleQueueService.QueueDeletedRecently", 400),
            (SqsError::InvalidParameterValue("x".into()), "InvalidParameterValue", 400),
            (SqsError::MissingParameter("x".into()), "MissingParameter", 400),
        ];
        for (e, code, status) in table {
            assert_eq!(e.query_code(), code);
            assert_eq!(e.status(), status);
        }
    }
}
