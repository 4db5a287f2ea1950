//! Query-protocol decoding: flat `Name.1.Key=value` parameters to the JSON-shaped input.
//!
//! The rules are the inverse of botocore's `QuerySerializer` (botocore/serialize.py),
//! applied to the model (see `model.rs` for how member traits merge over shape traits):
//! - a structure member is named by its `locationName`, else its member name; nested
//!   members join with `.` (`MessageAttribute.1.Value.DataType`);
//! - a flattened list repeats `Name.N`, where a list member `locationName` replaces the
//!   last segment of the member's name (`AttributeNames` → `AttributeName.1`);
//!   a non-flattened list is `Name.<member locationName or "member">.N`;
//!   an empty list arrives as the bare member name with an empty value (`AttributeNames=`);
//! - a flattened map is `Name.N.<key name>` / `Name.N.<value name>` (names from the
//!   key/value `locationName`, else `key` / `value`); a non-flattened one inserts `entry`
//!   (`Attributes.entry.1.key`);
//! - scalars convert by shape type; blobs stay base64 text and timestamps stay as sent.
//!
//! Parameters the model does not know are ignored, as AWS ignores them. Routing (which
//! service, which action) is `route.rs`'s job; this module never sees HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde_json::{Map, Number, Value};

use crate::error::{Detected, ProtocolError};
use crate::model::{Model, Operation, Resolved, Shape, ShapeType};

/// Deepest nesting decoded; far above what any model needs, it only bounds recursion.
pub(crate) const MAX_DEPTH: usize = 64;

/// Longest parameter value quoted back in an error message, in characters.
const QUOTE_MAX_CHARS: usize = 256;

/// Query parameters by name. The first occurrence of a name wins.
pub(crate) type Params = BTreeMap<String, String>;

/// Adds form-encoded `pairs` (`a=1&b=2`, `+` as space) to `params`, keeping earlier values.
///
/// Bytes that are not UTF-8 after percent-decoding become U+FFFD.
pub(crate) fn add_form_pairs(params: &mut Params, pairs: &[u8]) {
    for (name, value) in form_urlencoded::parse(pairs) {
        params
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
}

/// Decodes `params` into the input of `operation`: always a JSON object.
pub(crate) fn decode_input(
    model: &Model,
    operation: &Operation,
    params: &Params,
    detected: Detected,
) -> Result<Value, ProtocolError> {
    let decoder = Decoder {
        model,
        params,
        detected,
    };
    let input = match operation.input.as_deref().and_then(|s| model.shape(s)) {
        Some(shape) => decoder.structure(shape, "", 0)?,
        None => Map::new(),
    };
    Ok(Value::Object(input))
}

struct Decoder<'a> {
    model: &'a Model,
    params: &'a Params,
    detected: Detected,
}

impl Decoder<'_> {
    fn structure(
        &self,
        shape: &Shape,
        prefix: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, ProtocolError> {
        let mut out = Map::new();
        for member in &shape.members {
            let Some(resolved) = self.model.resolve(member) else {
                continue;
            };
            let key = join(prefix, resolved.location_name.unwrap_or(&member.name));
            if let Some(value) = self.value(resolved, &key, depth + 1)? {
                out.insert(member.name.clone(), value);
            }
        }
        Ok(out)
    }

    /// The value serialized under `key`, or `None` when nothing was sent for it.
    fn value(
        &self,
        r: Resolved<'_>,
        key: &str,
        depth: usize,
    ) -> Result<Option<Value>, ProtocolError> {
        if depth > MAX_DEPTH {
            return Err(ProtocolError::InvalidParameterValue {
                message: format!("Parameter {} is nested too deeply.", quote(key)),
                detected: self.detected,
            });
        }
        match r.shape.shape_type {
            ShapeType::Structure => {
                let members = self.structure(r.shape, key, depth)?;
                Ok((!members.is_empty()).then_some(Value::Object(members)))
            }
            ShapeType::List => self.list(r, key, depth),
            ShapeType::Map => self.map(r, key, depth),
            scalar => match self.params.get(key) {
                None => Ok(None),
                Some(text) => self.scalar(scalar, key, text),
            },
        }
    }

    fn list(
        &self,
        r: Resolved<'_>,
        key: &str,
        depth: usize,
    ) -> Result<Option<Value>, ProtocolError> {
        let Some(member) = r.shape.member.as_ref().and_then(|m| self.model.resolve(m)) else {
            return Ok(None);
        };
        let list_prefix = if r.flattened {
            match member.location_name {
                Some(name) => replace_last_segment(key, name),
                None => key.to_owned(),
            }
        } else {
            join(key, member.location_name.unwrap_or("member"))
        };
        let mut items = Vec::new();
        for index in self.indices(&list_prefix) {
            if let Some(item) = self.value(member, &format!("{list_prefix}.{index}"), depth + 1)? {
                items.push(item);
            }
        }
        if items.is_empty() {
            // botocore sends an empty list as the bare member name with an empty value.
            let empty_marker = self.params.get(key).is_some_and(|v| v.is_empty());
            return Ok(empty_marker.then(|| Value::Array(Vec::new())));
        }
        Ok(Some(Value::Array(items)))
    }

    fn map(
        &self,
        r: Resolved<'_>,
        key: &str,
        depth: usize,
    ) -> Result<Option<Value>, ProtocolError> {
        let (Some(key_ref), Some(value_ref)) = (r.shape.key.as_ref(), r.shape.value.as_ref())
        else {
            return Ok(None);
        };
        let (Some(key_r), Some(value_r)) =
            (self.model.resolve(key_ref), self.model.resolve(value_ref))
        else {
            return Ok(None);
        };
        let base = if r.flattened {
            key.to_owned()
        } else {
            join(key, "entry")
        };
        let key_name = key_r.location_name.unwrap_or("key");
        let value_name = value_r.location_name.unwrap_or("value");
        let mut out = Map::new();
        for index in self.indices(&base) {
            // An entry without a key or a value carries nothing a service could use; AWS's
            // answer to such entries is not documented, so they are dropped.
            let Some(entry_key) = self.params.get(&format!("{base}.{index}.{key_name}")) else {
                continue;
            };
            let entry_value =
                self.value(value_r, &format!("{base}.{index}.{value_name}"), depth + 1)?;
            if let Some(entry_value) = entry_value {
                out.insert(entry_key.clone(), entry_value);
            }
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }

    /// The list indices sent under `prefix` (`prefix.N...`), in numeric order.
    /// Gaps are allowed; only canonical positive decimals count as indices.
    fn indices(&self, prefix: &str) -> BTreeSet<u32> {
        let start = format!("{prefix}.");
        let mut indices = BTreeSet::new();
        // Keys sharing a prefix are contiguous in a BTreeMap, so this visits only them.
        for (name, _) in self
            .params
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
        {
            let Some(rest) = name.strip_prefix(&start) else {
                break;
            };
            let segment = rest.split('.').next().unwrap_or_default();
            if let Some(index) = canonical_index(segment) {
                indices.insert(index);
            }
        }
        indices
    }

    fn scalar(
        &self,
        shape_type: ShapeType,
        key: &str,
        text: &str,
    ) -> Result<Option<Value>, ProtocolError> {
        let text_value = || Ok(Some(Value::String(text.to_owned())));
        if text.is_empty() && !matches!(shape_type, ShapeType::String | ShapeType::Blob) {
            // Some hand-written clients send optional numbers and flags empty; treat as absent.
            return Ok(None);
        }
        let converted = match shape_type {
            ShapeType::String | ShapeType::Blob | ShapeType::Timestamp => return text_value(),
            ShapeType::Integer => text.parse::<i32>().ok().map(Value::from),
            ShapeType::Long => text.parse::<i64>().ok().map(Value::from),
            ShapeType::Float | ShapeType::Double => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number),
            ShapeType::Boolean => {
                if text.eq_ignore_ascii_case("true") {
                    Some(Value::Bool(true))
                } else if text.eq_ignore_ascii_case("false") {
                    Some(Value::Bool(false))
                } else {
                    None
                }
            }
            ShapeType::Structure | ShapeType::List | ShapeType::Map => return Ok(None),
        };
        match converted {
            Some(value) => Ok(Some(value)),
            None => {
                let reason = match shape_type {
                    ShapeType::Integer | ShapeType::Long => "Must be an integer.",
                    ShapeType::Boolean => "Must be true or false.",
                    _ => "Must be a number.",
                };
                Err(ProtocolError::InvalidParameterValue {
                    message: format!(
                        "Value {} for parameter {} is invalid. Reason: {reason}",
                        quote(text),
                        quote(key)
                    ),
                    detected: self.detected,
                })
            }
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// botocore's flattened-list rule: `'.'.join(prefix.split('.')[:-1] + [name])`.
fn replace_last_segment(key: &str, name: &str) -> String {
    match key.rfind('.') {
        Some(dot) => format!("{}.{name}", &key[..dot]),
        None => name.to_owned(),
    }
}

/// `1`, `2`, ... but not `0`, `01`, `+1` or anything past `u32`.
fn canonical_index(segment: &str) -> Option<u32> {
    let mut bytes = segment.bytes();
    match bytes.next() {
        Some(b'1'..=b'9') if bytes.all(|b| b.is_ascii_digit()) => segment.parse().ok(),
        _ => None,
    }
}

/// Request text quoted in a message, cut short so errors stay small.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    //! Goal: every query body botocore 1.34.89 sends decodes back to the input it was
    //! serialized from. Method: `testdata/query_requests.json` holds (input, body) pairs
    //! that `testdata/gen_query_requests.py` produced with botocore's own serializer;
    //! each body goes through the public `decode`, and the input must come back equal.
    //! Hand-written cases cover what botocore never sends (bad scalars, odd indices).

    use expect_test::{expect, Expect};
    use serde_json::json;

    use crate::testutil::{decode_form, decode_form_err};
    use crate::{ServiceKind, WireProtocol};

    #[test]
    fn every_botocore_query_body_decodes_to_its_input() {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../testdata/query_requests.json")).unwrap();
        assert!(cases.len() >= 30);
        for case in cases {
            let request = decode_form(case["body"].as_str().unwrap());
            let expected_service = match case["service"].as_str().unwrap() {
                "sqs" => ServiceKind::Sqs,
                _ => ServiceKind::Sns,
            };
            assert_eq!(request.service, expected_service, "{case}");
            assert_eq!(request.protocol, WireProtocol::Query);
            assert_eq!(request.operation, case["operation"].as_str().unwrap());
            assert_eq!(
                request.input, case["input"],
                "{} {}",
                case["model"], case["operation"]
            );
        }
    }

    fn check(body: &str, expect: Expect) {
        let request = decode_form(body);
        expect.assert_eq(&format!(
            "{} {}",
            request.operation,
            serde_json::to_string_pretty(&request.input).unwrap()
        ));
    }

    #[test]
    fn send_message_attributes_decode_by_name_and_value_parts() {
        check(
            "Action=SendMessage&Version=2012-11-05&QueueUrl=q&MessageBody=hi+there\
             &MessageAttribute.1.Name=s&MessageAttribute.1.Value.DataType=String\
             &MessageAttribute.1.Value.StringValue=v&MessageAttribute.2.Name=b\
             &MessageAttribute.2.Value.DataType=Binary&MessageAttribute.2.Value.BinaryValue=AAE%3D\
             &MessageSystemAttribute.1.Name=AWSTraceHeader\
             &MessageSystemAttribute.1.Value.DataType=String\
             &MessageSystemAttribute.1.Value.StringValue=Root%3D1&DelaySeconds=3",
            expect![[r#"
                SendMessage {
                  "QueueUrl": "q",
                  "MessageBody": "hi there",
                  "DelaySeconds": 3,
                  "MessageAttributes": {
                    "s": {
                      "StringValue": "v",
                      "DataType": "String"
                    },
                    "b": {
                      "BinaryValue": "AAE=",
                      "DataType": "Binary"
                    }
                  },
                  "MessageSystemAttributes": {
                    "AWSTraceHeader": {
                      "StringValue": "Root=1",
                      "DataType": "String"
                    }
                  }
                }"#]],
        );
    }

    #[test]
    fn receive_message_name_lists_decode_including_message_system_attribute_names() {
        check(
            "Action=ReceiveMessage&QueueUrl=q&AttributeName.1=All&MessageAttributeName.1=a\
             &MessageAttributeName.2=b.*&MessageSystemAttributeName.1=SenderId\
             &MessageSystemAttributeName.2=SentTimestamp&MaxNumberOfMessages=10&WaitTimeSeconds=0",
            expect![[r#"
                ReceiveMessage {
                  "QueueUrl": "q",
                  "AttributeNames": [
                    "All"
                  ],
                  "MessageSystemAttributeNames": [
                    "SenderId",
                    "SentTimestamp"
                  ],
                  "MessageAttributeNames": [
                    "a",
                    "b.*"
                  ],
                  "MaxNumberOfMessages": 10,
                  "WaitTimeSeconds": 0
                }"#]],
        );
    }

    #[test]
    fn list_indices_are_ordered_numerically_and_gaps_are_allowed() {
        let request = decode_form(
            "Action=GetQueueAttributes&QueueUrl=q&AttributeName.10=C&AttributeName.2=B\
             &AttributeName.1=A&AttributeName.0=zero&AttributeName.01=lead&AttributeName.x=X",
        );
        assert_eq!(request.input["AttributeNames"], json!(["A", "B", "C"]));
    }

    #[test]
    fn map_entries_without_key_or_value_are_dropped() {
        let request = decode_form(
            "Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=1\
             &Attribute.2.Name=VisibilityTimeout&Attribute.3.Value=orphan",
        );
        assert_eq!(request.input["Attributes"], json!({"DelaySeconds": "1"}));
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        let request = decode_form("Action=DeleteQueue&QueueUrl=q&Bogus=1&Attribute.1.Name=x");
        assert_eq!(request.input, json!({"QueueUrl": "q"}));
    }

    #[test]
    fn first_occurrence_of_a_parameter_wins() {
        let request = decode_form("Action=DeleteQueue&QueueUrl=first&QueueUrl=second");
        assert_eq!(request.input, json!({"QueueUrl": "first"}));
    }

    #[test]
    fn empty_numbers_are_treated_as_absent() {
        let request = decode_form("Action=ReceiveMessage&QueueUrl=q&MaxNumberOfMessages=");
        assert_eq!(request.input, json!({"QueueUrl": "q"}));
    }

    #[test]
    fn bad_integer_is_invalid_parameter_value() {
        let error = decode_form_err("Action=ReceiveMessage&QueueUrl=q&MaxNumberOfMessages=ten");
        expect![[r#"InvalidParameterValue 400: Value ten for parameter MaxNumberOfMessages is invalid. Reason: Must be an integer."#]]
            .assert_eq(&error);
        let error = decode_form_err(
            "Action=ChangeMessageVisibilityBatch&QueueUrl=q\
             &ChangeMessageVisibilityBatchRequestEntry.1.Id=a\
             &ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=99999999999",
        );
        expect![[r#"InvalidParameterValue 400: Value 99999999999 for parameter ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout is invalid. Reason: Must be an integer."#]]
            .assert_eq(&error);
    }

    #[test]
    fn bad_boolean_is_invalid_parameter_value() {
        let error = decode_form_err(
            "Action=Subscribe&Version=2010-03-31&TopicArn=t&Protocol=sqs&ReturnSubscriptionArn=yes",
        );
        expect![[r#"InvalidParameterValue 400: Value yes for parameter ReturnSubscriptionArn is invalid. Reason: Must be true or false."#]]
            .assert_eq(&error);
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let long = "9".repeat(1000);
        let error = decode_form_err(&format!(
            "Action=ReceiveMessage&QueueUrl=q&WaitTimeSeconds={long}"
        ));
        assert!(error.len() < 400, "{error}");
    }
}
