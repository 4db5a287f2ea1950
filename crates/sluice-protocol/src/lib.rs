//! Wire protocols of sluice: HTTP request bytes in, `(service, operation, JSON-shaped input)` out;
//! an operation's output or an [`AwsError`] in, response bytes out.
//!
//! One port serves every protocol, so [`decode`] routes by the request itself:
//! an `X-Amz-Target` header selects AWS JSON 1.0 (SQS) or 1.1 / CBOR 1.1 (Kinesis);
//! anything else is the query protocol (SQS, SNS, STS), with the service chosen by
//! the `Version` parameter, then the SigV4 credential scope, then the action name.
//! Whatever the protocol, services see one input shape: the JSON protocol's, keyed by
//! model member names (see [`model`]).
//! [`render_output`] and [`render_error`] write each protocol's response shape.
//!
//! This crate has no queue semantics and never sees the store; it validates only what
//! the wire format itself demands (JSON syntax and types, query scalars), never
//! business rules or required members, which belong to the services.
//! It parses SigV4 credential scopes but does not verify signatures.

mod cbor;
mod error;
mod json;
pub mod model;
mod query;
mod route;
mod sigv4;
mod typed;
mod xml;

#[cfg(test)]
mod testutil;

use http::{HeaderName, HeaderValue};
use sluice_core::AwsError;

pub use error::{Detected, ProtocolError};
pub use model::Model;
pub use route::{decode, decode_typed};
pub use typed::{DeleteMessageBatchEntry, DeleteMessageBatchInput, SendMessageBatchEntry, SendMessageBatchInput, TypedInput};

/// The AWS services sluice answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// Amazon SQS, API version 2012-11-05.
    Sqs,
    /// Amazon SNS, API version 2010-03-31.
    Sns,
    /// AWS STS, API version 2011-06-15; only `GetCallerIdentity`, for clients that probe credentials.
    Sts,
    /// Amazon Kinesis Data Streams, API version 2013-12-02.
    Kinesis,
}

impl ServiceKind {
    /// The service name as it appears in a SigV4 credential scope (`sqs`, `sns`, `sts`, `kinesis`).
    pub fn signing_name(self) -> &'static str {
        match self {
            ServiceKind::Sqs => "sqs",
            ServiceKind::Sns => "sns",
            ServiceKind::Sts => "sts",
            ServiceKind::Kinesis => "kinesis",
        }
    }
}

/// The wire protocols sluice speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireProtocol {
    /// AWS JSON 1.0 (`application/x-amz-json-1.0`): SQS since late 2023.
    AwsJson10,
    /// AWS JSON 1.1 (`application/x-amz-json-1.1`): Kinesis.
    AwsJson11,
    /// AWS query: form-encoded parameters in, XML out (`text/xml`): SNS, STS and older SQS clients.
    Query,
    /// Amazon CBOR 1.1 (`application/x-amz-cbor-1.1`): Kinesis clients that prefer CBOR.
    Cbor11,
}

impl WireProtocol {
    /// The `Content-Type` of this protocol's responses.
    pub fn content_type(self) -> &'static str {
        match self {
            WireProtocol::AwsJson10 => "application/x-amz-json-1.0",
            WireProtocol::AwsJson11 => "application/x-amz-json-1.1",
            WireProtocol::Query => "text/xml",
            WireProtocol::Cbor11 => "application/x-amz-cbor-1.1",
        }
    }
}

/// The SigV4 credential scope of a request, parsed from the `Authorization` header or a
/// presigned URL's `X-Amz-Credential`. Never verified here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Scope {
    /// The access key id, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key: String,
    /// The scope date, `YYYYMMDD`.
    pub date: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The signing name of the service, e.g. `sqs`.
    pub service: String,
}

/// A routed and decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// The service the request is for.
    pub service: ServiceKind,
    /// The protocol it came in; its response must go out in the same one.
    pub protocol: WireProtocol,
    /// The operation name as in the model, e.g. `SendMessage`.
    pub operation: String,
    /// The input in JSON-protocol shape, whatever the wire protocol: always an object keyed by
    /// member names, integers as numbers, booleans as booleans, blobs as base64 strings.
    /// Timestamps stay as sent (epoch seconds in JSON, ISO 8601 strings in query).
    /// Members the model does not know are dropped.
    pub input: serde_json::Value,
    /// The input decoded into its operation's shape instead, by
    /// [`decode_typed`] for the operations that have a typed path; `input`
    /// is then empty.
    pub typed: Option<TypedInput>,
    /// The request path without the query string, e.g. `/000000000000/jobs`
    /// (SQS query clients may address the queue by URL path).
    pub path: String,
    /// The `Host` header (or the URI authority for HTTP/2).
    pub host: Option<String>,
    /// The SigV4 credential scope, if the request carried one.
    pub scope: Option<SigV4Scope>,
    /// The request carried `x-amzn-query-mode: true` (JSON clients of `awsQueryCompatible` services).
    pub query_mode: bool,
}

/// A response ready for the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The HTTP status code.
    pub status: u16,
    /// Headers to send: always `content-type` and `x-amzn-requestid`, for SQS JSON errors also `x-amzn-query-error`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: bytes::Bytes,
}

impl Rendered {
    fn new(status: u16, protocol: WireProtocol, request_id: &str, body: Vec<u8>) -> Rendered {
        let headers = vec![
            (
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(protocol.content_type()),
            ),
            (
                HeaderName::from_static("x-amzn-requestid"),
                header_value(request_id),
            ),
        ];
        Rendered {
            status,
            headers,
            body: bytes::Bytes::from(body),
        }
    }

    /// The value of the first header with this name, for tests and logging.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.to_str().ok())
    }
}

/// A header value from text we produced; bytes a header cannot carry are replaced so rendering never fails.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        let cleaned: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        HeaderValue::from_str(&cleaned).unwrap_or(HeaderValue::from_static("?"))
    })
}

/// Renders a successful output (in JSON-protocol shape, as services produce it) for `operation`.
///
/// JSON protocols send the value as is (`{}` when it is not an object); query renders XML
/// driven by the service model (see `xml.rs`); CBOR encodes the value generically.
pub fn render_output(
    service: ServiceKind,
    protocol: WireProtocol,
    operation: &str,
    output: &serde_json::Value,
    request_id: &str,
) -> Rendered {
    let body = match protocol {
        WireProtocol::AwsJson10 | WireProtocol::AwsJson11 => json::render_output(output),
        WireProtocol::Query => {
            xml::render_output(Model::get(service), operation, output, request_id).into_bytes()
        }
        WireProtocol::Cbor11 => cbor::render_output(output),
    };
    Rendered::new(200, protocol, request_id, body)
}

/// Renders an error in the shape of `protocol`, with the error's status.
///
/// JSON: `{"__type": ..., "message": ...}` (SQS types are `com.amazonaws.sqs#<code>` and carry
/// `x-amzn-query-error: <query code>;<Sender|Receiver>`); query: an XML `ErrorResponse` with the
/// query code; CBOR: the JSON body's map, CBOR-encoded.
pub fn render_error(
    service: ServiceKind,
    protocol: WireProtocol,
    error: &dyn AwsError,
    request_id: &str,
) -> Rendered {
    match protocol {
        WireProtocol::AwsJson10 | WireProtocol::AwsJson11 => {
            let mut rendered = Rendered::new(
                error.status(),
                protocol,
                request_id,
                json::render_error(service, error),
            );
            if service == ServiceKind::Sqs {
                let value = format!("{};{}", error.query_code(), error.fault().as_str());
                rendered.headers.push((
                    HeaderName::from_static("x-amzn-query-error"),
                    header_value(&value),
                ));
            }
            rendered
        }
        WireProtocol::Query => Rendered::new(
            error.status(),
            protocol,
            request_id,
            xml::render_error(Model::get(service), error, request_id).into_bytes(),
        ),
        WireProtocol::Cbor11 => Rendered::new(
            error.status(),
            protocol,
            request_id,
            cbor::render_error(service, error),
        ),
    }
}

#[cfg(test)]
mod tests {
    //! Goal: rendering never fails on odd request ids; every response names its request.

    use super::*;

    #[test]
    fn request_ids_headers_cannot_carry_are_cleaned_not_fatal() {
        let rendered = render_output(
            ServiceKind::Sqs,
            WireProtocol::AwsJson10,
            "ListQueues",
            &serde_json::json!({}),
            "bad\nid\u{e9}",
        );
        assert_eq!(rendered.header("x-amzn-requestid"), Some("bad?id?"));
    }
}
