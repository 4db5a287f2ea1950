//! Oracles shared by sluice's fuzz targets (`fuzz_targets/`) and the corpus generator
//! (`examples/gen_corpus.rs`): request builders around the server's own entry point
//! (`sluice_protocol::decode`), a query-protocol *encoder* (botocore's `QuerySerializer`,
//! driven by the same embedded models) for decode → encode → decode round trips, the
//! checks that an error renders as a valid AWS error shape, an XML leaf reader
//! (quick-xml), and the container format of the engine target.
//!
//! It owns no production logic: everything here exists to judge the library crates'
//! answers independently of the code under test.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use quick_xml::events::Event;
use serde_json::Value;
use sluice_core::AwsError;
use sluice_protocol::model::{Model, Resolved, ShapeType};
use sluice_protocol::{ApiRequest, ProtocolError, WireProtocol};

/// Request id used when rendering errors; checked to come back in the response.
pub const REQUEST_ID: &str = "fuzz-request-id";

/// Content type of form-encoded query bodies.
pub const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Splits `data` at the first `n - 1` newlines (the last part keeps its newlines).
pub fn split_lines(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = data.splitn(n, |b| *b == b'\n').collect();
    parts.resize(n, &[]);
    parts
}

/// Runs the server's decoder on one POST request: `target` is the path and query
/// (`/000000000000/q?Action=...`; anything `Uri` refuses becomes `/`), `headers` are
/// added when `HeaderValue` accepts them.
pub fn decode(target: &[u8], headers: &[(&'static str, &[u8])], body: &[u8]) -> Result<ApiRequest, ProtocolError> {
    let uri = std::str::from_utf8(target)
        .ok()
        .filter(|t| t.starts_with('/'))
        .and_then(|t| format!("http://localhost:4566{t}").parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("http://localhost:4566/"));
    let mut map = HeaderMap::new();
    map.insert(http::header::HOST, HeaderValue::from_static("localhost:4566"));
    for (name, value) in headers {
        if value.is_empty() {
            continue;
        }
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    sluice_protocol::decode(&Method::POST, &uri, &map, body)
}

/// Decodes a form body as an SQS query request (the body alone carries the parameters).
pub fn decode_query_body(body: &[u8]) -> Result<ApiRequest, ProtocolError> {
    decode(b"/", &[("content-type", FORM.as_bytes())], body)
}

/// Decodes a JSON 1.0 body for `AmazonSQS.<operation>`.
pub fn decode_sqs_json(operation: &str, body: &[u8]) -> Result<ApiRequest, ProtocolError> {
    let target = format!("AmazonSQS.{operation}");
    decode(b"/", &[("x-amz-target", target.as_bytes()), ("content-type", b"application/x-amz-json-1.0")], body)
}

// ---------------------------------------------------------------------------------------
// Query encoding (botocore/serialize.py `QuerySerializer`), the inverse of `query.rs`.
// ---------------------------------------------------------------------------------------

/// Serializes a JSON-shaped `input` of `operation` into query parameters, as botocore
/// does: `Action`, `Version`, then the members. Members the model does not know, and
/// values of the wrong JSON type, are left out (botocore would refuse them).
pub fn query_encode(model: &Model, operation: &str, input: &Value) -> Vec<(String, String)> {
    let mut out = vec![("Action".to_owned(), operation.to_owned()), ("Version".to_owned(), model.api_version.clone())];
    let shape = model.operation(operation).and_then(|op| op.input.as_deref()).and_then(|s| model.shape(s));
    if let (Some(shape), Some(object)) = (shape, input.as_object()) {
        for (name, value) in object {
            let Some(r) = shape.member(name).and_then(|m| model.resolve(m)) else { continue };
            let key = r.location_name.unwrap_or(name).to_owned();
            encode_value(model, r, value, &key, &mut out);
        }
    }
    out
}

fn encode_value(model: &Model, r: Resolved<'_>, value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match r.shape.shape_type {
        ShapeType::Structure => {
            let Some(object) = value.as_object() else { return };
            for (name, v) in object {
                let Some(m) = r.shape.member(name).and_then(|m| model.resolve(m)) else { continue };
                let key = format!("{prefix}.{}", m.location_name.unwrap_or(name));
                encode_value(model, m, v, &key, out);
            }
        }
        ShapeType::List => {
            let (Some(items), Some(member_ref)) = (value.as_array(), r.shape.member.as_ref()) else { return };
            let Some(member) = model.resolve(member_ref) else { return };
            if items.is_empty() {
                out.push((prefix.to_owned(), String::new()));
                return;
            }
            let list_prefix = if r.flattened {
                match member.location_name {
                    Some(name) => match prefix.rfind('.') {
                        Some(dot) => format!("{}.{name}", &prefix[..dot]),
                        None => name.to_owned(),
                    },
                    None => prefix.to_owned(),
                }
            } else {
                format!("{prefix}.{}", member.location_name.unwrap_or("member"))
            };
            for (i, item) in items.iter().enumerate() {
                encode_value(model, member, item, &format!("{list_prefix}.{}", i + 1), out);
            }
        }
        ShapeType::Map => {
            let (Some(entries), Some(k), Some(v)) = (value.as_object(), r.shape.key.as_ref(), r.shape.value.as_ref()) else {
                return;
            };
            let (Some(k), Some(v)) = (model.resolve(k), model.resolve(v)) else { return };
            let base = if r.flattened { prefix.to_owned() } else { format!("{prefix}.entry") };
            for (i, (key, entry)) in entries.iter().enumerate() {
                let at = format!("{base}.{}", i + 1);
                out.push((format!("{at}.{}", k.location_name.unwrap_or("key")), key.clone()));
                encode_value(model, v, entry, &format!("{at}.{}", v.location_name.unwrap_or("value")), out);
            }
        }
        _ => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return,
            };
            out.push((prefix.to_owned(), text));
        }
    }
}

/// Query parameters as a form body.
pub fn form_body(params: &[(String, String)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

// ---------------------------------------------------------------------------------------
// Error shapes.
// ---------------------------------------------------------------------------------------

/// Checks that a decode error renders as the AWS error shape of the protocol it was
/// detected as: the status, content type and request id; for the query protocol an
/// `ErrorResponse` with `Error/Type` (Sender/Receiver), `Error/Code` (the query code),
/// `Error/Message` and `RequestId`; for JSON `__type` and `message`, and for SQS the
/// `x-amzn-query-error` header. Panics otherwise.
pub fn check_error_shape(e: &ProtocolError) {
    let status = e.status();
    assert!((400..600).contains(&status), "status {status} of {e:?}");
    assert!(!e.code().is_empty() && !e.query_code().is_empty(), "empty code in {e:?}");
    let rendered = e.render(REQUEST_ID);
    assert_eq!(rendered.status, status);
    let protocol = e.protocol().unwrap_or(WireProtocol::Query);
    assert_eq!(rendered.header("content-type"), Some(protocol.content_type()), "{e:?}");
    assert_eq!(rendered.header("x-amzn-requestid"), Some(REQUEST_ID));
    match protocol {
        WireProtocol::Query => {
            let xml = std::str::from_utf8(&rendered.body).unwrap_or_else(|_| panic!("error XML is not UTF-8: {e:?}"));
            check_no_raw_controls(xml);
            let leaves = xml_leaves(xml);
            let get = |path: &str| -> Vec<&str> { leaves.iter().filter(|(p, _)| p == path).map(|(_, t)| t.as_str()).collect() };
            let fault = get("ErrorResponse/Error/Type");
            assert!(fault == ["Sender"] || fault == ["Receiver"], "Type {fault:?} in {xml}");
            assert_eq!(get("ErrorResponse/Error/Code"), [xml_text(e.query_code()).as_str()], "{xml}");
            assert_eq!(get("ErrorResponse/Error/Message"), [xml_text(&e.message()).as_str()], "{xml}");
            assert_eq!(get("ErrorResponse/RequestId"), [REQUEST_ID], "{xml}");
        }
        WireProtocol::AwsJson10 | WireProtocol::AwsJson11 => {
            let body: Value = serde_json::from_slice(&rendered.body).unwrap_or_else(|err| panic!("error JSON does not parse ({err}): {e:?}"));
            let ty = body["__type"].as_str().unwrap_or_else(|| panic!("no __type in {body}"));
            assert!(ty == e.code() || ty.ends_with(&format!("#{}", e.code())), "__type {ty} for {e:?}");
            assert_eq!(body["message"].as_str(), Some(e.message().as_str()));
            if e.service() == Some(sluice_protocol::ServiceKind::Sqs) {
                let q = rendered.header("x-amzn-query-error").unwrap_or_else(|| panic!("no x-amzn-query-error for {e:?}"));
                let (code, fault) = q.split_once(';').unwrap_or_else(|| panic!("x-amzn-query-error {q}"));
                assert!(!code.is_empty() && (fault == "Sender" || fault == "Receiver"), "x-amzn-query-error {q}");
            }
        }
        WireProtocol::Cbor11 => assert!(!rendered.body.is_empty()),
    }
}

// ---------------------------------------------------------------------------------------
// XML.
// ---------------------------------------------------------------------------------------

/// Whether XML 1.0 can carry `c` at all (the `Char` production).
pub fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// What a text should read as after going through sluice's XML writer and an XML
/// parser: characters XML cannot carry become U+FFFD (the writer's documented rule).
pub fn xml_text(s: &str) -> String {
    s.chars().map(|c| if xml_char(c) { c } else { '\u{FFFD}' }).collect()
}

/// Panics if the document holds a raw control character: every C0 control but tab
/// and line feed (a raw CR would be read back as LF, so it must be a reference), and
/// the noncharacters U+FFFE/U+FFFF. DEL and the C1 controls are XML 1.0 `Char`s that
/// SQS accepts in message bodies and returns as they are, so they may appear.
pub fn check_no_raw_controls(xml: &str) {
    if let Some(c) = xml.chars().find(|&c| (c < ' ' && c != '\t' && c != '\n') || c == '\u{FFFE}' || c == '\u{FFFF}') {
        panic!("raw control character {c:?} in {xml:?}");
    }
}

/// Parses `xml` as an XML 1.0 parser does (line ends normalized, references resolved)
/// and returns every element's path (`A/B/C`) and its text, in document order.
/// Panics on anything not well-formed, and on DTDs, comments or processing
/// instructions, which sluice never writes.
pub fn xml_leaves(xml: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    let mut roots = 0;
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not well-formed ({e}): {xml:?}")) {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                if stack.is_empty() {
                    roots += 1;
                }
                let path = match stack.last() {
                    Some((p, _)) => format!("{p}/{name}"),
                    None => name,
                };
                stack.push((path, String::new()));
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_owned();
                let path = match stack.last() {
                    Some((p, _)) => format!("{p}/{name}"),
                    None => name,
                };
                out.push((path, String::new()));
            }
            Event::Text(t) => match stack.last_mut() {
                Some((_, text)) => text.push_str(&t.xml10_content()),
                None => assert!(t.xml10_content().trim().is_empty(), "text outside the root in {xml:?}"),
            },
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap_or_else(|e| panic!("bad character reference ({e}) in {xml:?}")) {
                    Some(c) => c,
                    None => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity &{other}; in {xml:?}"),
                    },
                };
                assert!(xml_char(c), "reference to {c:?}, which XML 1.0 cannot carry, in {xml:?}");
                stack.last_mut().unwrap_or_else(|| panic!("reference outside the root in {xml:?}")).1.push(c);
            }
            Event::End(_) => {
                let leaf = stack.pop().expect("quick-xml checks end names");
                out.push(leaf);
            }
            Event::Decl(_) => {}
            Event::Eof => break,
            other => panic!("unexpected {other:?} in {xml:?}"),
        }
    }
    assert!(stack.is_empty(), "unclosed elements in {xml:?}");
    assert_eq!(roots, 1, "not one root element in {xml:?}");
    out
}

// ---------------------------------------------------------------------------------------
// The engine target's input: files of a data directory, one after another.
// ---------------------------------------------------------------------------------------

/// Flag bit of the engine input's first byte: recompute every header's and frame's
/// CRC32C before writing the files, so the record decoder and replay see arbitrary
/// payloads behind valid checksums.
pub const FIX_CRCS: u8 = 1;
/// Flag bit: set every `Seal`'s offset to its own position and cap every
/// `SyncedThrough` at its own (before the CRCs are fixed), so mutated segments keep
/// their end markers consistent.
pub const FIX_MARKERS: u8 = 2;

/// Kinds of files in a data directory, told apart by their 8-byte magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `log/<n>.seg`.
    Segment,
    /// `checkpoint/<n>.ckpt`.
    Checkpoint,
    /// `checkpoint/<n>.bodies`.
    Bodies,
}

const MAGICS: [(&[u8; 8], FileKind); 3] =
    [(b"SLUICSEG", FileKind::Segment), (b"SLUICCKP", FileKind::Checkpoint), (b"SLUICBOD", FileKind::Bodies)];

/// Splits the engine input (after its flag byte) into files: each file starts at an
/// occurrence of a file magic; bytes before the first magic are a segment of their own.
pub fn split_files(data: &[u8]) -> Vec<(FileKind, Vec<u8>)> {
    let mut starts: Vec<(usize, FileKind)> = Vec::new();
    let mut i = 0;
    while i + 8 <= data.len() {
        if let Some((_, kind)) = MAGICS.iter().find(|(m, _)| &data[i..i + 8] == *m) {
            starts.push((i, *kind));
            i += 8;
        } else {
            i += 1;
        }
    }
    let mut files = Vec::new();
    let first = starts.first().map_or(data.len(), |s| s.0);
    if first > 0 {
        files.push((FileKind::Segment, data[..first].to_vec()));
    }
    for (j, (at, kind)) in starts.iter().enumerate() {
        let end = starts.get(j + 1).map_or(data.len(), |s| s.0);
        files.push((*kind, data[*at..end].to_vec()));
    }
    files
}

/// The number a file header names (bytes 16..24), if the file has a header.
pub fn header_number(file: &[u8]) -> Option<u64> {
    file.get(16..24).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// Applies the fix-ups `flags` asks for to one file, in place.
pub fn fix_up(kind: FileKind, file: &mut [u8], flags: u8) {
    if flags & FIX_CRCS != 0 && file.len() >= 28 {
        let crc = crc32c::crc32c(&file[0..24]);
        file[24..28].copy_from_slice(&crc.to_le_bytes());
    }
    if kind == FileKind::Bodies {
        return;
    }
    let mut pos = 32;
    while pos + 16 <= file.len() && &file[pos..pos + 4] == b"SLR1" {
        let len = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let end = pos + 16 + len;
        if end > file.len() {
            break;
        }
        let kind_tag = file[pos + 13];
        if flags & FIX_MARKERS != 0 && len == 8 && (kind_tag == 12 || kind_tag == 13) {
            let at = pos + 16;
            let offset = u64::from_le_bytes(file[at..at + 8].try_into().expect("8 bytes"));
            let fixed = if kind_tag == 13 { pos as u64 } else { offset.min(pos as u64) };
            file[at..at + 8].copy_from_slice(&fixed.to_le_bytes());
        }
        if flags & FIX_CRCS != 0 {
            let crc = crc32c::crc32c_append(crc32c::crc32c(&(len as u32).to_le_bytes()), &file[pos + 12..end]);
            file[pos + 8..pos + 12].copy_from_slice(&crc.to_le_bytes());
        }
        pos = end;
    }
}

/// The payloads of the frames of `file` (after its 32-byte header) whose CRC32C is
/// right, found by an independent walk: every frame boundary the engine could have
/// trusted, computed without the engine's decoder.
pub fn valid_frame_payloads(file: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 16 <= file.len() {
        if &file[pos..pos + 4] != b"SLR1" {
            pos += 1;
            continue;
        }
        let len = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(file[pos + 8..pos + 12].try_into().expect("4 bytes"));
        match pos.checked_add(16 + len).filter(|&e| e <= file.len()) {
            Some(end) if crc32c::crc32c_append(crc32c::crc32c(&(len as u32).to_le_bytes()), &file[pos + 12..end]) == crc => {
                out.push(&file[pos + 16..end]);
                pos = end;
            }
            _ => pos += 1,
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
