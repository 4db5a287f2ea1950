//! AWS JSON 1.0 / 1.1: decoding request bodies and writing outputs and errors.
//!
//! Decoding checks only what the wire format demands: the body is one JSON object
//! (empty means `{}`), nesting stays within [`MAX_DEPTH`], and every known member has the
//! JSON type its shape calls for. Mismatches answer `SerializationException`, worded like
//! SQS's "STRING_VALUE can not be converted to an Integer" (seen from SQS JSON in
//! async-aws/aws issue #1667). Unknown members and `null` members are dropped, so services
//! see exactly the model's members. Ranges, required members and enums are the services'.
//!
//! Outputs go out as services built them. Errors are `{"__type", "message"}`; SQS types
//! carry the `com.amazonaws.sqs#` namespace real SQS sends for its modelled errors, other
//! services the bare code (Kinesis sends e.g. `ResourceNotFoundException`).

use serde_json::{Map, Value};
use sluice_core::AwsError;

use crate::error::{Detected, ProtocolError};
use crate::model::{Model, Operation, Resolved, Shape, ShapeType};
use crate::ServiceKind;

/// Deepest JSON nesting accepted inside a request's known members.
/// (serde_json itself stops parsing at 128 levels, so parsing cannot exhaust the stack.)
pub(crate) const MAX_DEPTH: usize = 64;

/// Decodes a JSON request body into the input of `operation`.
pub(crate) fn decode_input(
    model: &Model,
    operation: &Operation,
    body: &[u8],
    detected: Detected,
) -> Result<Value, ProtocolError> {
    let error = |message: String| ProtocolError::SerializationException { message, detected };
    let body = body.trim_ascii();
    let parsed = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| error(format!("The request body is not valid JSON: {e}")))?
    };
    let Value::Object(mut object) = parsed else {
        return Err(error("The request body must be a JSON object.".to_owned()));
    };
    let checker = Checker { model, detected };
    match operation.input.as_deref().and_then(|s| model.shape(s)) {
        Some(shape) => {
            checker.structure(shape, &mut object, 1)?;
            Ok(Value::Object(object))
        }
        None => Ok(Value::Object(Map::new())),
    }
}

/// Checks a parsed body against its shapes in place: unknown and `null`
/// members are removed, everything else is kept where it is (no second tree
/// is built), and the first mismatch in document order is the error.
struct Checker<'a> {
    model: &'a Model,
    detected: Detected,
}

impl Checker<'_> {
    fn structure(
        &self,
        shape: &Shape,
        object: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<(), ProtocolError> {
        let mut failed = None;
        object.retain(|name, value| {
            if failed.is_some() {
                return true;
            }
            let Some(member) = shape.member(name) else {
                return false;
            };
            let Some(resolved) = self.model.resolve(member) else {
                return false;
            };
            if value.is_null() {
                return false;
            }
            if let Err(e) = self.value(resolved, value, depth + 1) {
                failed = Some(e);
            }
            true
        });
        failed.map_or(Ok(()), Err)
    }

    fn value(&self, r: Resolved<'_>, value: &mut Value, depth: usize) -> Result<(), ProtocolError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("The request nests deeper than {MAX_DEPTH} levels.")));
        }
        let shape_type = r.shape.shape_type;
        match (shape_type, value) {
            (ShapeType::Structure, Value::Object(object)) => self.structure(r.shape, object, depth),
            (ShapeType::List, value @ Value::Array(_)) => {
                let member = r.shape.member.as_ref().and_then(|m| self.model.resolve(m));
                let Some(member) = member else {
                    *value = Value::Array(Vec::new());
                    return Ok(());
                };
                let Value::Array(items) = value else { unreachable!("matched an array") };
                for item in items {
                    if item.is_null() {
                        return Err(self.error("null can not be a list element.".to_owned()));
                    }
                    self.value(member, item, depth + 1)?;
                }
                Ok(())
            }
            (ShapeType::Map, value @ Value::Object(_)) => {
                let value_ref = r.shape.value.as_ref().and_then(|m| self.model.resolve(m));
                let Some(value_ref) = value_ref else {
                    *value = Value::Object(Map::new());
                    return Ok(());
                };
                let Value::Object(entries) = value else { unreachable!("matched an object") };
                for (_, entry) in entries.iter_mut() {
                    if entry.is_null() {
                        return Err(self.error("null can not be a map value.".to_owned()));
                    }
                    self.value(value_ref, entry, depth + 1)?;
                }
                Ok(())
            }
            (ShapeType::String | ShapeType::Blob, Value::String(_)) => Ok(()),
            (ShapeType::Boolean, Value::Bool(_)) => Ok(()),
            (ShapeType::Timestamp, Value::Number(_) | Value::String(_)) => Ok(()),
            (ShapeType::Float | ShapeType::Double, Value::Number(_)) => Ok(()),
            (ShapeType::Integer, Value::Number(n))
                if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) =>
            {
                Ok(())
            }
            (ShapeType::Long, Value::Number(n)) if n.is_i64() => Ok(()),
            (_, Value::Object(_)) => {
                Err(self.error("Start of structure or map found where not expected.".to_owned()))
            }
            (_, Value::Array(_)) => {
                Err(self.error("Start of list found where not expected.".to_owned()))
            }
            (_, other) => Err(self.error(format!(
                "{} can not be converted to {}",
                token_name(other),
                type_phrase(shape_type)
            ))),
        }
    }

    fn error(&self, message: String) -> ProtocolError {
        ProtocolError::SerializationException {
            message,
            detected: self.detected,
        }
    }
}

fn token_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "STRING_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Null => "NULL_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn type_phrase(shape_type: ShapeType) -> &'static str {
    match shape_type {
        ShapeType::Structure => "a Structure",
        ShapeType::List => "a List",
        ShapeType::Map => "a Map",
        ShapeType::String => "a String",
        ShapeType::Integer => "an Integer",
        ShapeType::Long => "a Long",
        ShapeType::Float => "a Float",
        ShapeType::Double => "a Double",
        ShapeType::Boolean => "a Boolean",
        ShapeType::Blob => "a Blob",
        ShapeType::Timestamp => "a Timestamp",
    }
}

/// The body of a successful JSON response: the output as is, `{}` if it is not an object.
pub(crate) fn render_output(output: &Value) -> Vec<u8> {
    match output {
        Value::Object(_) => {
            let mut out = Vec::with_capacity(256);
            write_value(&mut out, output);
            out
        }
        _ => b"{}".to_vec(),
    }
}

/// Writes `v` as compact JSON, byte for byte what `serde_json::to_vec`
/// writes, with a faster string escape: message bodies dominate the output
/// and rarely hold a character that needs escaping, so strings are scanned
/// a chunk at a time (a loop the compiler vectorises) and copied whole, where
/// serde_json looks up every byte in a table.
fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // serde_json's own formatting of numbers (itoa / ryu).
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Whether JSON needs `b` escaped: `"`, `\\` and the control characters.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// A JSON string literal, escaped as serde_json escapes (short forms for
/// `\b \t \n \f \r \" \\`, `\u00xx` for other control characters,
/// everything else, `/` and non-ASCII included, as is).
fn write_str(out: &mut Vec<u8>, s: &str) {
    const CHUNK: usize = 32;
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + CHUNK).min(bytes.len());
        let chunk = &bytes[start..end];
        if !chunk.iter().fold(false, |any, &b| any | needs_escape(b)) {
            out.extend_from_slice(chunk);
        } else {
            for &b in chunk {
                if !needs_escape(b) {
                    out.push(b);
                    continue;
                }
                let short = match b {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    0x08 => b'b',
                    0x09 => b't',
                    0x0A => b'n',
                    0x0C => b'f',
                    0x0D => b'r',
                    _ => 0,
                };
                if short != 0 {
                    out.extend_from_slice(&[b'\\', short]);
                } else {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
                }
            }
        }
        start = end;
    }
    out.push(b'"');
}

/// The `__type` of an error from `service`.
pub(crate) fn error_type(service: ServiceKind, code: &str) -> String {
    match service {
        ServiceKind::Sqs => format!("com.amazonaws.sqs#{code}"),
        ServiceKind::Sns | ServiceKind::Sts | ServiceKind::Kinesis => code.to_owned(),
    }
}

/// The body of a JSON error response.
pub(crate) fn render_error(service: ServiceKind, error: &dyn AwsError) -> Vec<u8> {
    let mut body = Map::new();
    body.insert(
        "__type".into(),
        Value::String(error_type(service, error.code())),
    );
    body.insert("message".into(), Value::String(error.message()));
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    //! Goal: JSON bodies decode to model-shaped input and wrong JSON types fail the way SQS
    //! fails; outputs and errors render as SQS/Kinesis send them. Method: drive the public
    //! `decode` / `render_*` and compare parsed JSON.

    use expect_test::expect;
    use serde_json::json;

    use crate::testutil::{decode_json, decode_json_err, TestError};
    use crate::{render_error, render_output, ServiceKind, WireProtocol};

    /// The output writer and serde_json agree byte for byte: on every
    /// character class (each control character, quote, backslash, slash,
    /// DEL, multi-byte UTF-8) at every position around the 32-byte chunk
    /// boundaries, and on nested values with numbers.
    #[test]
    fn output_writer_matches_serde_json_byte_for_byte() {
        let specials: Vec<char> = (0u8..0x20).map(char::from).chain(['"', '\\', '/', '\u{7f}', 'é', '€', '😀', 'a']).collect();
        for len in [0usize, 1, 31, 32, 33, 64, 65, 100] {
            for at in [0, 1, 30, 31, 32, 33, 63, 64, 99] {
                for &c in &specials {
                    let mut s: String = "x".repeat(len);
                    if at <= len {
                        s.insert(at, c);
                    }
                    let v = json!({ "Body": s, "n": [1, -2, 3.5, 1e300, u64::MAX], "ok": true, "none": null, "o": { "k\n": [] } });
                    let mut out = Vec::new();
                    super::write_value(&mut out, &v);
                    assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&v).unwrap(), "len {len}, at {at}, char {:?}", c);
                }
            }
        }
    }

    #[test]
    fn sqs_send_message_decodes_with_unknown_and_null_members_dropped() {
        let request = decode_json(
            "AmazonSQS.SendMessage",
            r#"{"QueueUrl":"q","MessageBody":"b","DelaySeconds":5,"Bogus":1,"MessageGroupId":null,
                "MessageAttributes":{"a":{"DataType":"Binary","BinaryValue":"AAE="}}}"#,
        );
        assert_eq!(request.service, ServiceKind::Sqs);
        assert_eq!(request.protocol, WireProtocol::AwsJson10);
        assert_eq!(
            request.input,
            json!({"QueueUrl":"q","MessageBody":"b","DelaySeconds":5,
                   "MessageAttributes":{"a":{"DataType":"Binary","BinaryValue":"AAE="}}})
        );
    }

    #[test]
    fn every_sqs_fixture_input_round_trips_through_json() {
        // The inputs botocore serialized for the query tests are valid JSON-protocol
        // inputs too; JSON decoding must hand them back unchanged.
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../testdata/query_requests.json")).unwrap();
        for case in cases.iter().filter(|c| c["service"] == "sqs") {
            let target = format!("AmazonSQS.{}", case["operation"].as_str().unwrap());
            let request = decode_json(&target, &case["input"].to_string());
            assert_eq!(request.input, case["input"], "{target}");
        }
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        assert_eq!(decode_json("AmazonSQS.ListQueues", "").input, json!({}));
        assert_eq!(
            decode_json("AmazonSQS.ListQueues", " \r\n").input,
            json!({})
        );
    }

    #[test]
    fn wrong_json_types_are_serialization_exceptions() {
        let cases = [
            (
                r#"{"QueueUrl":"q","ReceiptHandle":"r","VisibilityTimeout":"30"}"#,
                "ChangeMessageVisibility",
            ),
            (
                r#"{"QueueUrl":"q","ReceiptHandle":"r","VisibilityTimeout":1.5}"#,
                "ChangeMessageVisibility",
            ),
            (
                r#"{"QueueUrl":"q","ReceiptHandle":"r","VisibilityTimeout":4294967296}"#,
                "ChangeMessageVisibility",
            ),
            (r#"{"QueueUrl":5}"#, "DeleteQueue"),
            (
                r#"{"QueueUrl":"q","AttributeNames":"All"}"#,
                "GetQueueAttributes",
            ),
            (
                r#"{"QueueUrl":"q","AttributeNames":["All",null]}"#,
                "GetQueueAttributes",
            ),
            (r#"{"QueueUrl":{"a":1}}"#, "DeleteQueue"),
            (r#"{"QueueUrl":["q"]}"#, "DeleteQueue"),
            (
                r#"{"QueueName":"q","Attributes":{"DelaySeconds":1}}"#,
                "CreateQueue",
            ),
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|(body, op)| decode_json_err(&format!("AmazonSQS.{op}"), body))
            .collect();
        expect![[r#"
            [
                "SerializationException 400: STRING_VALUE can not be converted to an Integer",
                "SerializationException 400: NUMBER_VALUE can not be converted to an Integer",
                "SerializationException 400: NUMBER_VALUE can not be converted to an Integer",
                "SerializationException 400: NUMBER_VALUE can not be converted to a String",
                "SerializationException 400: STRING_VALUE can not be converted to a List",
                "SerializationException 400: null can not be a list element.",
                "SerializationException 400: Start of structure or map found where not expected.",
                "SerializationException 400: Start of list found where not expected.",
                "SerializationException 400: NUMBER_VALUE can not be converted to a String",
            ]
        "#]]
        .assert_debug_eq(&actual);
    }

    #[test]
    fn malformed_or_non_object_json_is_a_serialization_exception() {
        expect!["SerializationException 400: The request body is not valid JSON: EOF while parsing a value at line 1 column 12"]
            .assert_eq(&decode_json_err("AmazonSQS.ListQueues", r#"{"QueueUrl":"#));
        expect![[r#"SerializationException 400: The request body must be a JSON object."#]]
            .assert_eq(&decode_json_err("AmazonSQS.ListQueues", "[]"));
    }

    #[test]
    fn nesting_past_the_cap_is_refused_without_overflowing() {
        // Unknown members are dropped unread; serde_json's own limit (128) stops deeper input.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let error = decode_json_err("AmazonSQS.ListQueues", &format!(r#"{{"x":{deep}}}"#));
        assert!(error.starts_with("SerializationException 400: The request body is not valid JSON: recursion limit exceeded"), "{error}");
    }

    #[test]
    fn json_output_is_sent_as_is_and_empty_output_is_an_empty_object() {
        let rendered = render_output(
            ServiceKind::Sqs,
            WireProtocol::AwsJson10,
            "SendMessage",
            &json!({"MessageId":"m","MD5OfMessageBody":"x"}),
            "req-1",
        );
        assert_eq!(rendered.status, 200);
        assert_eq!(
            rendered.header("content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(rendered.header("x-amzn-RequestId"), Some("req-1"));
        let body: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
        assert_eq!(body, json!({"MessageId":"m","MD5OfMessageBody":"x"}));

        let rendered = render_output(
            ServiceKind::Sqs,
            WireProtocol::AwsJson10,
            "DeleteMessage",
            &json!(null),
            "r",
        );
        assert_eq!(&rendered.body[..], b"{}");
    }

    #[test]
    fn sqs_json_error_has_namespaced_type_and_query_error_header() {
        let error = TestError::queue_does_not_exist();
        let rendered = render_error(ServiceKind::Sqs, WireProtocol::AwsJson10, &error, "req-2");
        assert_eq!(rendered.status, 400);
        assert_eq!(
            rendered.header("content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(rendered.header("x-amzn-requestid"), Some("req-2"));
        assert_eq!(
            rendered.header("x-amzn-query-error"),
            Some("AWS.SimpleQueueService.NonExistentQueue;Sender")
        );
        let body: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
        assert_eq!(
            body,
            json!({"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."})
        );
    }

    #[test]
    fn receiver_faults_say_receiver_in_the_query_error_header() {
        let error = TestError::internal();
        let rendered = render_error(ServiceKind::Sqs, WireProtocol::AwsJson10, &error, "r");
        assert_eq!(rendered.status, 500);
        assert_eq!(
            rendered.header("x-amzn-query-error"),
            Some("InternalError;Receiver")
        );
    }

    #[test]
    fn kinesis_json_error_has_bare_type_and_no_query_error_header() {
        let error = TestError::new(
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            400,
            "Stream s not found.",
        );
        let rendered = render_error(ServiceKind::Kinesis, WireProtocol::AwsJson11, &error, "r");
        assert_eq!(
            rendered.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(rendered.header("x-amzn-query-error"), None);
        let body: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
        assert_eq!(
            body,
            json!({"__type":"ResourceNotFoundException","message":"Stream s not found."})
        );
    }
}
