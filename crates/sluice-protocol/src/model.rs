//! The service models that drive decoding and rendering: operations, shapes and members,
//! with the query-protocol traits (`locationName`, `flattened`, `resultWrapper`,
//! `xmlNamespace`) and modelled `error` traits.
//!
//! The models are trimmed botocore service models committed under `models/`
//! (`models/trim.py` says where they came from and how the SQS model merges the
//! JSON-era member list with the query-era traits). They are embedded with
//! `include_str!` and parsed once per process. STS has no committed model: sluice
//! answers only `GetCallerIdentity`, described by the small hand-written model below.
//!
//! This module only describes; `query.rs`, `json.rs` and `xml.rs` apply the
//! serialization rules.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::ServiceKind;

const SQS_JSON: &str = include_str!("../models/sqs.json");
const SNS_JSON: &str = include_str!("../models/sns.json");
const KINESIS_JSON: &str = include_str!("../models/kinesis.json");

/// STS `GetCallerIdentity`, written in botocore's model format. Members are in the order of
/// the example response in the STS API reference (GetCallerIdentity page): Arn, UserId, Account.
const STS_JSON: &str = r#"{
  "metadata": {"apiVersion": "2011-06-15", "protocol": "query",
               "xmlNamespace": "https://sts.amazonaws.com/doc/2011-06-15/"},
  "operations": {
    "GetCallerIdentity": {
      "name": "GetCallerIdentity",
      "input": {"shape": "GetCallerIdentityRequest"},
      "output": {"shape": "GetCallerIdentityResponse", "resultWrapper": "GetCallerIdentityResult"}
    }
  },
  "shapes": {
    "GetCallerIdentityRequest": {"type": "structure", "members": {}},
    "GetCallerIdentityResponse": {"type": "structure", "members": {
      "Arn": {"shape": "arnType"}, "UserId": {"shape": "userIdType"}, "Account": {"shape": "accountType"}
    }},
    "arnType": {"type": "string"},
    "userIdType": {"type": "string"},
    "accountType": {"type": "string"}
  }
}"#;

/// The type of a shape, as botocore names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeType {
    /// A structure with named members.
    Structure,
    /// An ordered list of one member shape.
    List,
    /// A map from a key shape (always a string) to a value shape.
    Map,
    /// Text.
    String,
    /// 32-bit signed integer.
    Integer,
    /// 64-bit signed integer.
    Long,
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
    /// `true` / `false`.
    Boolean,
    /// Bytes; base64 text on the JSON and query wires.
    Blob,
    /// A point in time: epoch seconds in JSON, ISO 8601 in query/XML.
    Timestamp,
}

impl ShapeType {
    fn parse(name: &str) -> Option<ShapeType> {
        Some(match name {
            "structure" => ShapeType::Structure,
            "list" => ShapeType::List,
            "map" => ShapeType::Map,
            "string" => ShapeType::String,
            "integer" => ShapeType::Integer,
            "long" => ShapeType::Long,
            "float" => ShapeType::Float,
            "double" => ShapeType::Double,
            "boolean" => ShapeType::Boolean,
            "blob" => ShapeType::Blob,
            "timestamp" => ShapeType::Timestamp,
            _ => return None,
        })
    }
}

/// A reference from a structure member, list member or map key/value to a shape, with the
/// traits the reference itself carries (they override the target shape's, as in botocore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member name (`member`, `key` or `value` for list and map parts).
    pub name: String,
    /// The target shape's name.
    pub shape: String,
    /// The query/XML name given on the reference, if any.
    pub location_name: Option<String>,
    /// `flattened` given on the reference, if any.
    pub flattened: Option<bool>,
}

/// A modelled error's query-protocol trait: its legacy code, HTTP status and fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorTrait {
    /// The query code, e.g. `AWS.SimpleQueueService.NonExistentQueue`.
    pub code: String,
    /// The HTTP status code.
    pub http_status: u16,
    /// `true` for Sender faults.
    pub sender_fault: bool,
}

/// One shape of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// The shape's name.
    pub name: String,
    /// Its type.
    pub shape_type: ShapeType,
    /// Structure members in model order (the order query XML writes them in).
    pub members: Vec<MemberRef>,
    /// Names of required structure members.
    pub required: Vec<String>,
    /// The member of a list.
    pub member: Option<MemberRef>,
    /// The key of a map.
    pub key: Option<MemberRef>,
    /// The value of a map.
    pub value: Option<MemberRef>,
    /// Shape-level query name (botocore applies it wherever the shape is referenced).
    pub location_name: Option<String>,
    /// Shape-level `flattened`.
    pub flattened: bool,
    /// The shape is an exception.
    pub exception: bool,
    /// The query error trait of an exception shape, when the model has one.
    pub error: Option<ErrorTrait>,
    /// Allowed values of an enum string.
    pub enum_values: Vec<String>,
}

impl Shape {
    /// A structure member by name.
    pub fn member(&self, name: &str) -> Option<&MemberRef> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// An operation of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The operation name, e.g. `SendMessage`.
    pub name: String,
    /// The input shape's name.
    pub input: Option<String>,
    /// The output shape's name; `None` for operations that return nothing.
    pub output: Option<String>,
    /// The query protocol's element wrapping the output, e.g. `SendMessageResult`.
    pub result_wrapper: Option<String>,
    /// Names of the error shapes the operation declares.
    pub errors: Vec<String>,
}

/// A reference resolved against its target: the shape plus the effective query traits.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'m> {
    /// The target shape.
    pub shape: &'m Shape,
    /// The reference's `locationName`, else the shape's.
    pub location_name: Option<&'m str>,
    /// The reference's `flattened`, else the shape's.
    pub flattened: bool,
}

/// A parsed service model.
#[derive(Debug)]
pub struct Model {
    /// The service.
    pub service: ServiceKind,
    /// `metadata.apiVersion`, the query protocol's `Version`.
    pub api_version: String,
    /// `metadata.xmlNamespace` for query responses.
    pub xml_namespace: Option<String>,
    /// `metadata.targetPrefix` of JSON protocols (`AmazonSQS`, `Kinesis_20131202`).
    pub target_prefix: Option<String>,
    operations: HashMap<String, Operation>,
    shapes: HashMap<String, Shape>,
}

impl Model {
    /// The model of `service`, parsed on first use.
    pub fn get(service: ServiceKind) -> &'static Model {
        static SQS: OnceLock<Model> = OnceLock::new();
        static SNS: OnceLock<Model> = OnceLock::new();
        static STS: OnceLock<Model> = OnceLock::new();
        static KINESIS: OnceLock<Model> = OnceLock::new();
        let (cell, text) = match service {
            ServiceKind::Sqs => (&SQS, SQS_JSON),
            ServiceKind::Sns => (&SNS, SNS_JSON),
            ServiceKind::Sts => (&STS, STS_JSON),
            ServiceKind::Kinesis => (&KINESIS, KINESIS_JSON),
        };
        cell.get_or_init(|| {
            // The embedded models are part of the build; a broken one is a programmer error
            // that every test trips over, never something a request can cause.
            Model::parse(service, text)
                .unwrap_or_else(|e| panic!("embedded {service:?} model is invalid: {e}"))
        })
    }

    /// An operation by name.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// All operations, in no particular order.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.values()
    }

    /// A shape by name.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// All shapes, in no particular order.
    pub fn shapes(&self) -> impl Iterator<Item = &Shape> {
        self.shapes.values()
    }

    /// Resolves a reference, merging its traits over the target's as botocore's
    /// `ShapeResolver.resolve_shape_ref` does.
    pub fn resolve<'m>(&'m self, r: &'m MemberRef) -> Option<Resolved<'m>> {
        let shape = self.shapes.get(&r.shape)?;
        Some(Resolved {
            shape,
            location_name: r
                .location_name
                .as_deref()
                .or(shape.location_name.as_deref()),
            flattened: r.flattened.unwrap_or(shape.flattened),
        })
    }

    /// Parses a botocore-format model.
    pub fn parse(service: ServiceKind, text: &str) -> Result<Model, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let metadata = root.get("metadata").ok_or("no metadata")?;
        let meta_str = |k: &str| metadata.get(k).and_then(Value::as_str).map(str::to_owned);

        let mut operations = HashMap::new();
        for (name, op) in root
            .get("operations")
            .and_then(Value::as_object)
            .ok_or("no operations")?
        {
            let shape_of = |k: &str| {
                op.get(k)
                    .and_then(|r| r.get("shape"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let errors = op
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| e.get("shape").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            operations.insert(
                name.clone(),
                Operation {
                    name: name.clone(),
                    input: shape_of("input"),
                    output: shape_of("output"),
                    result_wrapper: op
                        .get("output")
                        .and_then(|o| o.get("resultWrapper"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    errors,
                },
            );
        }

        let mut shapes = HashMap::new();
        for (name, s) in root
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or("no shapes")?
        {
            let type_name = s.get("type").and_then(Value::as_str).unwrap_or_default();
            let shape_type = ShapeType::parse(type_name)
                .ok_or_else(|| format!("shape {name}: unknown type {type_name:?}"))?;
            let members = s
                .get("members")
                .and_then(Value::as_object)
                .map(|members| {
                    members
                        .iter()
                        .map(|(m, r)| member_ref(m, r))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| format!("shape {name}: {e}"))?
                .unwrap_or_default();
            let part = |k: &str| s.get(k).map(|r| member_ref(k, r)).transpose();
            let strings = |k: &str| -> Vec<String> {
                s.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let error = s.get("error").map(|e| ErrorTrait {
                code: e
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_owned(),
                http_status: e
                    .get("httpStatusCode")
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(400),
                sender_fault: e
                    .get("senderFault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
            shapes.insert(
                name.clone(),
                Shape {
                    name: name.clone(),
                    shape_type,
                    members,
                    required: strings("required"),
                    member: part("member").map_err(|e| format!("shape {name}: {e}"))?,
                    key: part("key").map_err(|e| format!("shape {name}: {e}"))?,
                    value: part("value").map_err(|e| format!("shape {name}: {e}"))?,
                    location_name: s
                        .get("locationName")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    flattened: s.get("flattened").and_then(Value::as_bool).unwrap_or(false),
                    exception: s.get("exception").and_then(Value::as_bool).unwrap_or(false),
                    error,
                    enum_values: strings("enum"),
                },
            );
        }

        Ok(Model {
            service,
            api_version: meta_str("apiVersion").ok_or("no apiVersion")?,
            xml_namespace: meta_str("xmlNamespace"),
            target_prefix: meta_str("targetPrefix"),
            operations,
            shapes,
        })
    }
}

fn member_ref(name: &str, r: &Value) -> Result<MemberRef, String> {
    Ok(MemberRef {
        name: name.to_owned(),
        shape: r
            .get("shape")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("member {name} has no shape"))?
            .to_owned(),
        location_name: r
            .get("locationName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        flattened: r.get("flattened").and_then(Value::as_bool),
    })
}

#[cfg(test)]
mod tests {
    //! Goal: the embedded models parse, are self-consistent, and carry the traits the
    //! query protocol needs. Method: walk every model; spot-check merged SQS traits.

    use super::*;

    const ALL: [ServiceKind; 4] = [
        ServiceKind::Sqs,
        ServiceKind::Sns,
        ServiceKind::Sts,
        ServiceKind::Kinesis,
    ];

    #[test]
    fn every_reference_in_every_model_resolves() {
        for service in ALL {
            let model = Model::get(service);
            for op in model.operations() {
                for s in op
                    .input
                    .iter()
                    .chain(op.output.iter())
                    .chain(op.errors.iter())
                {
                    assert!(model.shape(s).is_some(), "{service:?} {}: {s}", op.name);
                }
            }
            for shape in model.shapes() {
                let parts = shape
                    .members
                    .iter()
                    .chain(&shape.member)
                    .chain(&shape.key)
                    .chain(&shape.value);
                for r in parts {
                    assert!(
                        model.resolve(r).is_some(),
                        "{service:?} {}.{}",
                        shape.name,
                        r.name
                    );
                }
            }
        }
    }

    #[test]
    fn sqs_has_the_twenty_three_operations_with_query_wrappers() {
        let model = Model::get(ServiceKind::Sqs);
        assert_eq!(model.operations().count(), 23);
        for op in model.operations() {
            if op.output.is_some() {
                assert_eq!(
                    op.result_wrapper.as_deref(),
                    Some(format!("{}Result", op.name).as_str())
                );
            }
        }
        assert_eq!(
            model.xml_namespace.as_deref(),
            Some("http://queue.amazonaws.com/doc/2012-11-05/")
        );
        assert_eq!(model.target_prefix.as_deref(), Some("AmazonSQS"));
    }

    #[test]
    fn sqs_merge_carries_query_traits_and_legacy_error_codes() {
        let model = Model::get(ServiceKind::Sqs);
        let receive = model.shape("ReceiveMessageRequest").unwrap();
        let names: Vec<_> = receive.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "QueueUrl",
                "AttributeNames",
                "MessageSystemAttributeNames",
                "MessageAttributeNames",
                "MaxNumberOfMessages",
                "VisibilityTimeout",
                "WaitTimeSeconds",
                "ReceiveRequestAttemptId"
            ]
        );
        let system = model
            .resolve(receive.member("MessageSystemAttributeNames").unwrap())
            .unwrap();
        assert!(system.flattened);
        let list_member = model
            .resolve(system.shape.member.as_ref().unwrap())
            .unwrap();
        assert_eq!(
            list_member.location_name,
            Some("MessageSystemAttributeName")
        );

        let message = model.shape("Message").unwrap();
        let attributes = model
            .resolve(message.member("Attributes").unwrap())
            .unwrap();
        assert_eq!(
            (attributes.location_name, attributes.flattened),
            (Some("Attribute"), true)
        );

        let error = model
            .shape("QueueDoesNotExist")
            .unwrap()
            .error
            .clone()
            .unwrap();
        assert_eq!(
            error,
            ErrorTrait {
                code: "AWS.SimpleQueueService.NonExistentQueue".into(),
                http_status: 400,
                sender_fault: true
            }
        );
        // Exceptions added after the query era have no legacy code in any model.
        assert_eq!(model.shape("KmsThrottled").unwrap().error, None);
    }

    #[test]
    fn sts_answers_get_caller_identity_only() {
        let model = Model::get(ServiceKind::Sts);
        let op = model.operation("GetCallerIdentity").unwrap();
        assert_eq!(
            op.result_wrapper.as_deref(),
            Some("GetCallerIdentityResult")
        );
        assert_eq!(model.operations().count(), 1);
        assert_eq!(model.api_version, "2011-06-15");
    }
}
