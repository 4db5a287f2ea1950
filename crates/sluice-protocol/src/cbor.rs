//! Amazon CBOR 1.1 responses (RFC 8949 encoding of the JSON-protocol shape), for Kinesis
//! clients that send `application/x-amz-cbor-1.1`.
//!
//! Today sluice refuses CBOR requests (`ProtocolError::CborNotSupported`), but answers that
//! refusal in CBOR so the client can read it. Encoding is generic over the JSON value: it is
//! not yet model-driven, so blobs go out as base64 text strings rather than CBOR byte
//! strings and timestamps as plain numbers rather than tag 1. Decoding CBOR requests and
//! model-driven encoding belong to the Kinesis work.

use serde_json::Value;
use sluice_core::AwsError;

use crate::json::error_type;
use crate::ServiceKind;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
const FLOAT64: u8 = 0xfb;

/// The body of a successful CBOR response: the output as is, an empty map if it is not an object.
pub(crate) fn render_output(output: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match output {
        Value::Object(_) => encode(&mut out, output),
        _ => head(&mut out, MAJOR_MAP, 0),
    }
    out
}

/// The body of a CBOR error: the JSON error map, encoded.
pub(crate) fn render_error(service: ServiceKind, error: &dyn AwsError) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, MAJOR_MAP, 2);
    text(&mut out, "__type");
    text(&mut out, &error_type(service, error.code()));
    text(&mut out, "message");
    text(&mut out, &error.message());
    out
}

fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                head(out, MAJOR_UNSIGNED, u);
            } else if let Some(i) = n.as_i64() {
                // CBOR negative integers carry -1 - n.
                head(out, MAJOR_NEGATIVE, (-1 - i) as u64);
            } else {
                out.push(FLOAT64);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        }
        Value::String(s) => text(out, s),
        Value::Array(items) => {
            head(out, MAJOR_ARRAY, items.len() as u64);
            for item in items {
                encode(out, item);
            }
        }
        Value::Object(entries) => {
            head(out, MAJOR_MAP, entries.len() as u64);
            for (key, item) in entries {
                text(out, key);
                encode(out, item);
            }
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The initial byte(s) of an item: major type and argument, in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    if arg < 24 {
        out.push(major | arg as u8);
    } else if let Ok(a) = u8::try_from(arg) {
        out.extend_from_slice(&[major | 24, a]);
    } else if let Ok(a) = u16::try_from(arg) {
        out.push(major | 25);
        out.extend_from_slice(&a.to_be_bytes());
    } else if let Ok(a) = u32::try_from(arg) {
        out.push(major | 26);
        out.extend_from_slice(&a.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the encoder writes RFC 8949 canonical heads. Method: byte-exact vectors from
    //! RFC 8949 Appendix A, plus an error body.

    use serde_json::json;

    use super::*;
    use crate::testutil::TestError;

    fn hex(value: serde_json::Value) -> String {
        let mut out = Vec::new();
        encode(&mut out, &value);
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_8949_appendix_a_vectors() {
        assert_eq!(hex(json!(0)), "00");
        assert_eq!(hex(json!(23)), "17");
        assert_eq!(hex(json!(24)), "1818");
        assert_eq!(hex(json!(1000)), "1903e8");
        assert_eq!(hex(json!(1_000_000)), "1a000f4240");
        assert_eq!(hex(json!(1_000_000_000_000u64)), "1b000000e8d4a51000");
        assert_eq!(hex(json!(-1)), "20");
        assert_eq!(hex(json!(-1000)), "3903e7");
        assert_eq!(hex(json!(1.1)), "fb3ff199999999999a");
        assert_eq!(hex(json!(false)), "f4");
        assert_eq!(hex(json!(null)), "f6");
        assert_eq!(hex(json!("IETF")), "6449455446");
        assert_eq!(hex(json!([1, [2, 3]])), "8201820203");
        assert_eq!(hex(json!({"a": 1, "b": [2, 3]})), "a26161016162820203");
    }

    #[test]
    fn error_is_a_two_entry_map() {
        let body = render_error(ServiceKind::Kinesis, &TestError::new("X", "X", 400, "m"));
        let expected: Vec<u8> = [
            &[0xa2, 0x66][..],
            b"__type",
            &[0x61],
            b"X",
            &[0x67],
            b"message",
            &[0x61],
            b"m",
        ]
        .concat();
        assert_eq!(body, expected);
    }
}
