//! Routing: which service, protocol and operation a request is, from the request alone.
//!
//! 1. `X-Amz-Target: AmazonSQS.<Op>` → SQS over AWS JSON 1.0;
//!    `Kinesis_20131202.<Op>` → Kinesis over JSON 1.1, or CBOR 1.1 when the
//!    `Content-Type` is `application/x-amz-cbor-1.1`; any other target, or a JSON/CBOR
//!    content type without a target → `UnknownOperationException`.
//! 2. Otherwise the query protocol: parameters from the URL query string and, for form
//!    bodies, the body (the URL's first: the first occurrence of a name wins). `Action` is
//!    required. The service is the one `Version` names (2012-11-05 SQS, 2010-03-31 SNS,
//!    2011-06-15 STS), else the SigV4 scope's service, else the first of SQS, SNS, STS whose
//!    model has the action (SQS first: both SQS and SNS have `AddPermission`).
//!
//! Decoding of the input itself is `json.rs` / `query.rs`. Nothing here depends on the
//! HTTP method: AWS query endpoints take GET and POST alike.

use http::{header, HeaderMap, Method, Uri};

use crate::error::{Detected, ProtocolError};
use crate::model::Model;
use crate::query::{self, Params};
use crate::{json, ApiRequest, ServiceKind, SigV4Scope, WireProtocol};

const SQS_TARGET_PREFIX: &str = "AmazonSQS";
const KINESIS_TARGET_PREFIX: &str = "Kinesis_20131202";
const CONTENT_TYPE_JSON_10: &str = "application/x-amz-json-1.0";
const CONTENT_TYPE_JSON_11: &str = "application/x-amz-json-1.1";
const CONTENT_TYPE_CBOR_11: &str = "application/x-amz-cbor-1.1";
const CONTENT_TYPE_FORM: &str = "application/x-www-form-urlencoded";

/// Routes and decodes one request. `method`, `uri` and `headers` as received by hyper,
/// `body` fully read (the server bounds its size).
pub fn decode(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ApiRequest, ProtocolError> {
    decode_with(method, uri, headers, body, false)
}

/// [`decode`], except that a request an operation's typed path takes (see
/// [`TypedInput`]) comes back with `typed` set and an empty `input`: a
/// service that has the typed path reads `typed`, any other reads
/// [`TypedInput::to_value`].
pub fn decode_typed(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ApiRequest, ProtocolError> {
    decode_with(method, uri, headers, body, true)
}

fn decode_with(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    typed: bool,
) -> Result<ApiRequest, ProtocolError> {
    let _ = method;
    let content_type = content_type(headers);
    let mut url_params = Params::new();
    if let Some(q) = uri.query() {
        query::add_form_pairs(&mut url_params, q.as_bytes());
    }
    let scope = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(SigV4Scope::from_authorization)
        .or_else(|| {
            url_params
                .get("X-Amz-Credential")
                .and_then(|c| SigV4Scope::parse_credential(c))
        });
    let mut request = ApiRequest {
        service: ServiceKind::Sqs,
        protocol: WireProtocol::Query,
        operation: String::new(),
        input: serde_json::Value::Null,
        typed: None,
        path: uri.path().to_owned(),
        host: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.as_str().to_owned())),
        scope,
        query_mode: headers
            .get("x-amzn-query-mode")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
    };

    if let Some(target) = headers.get("x-amz-target") {
        let target = String::from_utf8_lossy(target.as_bytes()).trim().to_owned();
        return decode_json(request, &target, &content_type, body, typed);
    }
    if let Some(protocol) = json_protocol_of(&content_type) {
        let service = match request.scope.as_ref().map(|s| s.service.as_str()) {
            Some("sqs") => Some(ServiceKind::Sqs),
            Some("kinesis") => Some(ServiceKind::Kinesis),
            _ => None,
        };
        return Err(ProtocolError::UnknownOperationException {
            target: String::new(),
            detected: Detected {
                service,
                protocol: Some(protocol),
            },
        });
    }

    let mut params = url_params;
    if content_type.is_empty() || content_type == CONTENT_TYPE_FORM {
        query::add_form_pairs(&mut params, body);
    }
    if request.scope.is_none() {
        request.scope = params
            .get("X-Amz-Credential")
            .and_then(|c| SigV4Scope::parse_credential(c));
    }
    decode_query(request, &params)
}

fn decode_json(
    mut request: ApiRequest,
    target: &str,
    content_type: &str,
    body: &[u8],
    typed: bool,
) -> Result<ApiRequest, ProtocolError> {
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    let (service, protocol) = match prefix {
        SQS_TARGET_PREFIX => (ServiceKind::Sqs, WireProtocol::AwsJson10),
        KINESIS_TARGET_PREFIX if content_type == CONTENT_TYPE_CBOR_11 => {
            (ServiceKind::Kinesis, WireProtocol::Cbor11)
        }
        KINESIS_TARGET_PREFIX => (ServiceKind::Kinesis, WireProtocol::AwsJson11),
        _ => {
            return Err(ProtocolError::UnknownOperationException {
                target: target.to_owned(),
                detected: Detected {
                    service: None,
                    protocol: Some(
                        json_protocol_of(content_type).unwrap_or(WireProtocol::AwsJson10),
                    ),
                },
            })
        }
    };
    let detected = Detected {
        service: Some(service),
        protocol: Some(protocol),
    };
    let model = Model::get(service);
    let Some(op) = model.operation(operation) else {
        return Err(ProtocolError::UnknownOperationException {
            target: target.to_owned(),
            detected,
        });
    };
    if protocol == WireProtocol::Cbor11 {
        return Err(ProtocolError::CborNotSupported { detected });
    }
    let fast = if typed && protocol == WireProtocol::AwsJson10 { crate::typed::decode_sqs(&op.name, body) } else { None };
    match fast {
        Some(t) => {
            request.input = serde_json::Value::Object(serde_json::Map::new());
            request.typed = Some(t);
        }
        None => request.input = json::decode_input(model, op, body, detected)?,
    }
    request.service = service;
    request.protocol = protocol;
    request.operation = op.name.clone();
    Ok(request)
}

fn decode_query(mut request: ApiRequest, params: &Params) -> Result<ApiRequest, ProtocolError> {
    let by_version = params.get("Version").and_then(|v| match v.as_str() {
        "2012-11-05" => Some(ServiceKind::Sqs),
        "2010-03-31" => Some(ServiceKind::Sns),
        "2011-06-15" => Some(ServiceKind::Sts),
        _ => None,
    });
    let by_scope = request
        .scope
        .as_ref()
        .and_then(|s| match s.service.as_str() {
            "sqs" => Some(ServiceKind::Sqs),
            "sns" => Some(ServiceKind::Sns),
            "sts" => Some(ServiceKind::Sts),
            _ => None,
        });
    let hinted = by_version.or(by_scope);
    let mut detected = Detected {
        service: hinted,
        protocol: Some(WireProtocol::Query),
    };
    let Some(action) = params.get("Action").filter(|a| !a.is_empty()) else {
        return Err(ProtocolError::MissingAction { detected });
    };
    let service = hinted.or_else(|| {
        [ServiceKind::Sqs, ServiceKind::Sns, ServiceKind::Sts]
            .into_iter()
            .find(|s| Model::get(*s).operation(action).is_some())
    });
    let Some(service) = service else {
        return Err(ProtocolError::InvalidAction {
            action: action.clone(),
            detected,
        });
    };
    detected.service = Some(service);
    let model = Model::get(service);
    let Some(op) = model.operation(action) else {
        return Err(ProtocolError::InvalidAction {
            action: action.clone(),
            detected,
        });
    };
    request.input = query::decode_input(model, op, params, detected)?;
    request.service = service;
    request.protocol = WireProtocol::Query;
    request.operation = op.name.clone();
    Ok(request)
}

/// The media type of the request, lowercased, without parameters (`; charset=utf-8`).
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn json_protocol_of(content_type: &str) -> Option<WireProtocol> {
    match content_type {
        CONTENT_TYPE_JSON_10 => Some(WireProtocol::AwsJson10),
        CONTENT_TYPE_JSON_11 => Some(WireProtocol::AwsJson11),
        CONTENT_TYPE_CBOR_11 => Some(WireProtocol::Cbor11),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Goal: every routing rule picks the service, protocol and operation AWS would, and
    //! failures carry what was detected. Method: build requests with `http` types and
    //! call the public `decode`.

    use expect_test::expect;
    use http::{HeaderMap, HeaderValue, Method, Uri};
    use serde_json::json;

    use super::*;
    use crate::testutil::{decode_form, decode_form_err, decode_json_err, render_text};

    fn request(
        uri: &str,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> Result<ApiRequest, ProtocolError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        decode(
            &Method::POST,
            &uri.parse::<Uri>().unwrap(),
            &map,
            body.as_bytes(),
        )
    }

    const AUTH_SNS: &str = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x";

    #[test]
    fn sqs_target_routes_to_sqs_json_10_with_request_facts() {
        let r = request(
            "http://localhost:4566/",
            &[
                ("x-amz-target", "AmazonSQS.GetQueueUrl"),
                ("content-type", "application/x-amz-json-1.0"),
                ("host", "localhost:4566"),
                ("x-amzn-query-mode", "true"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/sqs/aws4_request, SignedHeaders=host, Signature=x"),
            ],
            r#"{"QueueName":"jobs"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.service, r.protocol, r.operation.as_str()),
            (ServiceKind::Sqs, WireProtocol::AwsJson10, "GetQueueUrl")
        );
        assert_eq!(r.input, json!({"QueueName": "jobs"}));
        assert_eq!(r.host.as_deref(), Some("localhost:4566"));
        assert_eq!(r.path, "/");
        assert!(r.query_mode);
        assert_eq!(r.scope.unwrap().region, "eu-west-1");
    }

    #[test]
    fn kinesis_target_routes_to_json_11_and_cbor_is_refused_clearly() {
        let r = request(
            "/",
            &[
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            "{}",
        )
        .unwrap();
        assert_eq!(
            (r.service, r.protocol),
            (ServiceKind::Kinesis, WireProtocol::AwsJson11)
        );

        let e = request(
            "/",
            &[
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ("content-type", "application/x-amz-cbor-1.1"),
            ],
            "\u{a0}",
        )
        .unwrap_err();
        assert_eq!(e.protocol(), Some(WireProtocol::Cbor11));
        assert_eq!(e.service(), Some(ServiceKind::Kinesis));
        let rendered = e.render("r");
        assert_eq!(rendered.status, 400);
        assert_eq!(
            rendered.header("content-type"),
            Some("application/x-amz-cbor-1.1")
        );
    }

    #[test]
    fn unknown_targets_are_unknown_operation_exceptions() {
        expect![[r#"UnknownOperationException 400: The operation AmazonSQS.Nope is not valid for this endpoint."#]]
            .assert_eq(&decode_json_err("AmazonSQS.Nope", "{}"));
        let e = request(
            "/",
            &[
                ("x-amz-target", "DynamoDB_20120810.ListTables"),
                ("content-type", "application/x-amz-json-1.0"),
            ],
            "{}",
        )
        .unwrap_err();
        assert_eq!(e.service(), None);
        assert_eq!(e.protocol(), Some(WireProtocol::AwsJson10));
        let e = request("/", &[("content-type", "application/x-amz-json-1.1")], "{}").unwrap_err();
        assert!(
            matches!(e, ProtocolError::UnknownOperationException { .. }),
            "{e:?}"
        );
    }

    #[test]
    fn version_chooses_the_query_service() {
        // AddPermission exists in both SQS and SNS; Version decides.
        let r = decode_form("Action=AddPermission&Version=2010-03-31&TopicArn=t&Label=l&AWSAccountId.member.1=1&ActionName.member.1=Publish");
        assert_eq!(r.service, ServiceKind::Sns);
        assert_eq!(
            r.input,
            json!({"TopicArn": "t", "Label": "l", "AWSAccountId": ["1"], "ActionName": ["Publish"]})
        );
        let r = decode_form("Action=AddPermission&Version=2012-11-05&QueueUrl=q&Label=l&AWSAccountId.1=1&ActionName.1=SendMessage");
        assert_eq!(r.service, ServiceKind::Sqs);
        assert_eq!(
            r.input,
            json!({"QueueUrl": "q", "Label": "l", "AWSAccountIds": ["1"], "Actions": ["SendMessage"]})
        );
    }

    #[test]
    fn scope_chooses_the_query_service_when_version_is_absent() {
        let r = request(
            "/",
            &[
                ("authorization", AUTH_SNS),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "Action=RemovePermission&TopicArn=t&Label=l",
        )
        .unwrap();
        assert_eq!(r.service, ServiceKind::Sns);
        assert_eq!(r.scope.unwrap().service, "sns");
    }

    #[test]
    fn action_lookup_chooses_the_query_service_last() {
        assert_eq!(
            decode_form("Action=RemovePermission&QueueUrl=q&Label=l").service,
            ServiceKind::Sqs
        );
        assert_eq!(
            decode_form("Action=Publish&TopicArn=t&Message=m").service,
            ServiceKind::Sns
        );
        let r = decode_form("Action=GetCallerIdentity");
        assert_eq!((r.service, r.input.clone()), (ServiceKind::Sts, json!({})));
        let r = decode_form("Action=GetCallerIdentity&Version=2011-06-15");
        assert_eq!(r.service, ServiceKind::Sts);
    }

    #[test]
    fn query_parameters_merge_url_and_body_and_presigned_credentials_give_the_scope() {
        let r = request(
            "http://h/000000000000/jobs?Action=SendMessage&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fsqs%2Faws4_request",
            &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            "MessageBody=hi&Action=Ignored",
        )
        .unwrap();
        assert_eq!(r.operation, "SendMessage");
        assert_eq!(r.path, "/000000000000/jobs");
        assert_eq!(r.input, json!({"MessageBody": "hi"}));
        assert_eq!(r.scope.unwrap().service, "sqs");
    }

    #[test]
    fn get_requests_carry_query_parameters_in_the_url() {
        let uri: Uri = "/?Action=ListQueues&Version=2012-11-05&QueueNamePrefix=a%20b"
            .parse()
            .unwrap();
        let r = decode(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap();
        assert_eq!(r.input, json!({"QueueNamePrefix": "a b"}));
    }

    #[test]
    fn missing_action_is_missing_action() {
        expect![[r#"MissingAction 400: Missing Action"#]]
            .assert_eq(&decode_form_err("Version=2012-11-05&QueueUrl=q"));
        expect![[r#"MissingAction 400: Missing Action"#]].assert_eq(&decode_form_err("Action="));
        let e = request("/", &[], "").unwrap_err();
        expect![[r#"
            400 text/xml
            <?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type><Code>MissingAction</Code><Message>Missing Action</Message><Detail/></Error><RequestId>r</RequestId></ErrorResponse>"#]]
        .assert_eq(&render_text(&e.render("r")));
    }

    #[test]
    fn unknown_action_is_invalid_action_in_the_detected_service() {
        expect![[r#"InvalidAction 400: The action Frobnicate is not valid for this endpoint."#]]
            .assert_eq(&decode_form_err("Action=Frobnicate"));
        let e = request(
            "/",
            &[("content-type", "application/x-www-form-urlencoded")],
            "Action=Publish&Version=2012-11-05",
        )
        .unwrap_err();
        assert_eq!(e.service(), Some(ServiceKind::Sqs));
        let e = request(
            "/",
            &[("content-type", "application/x-www-form-urlencoded")],
            "Action=SendMessage&Version=2010-03-31",
        )
        .unwrap_err();
        assert_eq!(e.service(), Some(ServiceKind::Sns));
        expect![[r#"
            400 text/xml
            <?xml version="1.0"?><ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>The action SendMessage is not valid for this endpoint.</Message><Detail/></Error><RequestId>r</RequestId></ErrorResponse>"#]]
        .assert_eq(&render_text(&e.render("r")));
    }

    #[test]
    fn malformed_sqs_json_renders_as_sqs_json_error() {
        let e = request(
            "/",
            &[
                ("x-amz-target", "AmazonSQS.SendMessage"),
                ("content-type", "application/x-amz-json-1.0"),
            ],
            "{not json",
        )
        .unwrap_err();
        expect![[r#"
            400 application/x-amz-json-1.0
            x-amzn-query-error: SerializationException;Sender
            {"__type":"com.amazonaws.sqs#SerializationException","message":"The request body is not valid JSON: key must be a string at line 1 column 2"}"#]]
        .assert_eq(&render_text(&e.render("r")));
    }

    #[test]
    fn bad_integer_in_query_renders_as_query_error() {
        let e = decode_form_err(
            "Action=ChangeMessageVisibility&QueueUrl=q&ReceiptHandle=r&VisibilityTimeout=1e3",
        );
        expect![[r#"InvalidParameterValue 400: Value 1e3 for parameter VisibilityTimeout is invalid. Reason: Must be an integer."#]].assert_eq(&e);
    }

    #[test]
    fn body_is_not_read_as_form_for_other_content_types() {
        let e = request("/", &[("content-type", "text/plain")], "Action=ListQueues").unwrap_err();
        assert!(matches!(e, ProtocolError::MissingAction { .. }));
    }
}
