//! The contract between a service's error enum and the protocol renderers.
//!
//! Each service (SQS, SNS, Kinesis) has one enum of its AWS errors; the protocol
//! crate renders any `AwsError` in the shape of the protocol the request came in.

/// Who AWS blames for an error: the `Type` element of query errors and the
/// suffix of the `x-amzn-query-error` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller sent something wrong (4xx).
    Sender,
    /// The service failed (5xx).
    Receiver,
}

impl Fault {
    /// The word AWS writes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

/// An error as AWS reports it.
pub trait AwsError: std::fmt::Debug + Send + Sync {
    /// The modelled error name, e.g. `QueueDoesNotExist`; the JSON protocols put it in `__type`.
    fn code(&self) -> &str;
    /// The code the query protocol carries (and `x-amzn-query-error` for
    /// `awsQueryCompatible` services), e.g. `AWS.SimpleQueueService.NonExistentQueue`.
    fn query_code(&self) -> &str {
        self.code()
    }
    /// HTTP status code.
    fn status(&self) -> u16;
    /// Sender or Receiver fault.
    fn fault(&self) -> Fault {
        if self.status() >= 500 {
            Fault::Receiver
        } else {
            Fault::Sender
        }
    }
    /// Human-readable message, as AWS words it where known.
    fn message(&self) -> String;
}
