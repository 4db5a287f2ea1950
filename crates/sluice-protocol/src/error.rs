//! Errors found while routing and decoding a request, before any service sees it.
//!
//! Each variant is named after the AWS code it answers with, and carries what routing had
//! learnt so far (service and protocol) so the caller can answer in the shape the client
//! expects. Services' own errors live in their crates; this one renders through the same
//! [`crate::render_error`].

use sluice_core::AwsError;

use crate::{Rendered, ServiceKind, WireProtocol};

/// What routing had detected when decoding failed; `None` where it had not got that far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Detected {
    /// The service, if known.
    pub service: Option<ServiceKind>,
    /// The wire protocol, if known.
    pub protocol: Option<WireProtocol>,
}

/// A request sluice cannot route or decode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// A query request without an `Action` parameter.
    /// Code and status from the SQS API reference "Common Errors" page; the message is the
    /// one AWS query services answer with (also used by s3proxy's STS endpoint).
    #[error("Missing Action")]
    MissingAction {
        /// What routing had detected.
        detected: Detected,
    },
    /// A query `Action` the chosen service does not have.
    /// Code and status from the SQS API reference "Common Errors" page.
    #[error("The action {action} is not valid for this endpoint.")]
    InvalidAction {
        /// The action as sent.
        action: String,
        /// What routing had detected.
        detected: Detected,
    },
    /// An `X-Amz-Target` naming no known service operation (or a JSON request without one).
    /// The code is the one AWS JSON services (the Coral framework) use for unknown targets.
    #[error("The operation {target} is not valid for this endpoint.")]
    UnknownOperationException {
        /// The `X-Amz-Target` value as sent (empty when absent).
        target: String,
        /// What routing had detected.
        detected: Detected,
    },
    /// A JSON body that does not parse, is not an object, nests too deep, or has a value
    /// of the wrong JSON type for its member (e.g. SQS answers a string `VisibilityTimeout`
    /// with "STRING_VALUE can not be converted to an Integer").
    #[error("{message}")]
    SerializationException {
        /// What was wrong.
        message: String,
        /// What routing had detected.
        detected: Detected,
    },
    /// A query parameter whose text does not convert to its member's type,
    /// worded like AWS's "Value X for parameter Y is invalid. Reason: ...".
    #[error("{message}")]
    InvalidParameterValue {
        /// What was wrong.
        message: String,
        /// What routing had detected.
        detected: Detected,
    },
    /// An `application/x-amz-cbor-1.1` request: Kinesis over CBOR is not decoded yet.
    /// Answers with code `SerializationException`, in CBOR, so CBOR clients can read it;
    /// clients can switch to JSON (the Java SDK: `aws.cborEnabled=false` / `AWS_CBOR_DISABLE`).
    #[error("CBOR requests (application/x-amz-cbor-1.1) are not supported yet; disable CBOR in the client (e.g. AWS_CBOR_DISABLE=true) to use JSON 1.1")]
    CborNotSupported {
        /// What routing had detected.
        detected: Detected,
    },
}

impl ProtocolError {
    /// What routing had detected.
    pub fn detected(&self) -> Detected {
        match self {
            ProtocolError::MissingAction { detected }
            | ProtocolError::InvalidAction { detected, .. }
            | ProtocolError::UnknownOperationException { detected, .. }
            | ProtocolError::SerializationException { detected, .. }
            | ProtocolError::InvalidParameterValue { detected, .. }
            | ProtocolError::CborNotSupported { detected } => *detected,
        }
    }

    /// The service the request was detected as, if known.
    pub fn service(&self) -> Option<ServiceKind> {
        self.detected().service
    }

    /// The protocol the request was detected as, if known.
    pub fn protocol(&self) -> Option<WireProtocol> {
        self.detected().protocol
    }

    /// Renders this error in the detected shape, defaulting to SQS and the query protocol
    /// (the shape of the oldest clients) where routing had not got that far.
    pub fn render(&self, request_id: &str) -> Rendered {
        let detected = self.detected();
        crate::render_error(
            detected.service.unwrap_or(ServiceKind::Sqs),
            detected.protocol.unwrap_or(WireProtocol::Query),
            self,
            request_id,
        )
    }
}

impl AwsError for ProtocolError {
    fn code(&self) -> &str {
        match self {
            ProtocolError::MissingAction { .. } => "MissingAction",
            ProtocolError::InvalidAction { .. } => "InvalidAction",
            ProtocolError::UnknownOperationException { .. } => "UnknownOperationException",
            ProtocolError::SerializationException { .. }
            | ProtocolError::CborNotSupported { .. } => "SerializationException",
            ProtocolError::InvalidParameterValue { .. } => "InvalidParameterValue",
        }
    }

    fn status(&self) -> u16 {
        400
    }

    fn message(&self) -> String {
        self.to_string()
    }
}
