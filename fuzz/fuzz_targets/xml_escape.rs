//! Fuzz target: escaping in the query protocol's XML writer (`render_output` and
//! `render_error` of `sluice_protocol`, as the server calls them).
//!
//! Input: up to nine texts separated by 0xFF bytes (never part of UTF-8; each text is
//! read with `from_utf8_lossy`): a message body, message id, attribute name and value,
//! message attribute name and string value, request id, error message and error code.
//! They are rendered into a `ReceiveMessage` response and an `ErrorResponse`.
//!
//! Oracle: both documents are well-formed (quick-xml, one root, end names checked),
//! hold no raw control character (`\r` must arrive as `&#xD;`, see `xml.rs`), and every
//! text parses back equal to what was rendered, with characters XML 1.0 cannot carry
//! replaced by U+FFFD (the writer's documented rule).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sluice_core::AwsError;
use sluice_protocol::{render_error, render_output, ServiceKind, WireProtocol};
use sluice_fuzz::*;

#[derive(Debug)]
struct FuzzError {
    code: String,
    message: String,
}

impl AwsError for FuzzError {
    fn code(&self) -> &str {
        &self.code
    }
    fn status(&self) -> u16 {
        400
    }
    fn message(&self) -> String {
        self.message.clone()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut texts: Vec<String> = data.split(|b| *b == 0xFF).take(9).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    texts.resize(9, String::new());
    let [body, id, attr, attr_value, mattr, mattr_value, request_id, message, code] = texts.try_into().expect("nine texts");

    let output = json!({"Messages": [{
        "MessageId": id, "ReceiptHandle": "rh", "MD5OfBody": "md5", "Body": body,
        "Attributes": {attr.clone(): attr_value},
        "MessageAttributes": {mattr.clone(): {"StringValue": mattr_value, "DataType": "String"}},
    }]});
    let rendered = render_output(ServiceKind::Sqs, WireProtocol::Query, "ReceiveMessage", &output, &request_id);
    let xml = std::str::from_utf8(&rendered.body).expect("the writer writes UTF-8");
    check_no_raw_controls(xml);
    let leaves = xml_leaves(xml);
    let has = |path: &str, text: &str| {
        let path = format!("ReceiveMessageResponse/ReceiveMessageResult/Message/{path}");
        assert!(leaves.iter().any(|(p, t)| *p == path && *t == xml_text(text)), "{path} = {:?} not read back from {xml:?}", xml_text(text));
    };
    has("MessageId", &id);
    has("Body", &body);
    has("Attribute/Name", &attr);
    has("Attribute/Value", &attr_value);
    has("MessageAttribute/Name", &mattr);
    has("MessageAttribute/Value/StringValue", &mattr_value);
    let rid = leaves.iter().find(|(p, _)| p == "ReceiveMessageResponse/ResponseMetadata/RequestId").map(|(_, t)| t.as_str());
    assert_eq!(rid, Some(xml_text(&request_id).as_str()), "{xml:?}");

    let error = FuzzError { code, message };
    let rendered = render_error(ServiceKind::Sqs, WireProtocol::Query, &error, &request_id);
    let xml = std::str::from_utf8(&rendered.body).expect("the writer writes UTF-8");
    check_no_raw_controls(xml);
    let leaves = xml_leaves(xml);
    let get = |path: &str| leaves.iter().find(|(p, _)| p == path).map(|(_, t)| t.clone());
    assert_eq!(get("ErrorResponse/Error/Code"), Some(xml_text(&error.code)), "{xml:?}");
    assert_eq!(get("ErrorResponse/Error/Message"), Some(xml_text(&error.message)), "{xml:?}");
    assert_eq!(get("ErrorResponse/RequestId"), Some(xml_text(&request_id)), "{xml:?}");
});
