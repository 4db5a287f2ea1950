"""Message operations on standard queues: SendMessage(+Batch), ReceiveMessage,
DeleteMessage(+Batch), ChangeMessageVisibility(+Batch), PurgeQueue.

MD5 digests are recomputed here per the AWS algorithm (sqs_helpers.md5_of_attributes)
rather than trusted from the server. Expected error codes are the legacy query
codes (see test_queues.py docstring).
"""

import threading
import time

import pytest

from sqs_helpers import (
    client_error,
    counts,
    md5_hex,
    md5_of_attributes,
    receive_all,
)

ONE_MIB = 1024 * 1024

ATTRS = {
    "str": {"DataType": "String", "StringValue": "héllo wörld ✓"},
    "num": {"DataType": "Number", "StringValue": "-12.50"},
    "bin": {"DataType": "Binary", "BinaryValue": bytes([0, 1, 2, 254, 255])},
    "String.custom": {"DataType": "String.foo", "StringValue": "custom type label"},
    "int": {"DataType": "Number.int", "StringValue": "42"},
    "gif": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a"},
}


def _receive_one(sqs, url, **kwargs):
    kwargs.setdefault("WaitTimeSeconds", 2)
    msgs = sqs.receive_message(QueueUrl=url, **kwargs).get("Messages", [])
    assert len(msgs) == 1, f"expected exactly one message, got {len(msgs)}: {msgs!r}"
    return msgs[0]


def _assert_attrs_equal(got: dict, want: dict):
    assert set(got) == set(want), f"attribute names: got {sorted(got)}, want {sorted(want)}"
    for k, w in want.items():
        g = got[k]
        assert g["DataType"] == w["DataType"], f"{k}: DataType {g['DataType']!r} != {w['DataType']!r}"
        if "StringValue" in w:
            assert g.get("StringValue") == w["StringValue"], f"{k}: {g!r}"
        else:
            assert g.get("BinaryValue") == w["BinaryValue"], f"{k}: {g!r}"


# ---------------------------------------------------------------------------
# SendMessage / MD5
# ---------------------------------------------------------------------------

def test_md5_helper_matches_aws_documented_example():
    # Sanity check of our own implementation: MD5 of body is plain MD5 of UTF-8.
    assert md5_hex("hello") == "5d41402abc4b2a76b9719d911017c592"
    # Single String attribute, bytes laid out by hand.
    import hashlib
    import struct
    raw = (struct.pack(">I", 1) + b"a" + struct.pack(">I", 6) + b"String" + b"\x01"
           + struct.pack(">I", 1) + b"b")
    assert md5_of_attributes({"a": {"DataType": "String", "StringValue": "b"}}) == hashlib.md5(raw).hexdigest()


def test_send_message_md5_of_body(sqs, queue):
    body = "Hello, sluice! ünïcødé 日本語 😀"
    resp = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert resp["MD5OfMessageBody"] == md5_hex(body)
    assert resp["MessageId"]
    assert "MD5OfMessageAttributes" not in resp
    m = _receive_one(sqs, queue)
    assert m["Body"] == body
    assert m["MD5OfBody"] == md5_hex(body)
    assert m["MessageId"] == resp["MessageId"]
    assert m["ReceiptHandle"]
    assert "MessageAttributes" not in m
    assert "MD5OfMessageAttributes" not in m


def test_send_message_with_attributes_md5(sqs, queue):
    body = "with attributes"
    resp = sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes=ATTRS)
    assert resp["MD5OfMessageBody"] == md5_hex(body)
    assert resp["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS), "SendMessage MD5OfMessageAttributes"
    m = _receive_one(sqs, queue, MessageAttributeNames=["All"])
    _assert_attrs_equal(m["MessageAttributes"], ATTRS)
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS), "ReceiveMessage MD5OfMessageAttributes"
    assert m["MD5OfBody"] == md5_hex(body)


def test_send_message_system_attribute_aws_trace_header(sqs, queue):
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    sys_attrs = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    resp = sqs.send_message(QueueUrl=queue, MessageBody="traced", MessageSystemAttributes=sys_attrs)
    assert resp.get("MD5OfMessageSystemAttributes") == md5_of_attributes(sys_attrs)
    m = _receive_one(sqs, queue, AttributeNames=["AWSTraceHeader"])
    assert m.get("Attributes", {}).get("AWSTraceHeader") == trace


@pytest.mark.parametrize("body", [
    "tab\tnewline\ncarriage\rreturn\r\nend",   # #x9 #xA #xD must survive (XML must escape \r)
    "<xml> & \"quotes\" 'apos' ]]> &amp;",
    "\ue000 private use \ufffd replacement",
    "\U0001F600 \U0010FFFF astral",
    " leading and trailing spaces ",
])
def test_body_round_trip_allowed_characters(sqs, queue, body):
    resp = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert resp["MD5OfMessageBody"] == md5_hex(body)
    m = _receive_one(sqs, queue)
    assert m["Body"] == body
    assert m["MD5OfBody"] == md5_hex(body)


@pytest.mark.parametrize("body", [
    "bad \x00 nul",
    "bad \x01 control",
    "bad \x1f unit separator",
    "bad \ufffe noncharacter",
    "bad \uffff noncharacter",
])
def test_send_message_invalid_characters(sqs, queue, body):
    # Allowed: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
    with client_error("InvalidMessageContents", shape="InvalidMessageContents", sqs=sqs):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert counts(sqs, queue) == (0, 0, 0)


def test_send_message_max_size_accepted(sqs, queue):
    body = "x" * ONE_MIB  # default MaximumMessageSize is 1,048,576 bytes
    resp = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert resp["MD5OfMessageBody"] == md5_hex(body)
    m = _receive_one(sqs, queue)
    assert len(m["Body"]) == ONE_MIB and m["MD5OfBody"] == md5_hex(body)


def test_send_message_too_large(sqs, queue):
    # AWS: InvalidParameterValue "One or more parameters are invalid. Reason:
    # Message must be shorter than 1048576 bytes." (JSON __type
    # com.amazon.coral.service#InvalidParameterValueException).
    with client_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x" * (ONE_MIB + 1))


def test_send_message_respects_queue_maximum_message_size(sqs, make_queue):
    url, _ = make_queue("small", attributes={"MaximumMessageSize": "1024"})
    sqs.send_message(QueueUrl=url, MessageBody="y" * 1024)
    with client_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="y" * 1025)


def test_send_message_too_many_attributes(sqs, queue):
    # Quotas: at most 10 message attributes per message. AWS answers
    # InvalidParameterValue ("Number of message attributes [11] exceeds the allowed maximum [10].").
    attrs = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(11)}
    with client_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=attrs)


@pytest.mark.parametrize("name,attr", [
    # "must contain a non-empty value of type 'String'"
    ("empty", {"DataType": "String", "StringValue": ""}),
    # "Can't cast the value of message (user) attribute 'num' to a number."
    ("num", {"DataType": "Number", "StringValue": "not-a-number"}),
    # Only String, Number and Binary (plus custom ".label" suffixes) are data types.
    ("weird", {"DataType": "Weird", "StringValue": "x"}),
    # Model: "The name must not start with AWS-reserved prefixes such as AWS. or Amazon."
    ("AWS.reserved", {"DataType": "String", "StringValue": "x"}),
    ("Amazon.reserved", {"DataType": "String", "StringValue": "x"}),
    # Model: "must not start or end with a period (.), and it should not have periods in succession (..)"
    (".leading", {"DataType": "String", "StringValue": "x"}),
    ("double..dot", {"DataType": "String", "StringValue": "x"}),
])
def test_send_message_invalid_message_attribute(sqs, queue, name, attr):
    # AWS answers malformed message attributes with InvalidParameterValue.
    with client_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes={name: attr})
    assert counts(sqs, queue) == (0, 0, 0)


def test_send_message_delay_seconds_out_of_range(sqs, queue):
    # AWS: "Value 901 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
    with client_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", DelaySeconds=901)


def test_send_message_delay_seconds(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=2)
    assert counts(sqs, queue) == (0, 0, 1), "a delayed message counts as ApproximateNumberOfMessagesDelayed"
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
    m = _receive_one(sqs, queue, WaitTimeSeconds=5)
    assert m["Body"] == "later"


def test_queue_delay_seconds_and_per_message_override(sqs, make_queue):
    url, _ = make_queue("delayq", attributes={"DelaySeconds": "60"})
    sqs.send_message(QueueUrl=url, MessageBody="queue-delayed")
    # Per-message DelaySeconds overrides the queue default (SendMessage docs:
    # "If you don't specify a value, the default value for the queue applies.").
    sqs.send_message(QueueUrl=url, MessageBody="immediate", DelaySeconds=0)
    m = _receive_one(sqs, url, WaitTimeSeconds=1)
    assert m["Body"] == "immediate"
    assert counts(sqs, url) == (0, 1, 1)


# ---------------------------------------------------------------------------
# SendMessageBatch
# ---------------------------------------------------------------------------

def test_send_message_batch_success(sqs, queue):
    entries = [
        {"Id": "plain", "MessageBody": "one"},
        {"Id": "with-attrs", "MessageBody": "two", "MessageAttributes": ATTRS},
        {"Id": "delayed_3", "MessageBody": "three", "DelaySeconds": 60},
    ]
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert resp.get("Failed", []) == []
    ok = {e["Id"]: e for e in resp["Successful"]}
    assert set(ok) == {"plain", "with-attrs", "delayed_3"}
    for e in entries:
        assert ok[e["Id"]]["MD5OfMessageBody"] == md5_hex(e["MessageBody"])
        assert ok[e["Id"]]["MessageId"]
    assert ok["with-attrs"]["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    assert "MD5OfMessageAttributes" not in ok["plain"]
    assert counts(sqs, queue) == (2, 0, 1)
    got = receive_all(sqs, queue, 2, MessageAttributeNames=["All"])
    bodies = {m["Body"]: m for m in got}
    assert set(bodies) == {"one", "two"}
    _assert_attrs_equal(bodies["two"]["MessageAttributes"], ATTRS)


def test_send_message_batch_partial_failure(sqs, queue):
    # Batch results are reported per entry with HTTP 200 (model, SendMessageBatch).
    # A body with a forbidden character fails only its own entry.
    # (AWS-uncertain: the per-entry code for bad characters is taken to be
    # InvalidMessageContents, the same code SendMessage uses.)
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "good1", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "nul \x00 inside"},
        {"Id": "good2", "MessageBody": "also fine"},
    ])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(e["Id"] for e in resp.get("Successful", [])) == ["good1", "good2"]
    failed = resp.get("Failed", [])
    assert len(failed) == 1, failed
    f = failed[0]
    assert f["Id"] == "bad"
    assert f["SenderFault"] is True
    assert f["Code"] == "InvalidMessageContents"
    assert counts(sqs, queue)[0] == 2


def test_send_message_batch_total_too_long(sqs, queue):
    # Model: the whole batch payload is limited to 1 MiB -> BatchRequestTooLong.
    big = "z" * (600 * 1024)
    with client_error("AWS.SimpleQueueService.BatchRequestTooLong", shape="BatchRequestTooLong", sqs=sqs):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": "a", "MessageBody": big}, {"Id": "b", "MessageBody": big}])
    assert counts(sqs, queue) == (0, 0, 0)


# Batch-level validation errors, shared by the three *Batch operations.
def _batch_call(sqs, op, url, entries):
    if op == "SendMessageBatch":
        return sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": e, "MessageBody": "b"} for e in entries])
    if op == "DeleteMessageBatch":
        return sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": e, "ReceiptHandle": f"rh-{i}"} for i, e in enumerate(entries)])
    return sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": e, "ReceiptHandle": f"rh-{i}", "VisibilityTimeout": 0}
                               for i, e in enumerate(entries)])


BATCH_OPS = ["SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"]


@pytest.mark.parametrize("op", BATCH_OPS)
def test_batch_empty(sqs, queue, op):
    with client_error("AWS.SimpleQueueService.EmptyBatchRequest", shape="EmptyBatchRequest", sqs=sqs):
        _batch_call(sqs, op, queue, [])


@pytest.mark.parametrize("op", BATCH_OPS)
def test_batch_too_many_entries(sqs, queue, op):
    with client_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                      shape="TooManyEntriesInBatchRequest", sqs=sqs):
        _batch_call(sqs, op, queue, [f"e{i}" for i in range(11)])


@pytest.mark.parametrize("op", BATCH_OPS)
def test_batch_ids_not_distinct(sqs, queue, op):
    with client_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", shape="BatchEntryIdsNotDistinct", sqs=sqs):
        _batch_call(sqs, op, queue, ["same", "same"])


@pytest.mark.parametrize("op", BATCH_OPS)
@pytest.mark.parametrize("bad_id", ["has space", "dot.id", "x" * 81])
def test_batch_invalid_entry_id(sqs, queue, op, bad_id):
    # Ids: up to 80 characters of alphanumerics, hyphens and underscores.
    with client_error("AWS.SimpleQueueService.InvalidBatchEntryId", shape="InvalidBatchEntryId", sqs=sqs):
        _batch_call(sqs, op, queue, ["ok", bad_id])


def test_batch_ten_entries_and_80_char_id_accepted(sqs, queue):
    ids = [f"id{i}" for i in range(9)] + ["A" * 40 + "-" + "_" * 39]
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": i, "MessageBody": i} for i in ids])
    assert sorted(e["Id"] for e in resp["Successful"]) == sorted(ids)
    assert resp.get("Failed", []) == []


# ---------------------------------------------------------------------------
# ReceiveMessage
# ---------------------------------------------------------------------------

def test_receive_empty_queue(sqs, queue):
    resp = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    assert resp.get("Messages", []) == []


def test_receive_default_max_is_one(sqs, queue):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    assert len(msgs) == 1, "MaxNumberOfMessages defaults to 1"


def test_receive_max_number_of_messages(sqs, queue):
    sent = set()
    for chunk in range(2):
        resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": f"e{i}", "MessageBody": f"c{chunk}-m{i}"} for i in range(6)])
        sent |= {e["MessageId"] for e in resp["Successful"]}
    got = receive_all(sqs, queue, 12, MaxNumberOfMessages=10)  # asserts <= 10 per call
    assert {m["MessageId"] for m in got} == sent, "every message delivered exactly once within the visibility timeout"
    assert counts(sqs, queue) == (0, 12, 0)


@pytest.mark.parametrize("n", [0, 11, -1])
def test_receive_max_number_of_messages_out_of_range(sqs, queue, n):
    # AWS: "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
    with client_error("InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=n)


def test_receive_wait_time_out_of_range(sqs, queue):
    # AWS: "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
    with client_error("InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=21)


def test_receive_visibility_timeout(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="vt")
    first = _receive_one(sqs, queue, VisibilityTimeout=1, AttributeNames=["ApproximateReceiveCount"])
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert counts(sqs, queue)[:2] == (0, 1)
    # Hidden for the 1 s visibility timeout, then delivered again (long poll picks it up).
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
    again = _receive_one(sqs, queue, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"], "each receive yields a new receipt handle"


def test_receive_count_increments_with_zero_visibility(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="again and again")
    for expected in ("1", "2", "3"):
        m = _receive_one(sqs, queue, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
        assert m["Attributes"]["ApproximateReceiveCount"] == expected
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    assert counts(sqs, queue) == (0, 0, 0)


def test_queue_visibility_timeout_attribute_applies(sqs, make_queue):
    url, _ = make_queue("qvt", attributes={"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=url, MessageBody="x")
    first = _receive_one(sqs, url)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    again = _receive_one(sqs, url, WaitTimeSeconds=5)
    assert again["MessageId"] == first["MessageId"]


def test_long_poll_returns_when_message_arrives(sqs, queue):
    def later():
        time.sleep(0.5)
        sqs.send_message(QueueUrl=queue, MessageBody="arrived")

    t = threading.Thread(target=later)
    t.start()
    try:
        # WaitTimeSeconds well above the send delay: the call must return the
        # message (a server that ignores long polling returns empty at once).
        resp = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)
    finally:
        t.join()
    bodies = [m["Body"] for m in resp.get("Messages", [])]
    assert bodies == ["arrived"]


def test_queue_receive_wait_time_attribute_enables_long_poll(sqs, make_queue):
    url, _ = make_queue("lp", attributes={"ReceiveMessageWaitTimeSeconds": "10"})

    def later():
        time.sleep(0.5)
        sqs.send_message(QueueUrl=url, MessageBody="arrived")

    t = threading.Thread(target=later)
    t.start()
    try:
        resp = sqs.receive_message(QueueUrl=url)  # no WaitTimeSeconds: the queue default applies
    finally:
        t.join()
    assert [m["Body"] for m in resp.get("Messages", [])] == ["arrived"]


def test_long_poll_without_messages_returns_empty(sqs, queue):
    resp = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    assert resp.get("Messages", []) == []


def test_receive_system_attributes_all(sqs, queue):
    before_ms = int(time.time() * 1000)
    sqs.send_message(QueueUrl=queue, MessageBody="sys")
    m = _receive_one(sqs, queue, AttributeNames=["All"])
    a = m["Attributes"]
    for k in ("SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"):
        assert k in a, f"{k} missing from {a!r}"
    assert a["ApproximateReceiveCount"] == "1"
    sent = int(a["SentTimestamp"])  # epoch milliseconds
    assert before_ms - 120_000 <= sent <= before_ms + 120_000, f"SentTimestamp {sent} is not epoch ms near {before_ms}"
    assert int(a["ApproximateFirstReceiveTimestamp"]) >= sent
    # FIFO-only attributes are absent on a standard queue.
    for k in ("SequenceNumber", "MessageDeduplicationId"):
        assert k not in a


def test_receive_system_attributes_specific(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="sys")
    m = _receive_one(sqs, queue, AttributeNames=["SentTimestamp", "ApproximateReceiveCount"])
    assert set(m["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}


def test_receive_without_attribute_names_has_no_attributes(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="plain", MessageAttributes=ATTRS)
    m = _receive_one(sqs, queue)
    assert m.get("Attributes", {}) == {}
    assert m.get("MessageAttributes", {}) == {}


# Semantics recorded against real AWS (LocalStack's AWS-validated snapshot
# test_receive_message_message_attribute_names_filters): "All", "*" and ".*"
# return everything; "<prefix>.*" matches names starting with <prefix> (the
# ".*" is stripped, so "Hel.*" matched both "Hello" and "Help.Me"); unknown or
# illegal names just return nothing; MD5OfMessageAttributes covers only the
# attributes actually returned, and is absent when none are.
@pytest.mark.parametrize("names,expected", [
    (["All"], {"foo.a", "foo.b", "bar", "foobar"}),
    (["*"], {"foo.a", "foo.b", "bar", "foobar"}),
    ([".*"], {"foo.a", "foo.b", "bar", "foobar"}),
    (["foo.*"], {"foo.a", "foo.b", "foobar"}),
    (["fo.*"], {"foo.a", "foo.b", "foobar"}),
    (["bar"], {"bar"}),
    (["bar", "foo.b"], {"bar", "foo.b"}),
    (["missing", "bar"], {"bar"}),
    (["missing"], set()),
    (["AWS."], set()),
], ids=["All", "star", "dot-star", "foo.-prefix", "fo.-prefix", "bar", "bar+foo.b", "missing+bar",
        "missing", "AWS."])
def test_receive_message_attribute_name_filters(sqs, queue, names, expected):
    attrs = {n: {"DataType": "String", "StringValue": n.upper()} for n in ("foo.a", "foo.b", "bar", "foobar")}
    sqs.send_message(QueueUrl=queue, MessageBody="filters", MessageAttributes=attrs)
    m = _receive_one(sqs, queue, MessageAttributeNames=names)
    got = m.get("MessageAttributes", {})
    assert set(got) == expected
    for n in expected:
        assert got[n]["StringValue"] == n.upper()
    if expected:
        assert m.get("MD5OfMessageAttributes") == md5_of_attributes({n: attrs[n] for n in expected}), (
            "MD5OfMessageAttributes must cover exactly the returned attributes")
    else:
        assert "MD5OfMessageAttributes" not in m


# ---------------------------------------------------------------------------
# DeleteMessage / DeleteMessageBatch
# ---------------------------------------------------------------------------

def test_delete_message(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="bye")
    m = _receive_one(sqs, queue, VisibilityTimeout=0)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    assert counts(sqs, queue) == (0, 0, 0)
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []) == []


def test_delete_message_invalid_receipt_handle(sqs, queue):
    # AWS: 'The input receipt handle "not-a-receipt-handle" is not a valid receipt handle.'
    with client_error("ReceiptHandleIsInvalid", shape="ReceiptHandleIsInvalid", sqs=sqs):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-receipt-handle")


def test_delete_message_batch(sqs, queue):
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": f"e{i}", "MessageBody": f"b{i}"} for i in range(3)])
    msgs = receive_all(sqs, queue, 3)
    assert len(msgs) == 3
    entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
    entries.append({"Id": "junk", "ReceiptHandle": "garbage-handle"})
    resp = sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(e["Id"] for e in resp.get("Successful", [])) == ["d0", "d1", "d2"]
    failed = resp.get("Failed", [])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in failed] == [("junk", "ReceiptHandleIsInvalid", True)]
    assert counts(sqs, queue) == (0, 0, 0)


# ---------------------------------------------------------------------------
# ChangeMessageVisibility / ChangeMessageVisibilityBatch
# ---------------------------------------------------------------------------

def test_change_visibility_zero_makes_message_visible(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="cmv")
    m = _receive_one(sqs, queue, VisibilityTimeout=600)
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = _receive_one(sqs, queue, WaitTimeSeconds=1)
    assert again["MessageId"] == m["MessageId"]


def test_change_visibility_extends(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="extend")
    m = _receive_one(sqs, queue, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=600)
    # Would have reappeared after 1 s without the extension.
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", []) == []
    assert counts(sqs, queue)[:2] == (0, 1)


def test_change_visibility_above_max(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="cmv")
    m = _receive_one(sqs, queue)
    # Model: "Values range: 0 to 43200. Maximum: 12 hours." AWS answers
    # InvalidParameterValue ("Value 43201 for parameter VisibilityTimeout is invalid. Reason: ...").
    with client_error("InvalidParameterValue"):
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43201)
    # Not 43200 exactly: "If you attempt to set the VisibilityTimeout to a value greater
    # than the maximum time left, Amazon SQS returns an error" (12 h counted from the receive).
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43000)


def test_change_visibility_invalid_receipt_handle(sqs, queue):
    with client_error("ReceiptHandleIsInvalid", shape="ReceiptHandleIsInvalid", sqs=sqs):
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="not-a-receipt-handle", VisibilityTimeout=0)


def test_change_visibility_batch(sqs, queue):
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": f"e{i}", "MessageBody": f"b{i}"} for i in range(2)])
    msgs = receive_all(sqs, queue, 2, VisibilityTimeout=600)
    assert len(msgs) == 2
    resp = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
        {"Id": "v0", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "v1", "ReceiptHandle": msgs[1]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "junk", "ReceiptHandle": "garbage-handle", "VisibilityTimeout": 0},
    ])
    assert sorted(e["Id"] for e in resp.get("Successful", [])) == ["v0", "v1"]
    failed = resp.get("Failed", [])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in failed] == [("junk", "ReceiptHandleIsInvalid", True)]
    again = receive_all(sqs, queue, 2)
    assert {m["MessageId"] for m in again} == {m["MessageId"] for m in msgs}


# ---------------------------------------------------------------------------
# PurgeQueue
# ---------------------------------------------------------------------------

def test_purge_queue(sqs, queue):
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": f"e{i}", "MessageBody": f"b{i}"} for i in range(5)])
    sqs.send_message(QueueUrl=queue, MessageBody="delayed", DelaySeconds=60)
    receive_all(sqs, queue, 2, max_calls=1)  # some in flight too: purge removes in-flight messages as well
    sqs.purge_queue(QueueUrl=queue)
    # AWS: "The message deletion process takes up to 60 seconds"; an emulator is expected to be immediate.
    assert counts(sqs, queue) == (0, 0, 0)
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []) == []
    # The queue stays usable.
    sqs.send_message(QueueUrl=queue, MessageBody="after purge")
    assert _receive_one(sqs, queue)["Body"] == "after purge"


def test_purge_queue_twice_within_60s(sqs, queue):
    sqs.purge_queue(QueueUrl=queue)
    # Query model: PurgeQueueInProgress -> code AWS.SimpleQueueService.PurgeQueueInProgress, HTTP 403.
    with client_error("AWS.SimpleQueueService.PurgeQueueInProgress", shape="PurgeQueueInProgress",
                      status=403, sqs=sqs):
        sqs.purge_queue(QueueUrl=queue)
