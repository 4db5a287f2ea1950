//! Test helpers shared by this crate's unit tests: request builders around the public
//! `decode`, a stand-in `AwsError`, and an XML outline printer that compares XML by meaning
//! (element tree and unescaped text) rather than by bytes.

use http::{HeaderMap, HeaderValue, Method, Uri};
use quick_xml::events::Event;
use sluice_core::AwsError;

use crate::{decode, ApiRequest, ProtocolError, Rendered};

fn post(headers: &[(&'static str, &str)], body: &str) -> Result<ApiRequest, ProtocolError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    decode(
        &Method::POST,
        &Uri::from_static("http://localhost:4566/"),
        &map,
        body.as_bytes(),
    )
}

/// Decodes a form-encoded query body that must succeed.
pub(crate) fn decode_form(body: &str) -> ApiRequest {
    post(
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body,
    )
    .unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

/// Decodes a form-encoded query body that must fail; returns `Code status: message`.
pub(crate) fn decode_form_err(body: &str) -> String {
    match post(
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
    ) {
        Ok(r) => panic!("{body}: decoded to {r:?}"),
        Err(e) => error_line(&e),
    }
}

fn json_headers(target: &str) -> [(&'static str, &str); 2] {
    let content_type = if target.starts_with("Kinesis") {
        "application/x-amz-json-1.1"
    } else {
        "application/x-amz-json-1.0"
    };
    [("x-amz-target", target), ("content-type", content_type)]
}

/// Decodes a JSON-protocol request that must succeed.
pub(crate) fn decode_json(target: &str, body: &str) -> ApiRequest {
    post(&json_headers(target), body).unwrap_or_else(|e| panic!("{target} {body}: {e:?}"))
}

/// Decodes a JSON-protocol request that must fail; returns `Code status: message`.
pub(crate) fn decode_json_err(target: &str, body: &str) -> String {
    match post(&json_headers(target), body) {
        Ok(r) => panic!("{target} {body}: decoded to {r:?}"),
        Err(e) => error_line(&e),
    }
}

fn error_line(e: &ProtocolError) -> String {
    format!("{} {}: {}", e.code(), e.status(), e.message())
}

/// A response as text: status, content type, the query-error header if any, then the body.
pub(crate) fn render_text(r: &Rendered) -> String {
    let mut text = format!(
        "{} {}\n",
        r.status,
        r.header("content-type").unwrap_or_default()
    );
    if let Some(q) = r.header("x-amzn-query-error") {
        text.push_str(&format!("x-amzn-query-error: {q}\n"));
    }
    text.push_str(&String::from_utf8_lossy(&r.body));
    text
}

/// A service error for rendering tests.
#[derive(Debug)]
pub(crate) struct TestError {
    code: &'static str,
    query_code: &'static str,
    status: u16,
    message: String,
}

impl TestError {
    pub(crate) fn new(
        code: &'static str,
        query_code: &'static str,
        status: u16,
        message: &str,
    ) -> TestError {
        TestError {
            code,
            query_code,
            status,
            message: message.to_owned(),
        }
    }

    pub(crate) fn queue_does_not_exist() -> TestError {
        TestError::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            400,
            "The specified queue does not exist.",
        )
    }

    pub(crate) fn internal() -> TestError {
        TestError::new(
            "InternalError",
            "InternalError",
            500,
            "We encountered an internal error.",
        )
    }
}

impl AwsError for TestError {
    fn code(&self) -> &str {
        self.code
    }
    fn query_code(&self) -> &str {
        self.query_code
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn message(&self) -> String {
        self.message.clone()
    }
}

struct Node {
    head: String,
    text: String,
    children: Vec<Node>,
}

/// Parses `xml` as an XML 1.0 parser would (line ends normalized, references resolved) and
/// prints its element tree: one element per line, indented, leaves with their text quoted.
/// Panics on anything not well-formed, and on DTDs, which sluice never writes.
pub(crate) fn xml_outline(xml: &str) -> String {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node {
        head: String::new(),
        text: String::new(),
        children: Vec::new(),
    }];
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed ({e}): {xml}"));
        match event {
            Event::Start(e) => stack.push(Node {
                head: head_of(&e),
                text: String::new(),
                children: Vec::new(),
            }),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(Node {
                head: head_of(&e),
                text: String::new(),
                children: Vec::new(),
            }),
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c,
                    None => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Decl(_) => {}
            Event::DocType(_) => panic!("DTD in output: {xml}"),
            Event::Eof => break,
            other => panic!("unexpected {other:?} in {xml}"),
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements in {xml}");
    let mut out = String::new();
    for node in &stack[0].children {
        print_node(node, 0, &mut out);
    }
    out
}

fn head_of(e: &quick_xml::events::BytesStart<'_>) -> String {
    let mut head = e.name().as_ref().to_owned();
    for attr in e.attributes() {
        let attr = attr.unwrap();
        let key = attr.key.as_ref().to_owned();
        head.push_str(&format!(
            " {key}=\"{}\"",
            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap()
        ));
    }
    head
}

fn print_node(node: &Node, depth: usize, out: &mut String) {
    out.push_str(&"  ".repeat(depth));
    out.push_str(&node.head);
    if node.children.is_empty() {
        out.push_str(&format!(" {:?}\n", node.text));
    } else {
        assert!(
            node.text.trim().is_empty(),
            "mixed content in {}",
            node.head
        );
        out.push('\n');
        for child in &node.children {
            print_node(child, depth + 1, out);
        }
    }
}
