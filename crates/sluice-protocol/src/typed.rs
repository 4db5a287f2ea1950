//! Typed decoding of the hottest JSON requests: SQS `SendMessageBatch`
//! without message attributes, and `DeleteMessageBatch`, parsed straight
//! into their shapes.
//!
//! Why: the general path parses a body into a `serde_json::Value` (an
//! `IndexMap` per object, SipHash per member, a `String` per member name),
//! then checks it against the model. Under `sqs-send` that was 9 – 13 % of
//! the tokio workers' samples. Here the body is parsed once into structs.
//!
//! The rule that keeps it exact: this path takes a body only if the general
//! path would accept it unchanged and read the same values from it. Anything
//! else fails to parse here (unknown or repeated members, message
//! attributes, a number that is not an `i32`, a `null` list element, a
//! string where a structure belongs, ...) and goes down the general path,
//! which gives the model-driven error or the dropped member exactly as
//! before. `null` members read as absent on both paths. The unit tests
//! check the rule on generated bodies: every body taken here decodes on the
//! general path to the same input (`TypedInput::to_value`).

use serde::Deserialize;
use serde_json::{Map, Value};

/// A request decoded into its operation's shape (see the module header).
#[derive(Debug, Clone, PartialEq)]
pub enum TypedInput {
    /// SQS `SendMessageBatch` whose entries carry no message attributes.
    SqsSendMessageBatch(SendMessageBatchInput),
    /// SQS `DeleteMessageBatch`.
    SqsDeleteMessageBatch(DeleteMessageBatchInput),
}

/// `SendMessageBatchRequest`, without message attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendMessageBatchInput {
    /// `QueueUrl`.
    pub queue_url: Option<String>,
    /// `Entries`.
    pub entries: Option<Vec<SendMessageBatchEntry>>,
}

/// `SendMessageBatchRequestEntry`, without `MessageAttributes` and
/// `MessageSystemAttributes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendMessageBatchEntry {
    /// `Id`.
    pub id: Option<String>,
    /// `MessageBody`.
    pub message_body: Option<String>,
    /// `DelaySeconds` (an `Integer` shape: the general path takes a JSON
    /// integer in `i32`'s range, and so does this one).
    pub delay_seconds: Option<i32>,
    /// `MessageDeduplicationId`.
    pub message_deduplication_id: Option<String>,
    /// `MessageGroupId`.
    pub message_group_id: Option<String>,
}

/// `DeleteMessageBatchRequest`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteMessageBatchInput {
    /// `QueueUrl`.
    pub queue_url: Option<String>,
    /// `Entries`.
    pub entries: Option<Vec<DeleteMessageBatchEntry>>,
}

/// `DeleteMessageBatchRequestEntry`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteMessageBatchEntry {
    /// `Id`.
    pub id: Option<String>,
    /// `ReceiptHandle`.
    pub receipt_handle: Option<String>,
}

/// The members of a batch request this path takes (`SendMessageBatch` and
/// `DeleteMessageBatch` have the same two); any other name fails the
/// parse.
#[derive(Deserialize, Clone, Copy)]
#[serde(field_identifier)]
enum BatchMember {
    QueueUrl,
    Entries,
}

/// The members of `SendMessageBatchRequestEntry` this path takes.
#[derive(Deserialize, Clone, Copy)]
#[serde(field_identifier)]
enum EntryMember {
    Id,
    MessageBody,
    DelaySeconds,
    MessageDeduplicationId,
    MessageGroupId,
}

/// The members of `DeleteMessageBatchRequestEntry`.
#[derive(Deserialize, Clone, Copy)]
#[serde(field_identifier)]
enum DeleteEntryMember {
    Id,
    ReceiptHandle,
}

/// Deserializes a structure from a JSON object only: serde's derived
/// structures also take arrays (members by position), which the general
/// path refuses. A repeated member fails too (the general path keeps the
/// last one).
macro_rules! from_object_only {
    ($ty:ident, $members:ident, $what:literal, { $($member:ident => $field:ident),* $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        let mut out = $ty::default();
                        let mut seen = 0u32;
                        while let Some(member) = map.next_key::<$members>()? {
                            let bit = 1u32 << (member as u32);
                            if seen & bit != 0 {
                                return Err(serde::de::Error::custom("repeated member"));
                            }
                            seen |= bit;
                            match member {
                                $($members::$member => out.$field = map.next_value()?,)*
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

from_object_only!(SendMessageBatchInput, BatchMember, "a SendMessageBatchRequest object", {
    QueueUrl => queue_url,
    Entries => entries,
});

from_object_only!(DeleteMessageBatchInput, BatchMember, "a DeleteMessageBatchRequest object", {
    QueueUrl => queue_url,
    Entries => entries,
});

from_object_only!(DeleteMessageBatchEntry, DeleteEntryMember, "a DeleteMessageBatchRequestEntry object", {
    Id => id,
    ReceiptHandle => receipt_handle,
});

from_object_only!(SendMessageBatchEntry, EntryMember, "a SendMessageBatchRequestEntry object", {
    Id => id,
    MessageBody => message_body,
    DelaySeconds => delay_seconds,
    MessageDeduplicationId => message_deduplication_id,
    MessageGroupId => message_group_id,
});

/// The typed input of an SQS JSON request, if `operation` has a typed path
/// and `body` is one it takes; `None` sends the request down the general
/// path.
pub(crate) fn decode_sqs(operation: &str, body: &[u8]) -> Option<TypedInput> {
    match operation {
        "SendMessageBatch" => serde_json::from_slice(body).ok().map(TypedInput::SqsSendMessageBatch),
        "DeleteMessageBatch" => serde_json::from_slice(body).ok().map(TypedInput::SqsDeleteMessageBatch),
        _ => None,
    }
}

impl TypedInput {
    /// The input the general path decodes from the same body: what the
    /// tests compare, and what a service without a typed path can read.
    pub fn to_value(&self) -> Value {
        match self {
            TypedInput::SqsSendMessageBatch(i) => {
                let mut m = Map::new();
                put(&mut m, "QueueUrl", i.queue_url.clone().map(Value::String));
                let entries = i.entries.as_ref().map(|e| Value::Array(e.iter().map(SendMessageBatchEntry::to_value).collect()));
                put(&mut m, "Entries", entries);
                Value::Object(m)
            }
            TypedInput::SqsDeleteMessageBatch(i) => {
                let mut m = Map::new();
                put(&mut m, "QueueUrl", i.queue_url.clone().map(Value::String));
                let entries = i.entries.as_ref().map(|e| {
                    Value::Array(
                        e.iter()
                            .map(|e| {
                                let mut m = Map::new();
                                put(&mut m, "Id", e.id.clone().map(Value::String));
                                put(&mut m, "ReceiptHandle", e.receipt_handle.clone().map(Value::String));
                                Value::Object(m)
                            })
                            .collect(),
                    )
                });
                put(&mut m, "Entries", entries);
                Value::Object(m)
            }
        }
    }
}

impl SendMessageBatchEntry {
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "Id", self.id.clone().map(Value::String));
        put(&mut m, "MessageBody", self.message_body.clone().map(Value::String));
        put(&mut m, "DelaySeconds", self.delay_seconds.map(Value::from));
        put(&mut m, "MessageDeduplicationId", self.message_deduplication_id.clone().map(Value::String));
        put(&mut m, "MessageGroupId", self.message_group_id.clone().map(Value::String));
        Value::Object(m)
    }
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.to_owned(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Detected, Model, ServiceKind, WireProtocol};

    /// A small deterministic generator (xorshift64*), so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    const STRINGS: &[&str] = &[r#""plain""#, r#""""#, r#""esc \" \\ \n \u00e9 \ud83d\ude00""#, r#""héllo wörld""#, "null"];
    const NOT_STRINGS: &[&str] = &["5", "true", "[]", "{}", "1.5"];
    const INTEGERS: &[&str] = &["0", "5", "-1", "900", "2147483647", "-2147483648", "null"];
    const NOT_INTEGERS: &[&str] = &["2147483648", "-2147483649", "5.0", "1e3", "-0", r#""5""#, "true", "[]", "{}"];

    fn members(rng: &mut Rng, choices: &[(&str, &[&str], &[&str])], unknown: &[&str]) -> String {
        let mut parts = Vec::new();
        for (name, good, bad) in choices {
            if rng.chance(60) {
                let value = if rng.chance(90) { rng.pick(good) } else { rng.pick(bad) };
                parts.push(format!("\"{name}\": {value}"));
                if rng.chance(3) {
                    parts.push(format!("\"{name}\": {}", rng.pick(good)));
                }
            }
        }
        for u in unknown {
            if rng.chance(4) {
                parts.push(format!("\"{u}\": {}", rng.pick(&["1", "null", r#"{"DataType":"String","StringValue":"v"}"#, "{}"])));
            }
        }
        // Members in any order.
        for i in (1..parts.len()).rev() {
            parts.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        format!("{{ {} }}", parts.join(", "))
    }

    fn entry(rng: &mut Rng, operation: &str) -> String {
        if rng.chance(2) {
            return rng.pick(&["null", "\"x\"", "[]", "7"]).to_owned();
        }
        if operation == "DeleteMessageBatch" {
            return members(rng, &[("Id", STRINGS, NOT_STRINGS), ("ReceiptHandle", STRINGS, NOT_STRINGS)], &["MessageBody", "Bogus", "receiptHandle"]);
        }
        members(
            rng,
            &[
                ("Id", STRINGS, NOT_STRINGS),
                ("MessageBody", STRINGS, NOT_STRINGS),
                ("DelaySeconds", INTEGERS, NOT_INTEGERS),
                ("MessageGroupId", STRINGS, NOT_STRINGS),
                ("MessageDeduplicationId", STRINGS, NOT_STRINGS),
            ],
            &["MessageAttributes", "MessageSystemAttributes", "Bogus", "messageBody"],
        )
    }

    fn body(rng: &mut Rng, operation: &str) -> String {
        if rng.chance(2) {
            return rng.pick(&["", "[]", "null", "{", "{}x", "{} ", "  {\"QueueUrl\": \"q\"}\n"]).to_owned();
        }
        let n = (rng.next() % 12) as usize;
        let entries: Vec<String> = (0..n).map(|_| entry(rng, operation)).collect();
        let list = format!("[{}]", entries.join(","));
        let mut top = members(
            rng,
            &[("QueueUrl", STRINGS, NOT_STRINGS), ("Entries", &["[]", "null"], &["\"x\"", "{}", "3"])],
            &["Bogus", "queueUrl"],
        );
        if rng.chance(85) {
            top = if top == "{  }" { format!("{{ \"Entries\": {list} }}") } else { top.replacen("{ ", &format!("{{ \"Entries\": {list}, "), 1) };
        }
        top
    }

    /// Every body a typed path takes decodes on the general path to the
    /// same input; and the typed paths do take many well-formed bodies.
    #[test]
    fn given_generated_bodies_the_typed_paths_should_take_only_what_the_general_path_reads_the_same() {
        let model = Model::get(ServiceKind::Sqs);
        let detected = Detected { service: Some(ServiceKind::Sqs), protocol: Some(WireProtocol::AwsJson10) };
        for operation in ["SendMessageBatch", "DeleteMessageBatch"] {
            let op = model.operation(operation).expect("in the model");
            let mut rng = Rng(0x5EED_1234_ABCD_0001);
            let (mut taken, mut general_only, mut refused) = (0, 0, 0);
            for case in 0..20_000 {
                let body = body(&mut rng, operation);
                let general = crate::json::decode_input(model, op, body.as_bytes(), detected);
                match (decode_sqs(operation, body.as_bytes()), general) {
                    (Some(typed), Ok(value)) => {
                        assert_eq!(typed.to_value(), value, "{operation} case {case}: {body}");
                        taken += 1;
                    }
                    (Some(typed), Err(e)) => panic!("{operation} case {case}: typed {typed:?} but the general path refuses: {e:?}\n{body}"),
                    (None, Ok(_)) => general_only += 1,
                    (None, Err(_)) => refused += 1,
                }
            }
            assert!(
                taken > 2_000 && general_only > 1_000 && refused > 1_000,
                "{operation}: taken {taken}, general only {general_only}, refused {refused}"
            );
        }
        assert_eq!(decode_sqs("SendMessage", br#"{"QueueUrl": "q", "MessageBody": "b"}"#), None, "SendMessage has no typed path");
    }
}
