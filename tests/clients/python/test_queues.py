"""Queue-level operations: CreateQueue, GetQueueUrl, ListQueues, Get/SetQueueAttributes,
DeleteQueue, tags, permissions.

Expected behaviour is taken from the botocore SQS service model documentation
(botocore/data/sqs/2012-11-05/service-2.json) and the AWS SQS docs; error codes
are the legacy query codes (query model `error.code`, or the shape name where
the shape has no error trait), which the JSON protocol carries in the
x-amzn-query-error header.
"""

import json
import time

import pytest

from sqs_helpers import (
    ACCOUNT_ID,
    client_error,
    get_attrs,
    name_of,
    queue_arn,
    queue_url,
    unique_name,
)

DEFAULTS = {
    "VisibilityTimeout": "30",
    # Model (CreateQueue docs): "Default: 1,048,576 bytes (1 MiB)". Older docs say 262,144.
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
}


# ---------------------------------------------------------------------------
# CreateQueue
# ---------------------------------------------------------------------------

def test_create_queue_returns_url(sqs, endpoint):
    name = unique_name("create")
    resp = sqs.create_queue(QueueName=name)
    try:
        assert resp["QueueUrl"] == queue_url(endpoint, name)
    finally:
        sqs.delete_queue(QueueUrl=resp["QueueUrl"])


def test_create_queue_default_attributes(sqs, queue):
    before = int(time.time())
    attrs = get_attrs(sqs, queue, "All")
    for k, v in DEFAULTS.items():
        assert attrs.get(k) == v, f"default {k}: expected {v!r}, got {attrs.get(k)!r}"
    assert attrs["QueueArn"] == queue_arn(name_of(queue))
    for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed"):
        assert attrs.get(k) == "0", f"{k}: {attrs.get(k)!r}"
    # CreatedTimestamp / LastModifiedTimestamp are epoch *seconds*.
    created = int(attrs["CreatedTimestamp"])
    modified = int(attrs["LastModifiedTimestamp"])
    assert before - 120 <= created <= before + 120, f"CreatedTimestamp {created} not epoch seconds near {before}"
    assert modified >= created
    # Standard queue: FifoQueue/ContentBasedDeduplication are not reported, no
    # RedrivePolicy/Policy unless set.
    for absent in ("FifoQueue", "ContentBasedDeduplication", "RedrivePolicy", "Policy"):
        assert absent not in attrs, f"{absent} unexpectedly present: {attrs.get(absent)!r}"


def test_create_queue_attributes_round_trip(sqs, make_queue):
    wanted = {
        "VisibilityTimeout": "45",
        "MaximumMessageSize": "2048",
        "MessageRetentionPeriod": "3600",
        "DelaySeconds": "5",
        "ReceiveMessageWaitTimeSeconds": "3",
    }
    url, _ = make_queue("attrs", attributes=wanted)
    attrs = get_attrs(sqs, url, "All")
    for k, v in wanted.items():
        assert attrs.get(k) == v, f"{k}: expected {v!r}, got {attrs.get(k)!r}"


def test_create_queue_idempotent_with_same_attributes(sqs, make_queue):
    url, name = make_queue("idem", attributes={"VisibilityTimeout": "60"})
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})
    assert again["QueueUrl"] == url
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})
    assert again["QueueUrl"] == url


def test_create_queue_with_different_attributes_fails(sqs, make_queue):
    url, name = make_queue("exists", attributes={"VisibilityTimeout": "60"})
    # Query model: QueueNameExists has error code "QueueAlreadyExists".
    with client_error("QueueAlreadyExists", shape="QueueNameExists", sqs=sqs):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "61"})
    assert get_attrs(sqs, url, "VisibilityTimeout")["VisibilityTimeout"] == "60"


def test_create_queue_name_of_80_chars_is_valid(sqs):
    name = ("n80-" + "a" * 80)[:80]
    assert len(name) == 80
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        assert name_of(url) == name
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_create_queue_name_with_all_allowed_chars(sqs):
    name = unique_name("Az09_-")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)


@pytest.mark.parametrize("bad", [
    "a" * 81,               # > 80 chars
    "has space",
    "bad!name",
    "dot.name",             # '.' only allowed as the '.fifo' suffix of FIFO queues
    "slash/name",
    "unicodé",
])
def test_create_queue_invalid_name(sqs, bad):
    # AWS: "Can only include alphanumeric characters, hyphens, or underscores.
    # 1 to 80 in length" with code InvalidParameterValue (not a modeled shape;
    # JSON __type com.amazon.coral.service#InvalidParameterValueException).
    with client_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=bad)


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "43201"),
    ("VisibilityTimeout", "-1"),
    ("VisibilityTimeout", "abc"),
    ("DelaySeconds", "901"),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", "1048577"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
])
def test_create_queue_invalid_attribute_value(sqs, attr, value):
    name = unique_name("badval")
    with client_error("InvalidAttributeValue", shape="InvalidAttributeValue", sqs=sqs):
        sqs.create_queue(QueueName=name, Attributes={attr: value})
    with client_error("AWS.SimpleQueueService.NonExistentQueue", shape="QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=name)


def test_create_queue_unknown_attribute_name(sqs):
    name = unique_name("badattr")
    with client_error("InvalidAttributeName", shape="InvalidAttributeName", sqs=sqs):
        sqs.create_queue(QueueName=name, Attributes={"NoSuchAttribute": "1"})


def test_create_queue_with_tags(sqs, make_queue):
    url, _ = make_queue("tagged", tags={"env": "test", "team": "sluice"})
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags") == {"env": "test", "team": "sluice"}


def test_create_queue_after_delete_within_60s_fails(sqs):
    # DeleteQueue docs: "After you delete a queue, you must wait at least 60
    # seconds before creating a queue with the same name." -> QueueDeletedRecently.
    name = unique_name("recent")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with client_error("AWS.SimpleQueueService.QueueDeletedRecently", shape="QueueDeletedRecently", sqs=sqs):
        sqs.create_queue(QueueName=name)


# ---------------------------------------------------------------------------
# GetQueueUrl
# ---------------------------------------------------------------------------

def test_get_queue_url(sqs, make_queue, endpoint):
    url, name = make_queue("geturl")
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url == queue_url(endpoint, name)
    assert sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT_ID)["QueueUrl"] == url


def test_get_queue_url_nonexistent(sqs):
    # Query model: QueueDoesNotExist -> code AWS.SimpleQueueService.NonExistentQueue.
    # JSON: botocore maps x-amzn-query-error "AWS.SimpleQueueService.NonExistentQueue;Sender"
    # into Error.Code and keeps __type "QueueDoesNotExist" in Error.QueryErrorCode.
    with client_error("AWS.SimpleQueueService.NonExistentQueue", shape="QueueDoesNotExist", sqs=sqs):
        sqs.get_queue_url(QueueName=unique_name("missing"))


def test_get_queue_url_is_case_sensitive(sqs, make_queue):
    _, name = make_queue("CaseQ")
    with client_error("AWS.SimpleQueueService.NonExistentQueue", shape="QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=name.lower())


# ---------------------------------------------------------------------------
# ListQueues
# ---------------------------------------------------------------------------

def test_list_queues_prefix(sqs, make_queue):
    prefix = unique_name("lst")
    urls = {make_queue(prefix)[0] for _ in range(3)}
    other, _ = make_queue("other")
    got = sqs.list_queues(QueueNamePrefix=prefix)
    assert set(got.get("QueueUrls", [])) == urls
    assert "NextToken" not in got  # no MaxResults -> never a NextToken
    assert other in sqs.list_queues().get("QueueUrls", [])


def test_list_queues_prefix_without_match(sqs):
    got = sqs.list_queues(QueueNamePrefix=unique_name("nomatch"))
    assert got.get("QueueUrls", []) == []


def test_list_queues_pagination(sqs, make_queue):
    prefix = unique_name("page")
    urls = {make_queue(prefix)[0] for _ in range(5)}
    seen = []
    pages = 0
    kwargs = {"QueueNamePrefix": prefix, "MaxResults": 2}
    while True:
        resp = sqs.list_queues(**kwargs)
        pages += 1
        page = resp.get("QueueUrls", [])
        assert len(page) <= 2, f"page of {len(page)} > MaxResults=2"
        seen.extend(page)
        token = resp.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
        assert pages < 10, "pagination does not terminate"
    assert sorted(seen) == sorted(urls), "pages must cover every queue exactly once"
    assert pages == 3


def test_list_queues_paginator(sqs, make_queue):
    prefix = unique_name("pgn")
    urls = {make_queue(prefix)[0] for _ in range(3)}
    got = []
    for page in sqs.get_paginator("list_queues").paginate(
            QueueNamePrefix=prefix, PaginationConfig={"PageSize": 1}):
        got.extend(page.get("QueueUrls", []))
    assert sorted(got) == sorted(urls)


# ---------------------------------------------------------------------------
# GetQueueAttributes
# ---------------------------------------------------------------------------

def test_get_queue_attributes_individual_names(sqs, queue):
    attrs = get_attrs(sqs, queue, "VisibilityTimeout", "QueueArn")
    assert set(attrs) == {"VisibilityTimeout", "QueueArn"}
    assert attrs["QueueArn"] == queue_arn(name_of(queue))


def test_get_queue_attributes_without_names_returns_nothing(sqs, queue):
    # Model: "if you don't specify values for this parameter, the request returns empty results."
    resp = sqs.get_queue_attributes(QueueUrl=queue)
    assert resp.get("Attributes", {}) == {}


def test_get_queue_attributes_unknown_name(sqs, queue):
    with client_error("InvalidAttributeName", shape="InvalidAttributeName", sqs=sqs):
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["NoSuchAttribute"])


# ---------------------------------------------------------------------------
# SetQueueAttributes
# ---------------------------------------------------------------------------

def test_set_queue_attributes(sqs, queue):
    wanted = {
        "VisibilityTimeout": "45",
        "DelaySeconds": "3",
        "MessageRetentionPeriod": "120",
        "ReceiveMessageWaitTimeSeconds": "2",
        "MaximumMessageSize": "2048",
    }
    sqs.set_queue_attributes(QueueUrl=queue, Attributes=wanted)
    attrs = get_attrs(sqs, queue, "All")
    for k, v in wanted.items():
        assert attrs[k] == v, f"{k}: expected {v!r}, got {attrs[k]!r}"
    assert int(attrs["LastModifiedTimestamp"]) >= int(attrs["CreatedTimestamp"])


def test_set_queue_attributes_unknown_name(sqs, queue):
    with client_error("InvalidAttributeName", shape="InvalidAttributeName", sqs=sqs):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"NoSuchAttribute": "1"})


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "43201"),
    ("DelaySeconds", "901"),
    ("MessageRetentionPeriod", "59"),
    ("MaximumMessageSize", "1023"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
    ("ReceiveMessageWaitTimeSeconds", "x"),
])
def test_set_queue_attributes_invalid_value(sqs, queue, attr, value):
    with client_error("InvalidAttributeValue", shape="InvalidAttributeValue", sqs=sqs):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={attr: value})
    assert get_attrs(sqs, queue, attr)[attr] == DEFAULTS[attr], "a rejected value must not be applied"


def test_set_redrive_policy_round_trip(sqs, make_queue):
    dlq, dlq_name = make_queue("dlq")
    src, _ = make_queue("src")
    policy = {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": 5}
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(policy)})
    got = json.loads(get_attrs(sqs, src, "RedrivePolicy")["RedrivePolicy"])
    assert got["deadLetterTargetArn"] == policy["deadLetterTargetArn"]
    assert int(got["maxReceiveCount"]) == 5


def test_redrive_policy_with_invalid_target_arn(sqs, queue):
    # Recorded against AWS (LocalStack snapshot test_invalid_dead_letter_arn_rejected_before_lookup):
    # InvalidParameterValue "Value {...} for parameter RedrivePolicy is invalid.
    # Reason: Invalid value for deadLetterTargetArn."
    with client_error("InvalidParameterValue"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": "dummy", "maxReceiveCount": 42})})
    assert "RedrivePolicy" not in get_attrs(sqs, queue, "All")


# ---------------------------------------------------------------------------
# DeleteQueue and operations on a queue that does not exist
# ---------------------------------------------------------------------------

def test_delete_queue(sqs):
    name = unique_name("del")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    # AWS: deletion "takes up to 60 seconds"; an emulator should be immediate.
    with client_error("AWS.SimpleQueueService.NonExistentQueue", shape="QueueDoesNotExist", sqs=sqs):
        sqs.get_queue_url(QueueName=name)
    assert url not in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


NONEXISTENT_CALLS = {
    "SendMessage": lambda c, u: c.send_message(QueueUrl=u, MessageBody="x"),
    "SendMessageBatch": lambda c, u: c.send_message_batch(QueueUrl=u, Entries=[{"Id": "a", "MessageBody": "x"}]),
    "ReceiveMessage": lambda c, u: c.receive_message(QueueUrl=u),
    "GetQueueAttributes": lambda c, u: c.get_queue_attributes(QueueUrl=u, AttributeNames=["All"]),
    "SetQueueAttributes": lambda c, u: c.set_queue_attributes(QueueUrl=u, Attributes={"DelaySeconds": "1"}),
    "PurgeQueue": lambda c, u: c.purge_queue(QueueUrl=u),
    "DeleteQueue": lambda c, u: c.delete_queue(QueueUrl=u),
    "ListQueueTags": lambda c, u: c.list_queue_tags(QueueUrl=u),
    "TagQueue": lambda c, u: c.tag_queue(QueueUrl=u, Tags={"k": "v"}),
    "UntagQueue": lambda c, u: c.untag_queue(QueueUrl=u, TagKeys=["k"]),
    "ListDeadLetterSourceQueues": lambda c, u: c.list_dead_letter_source_queues(QueueUrl=u),
    "AddPermission": lambda c, u: c.add_permission(QueueUrl=u, Label="l", AWSAccountIds=["111122223333"],
                                                   Actions=["SendMessage"]),
}


@pytest.mark.parametrize("op", sorted(NONEXISTENT_CALLS))
def test_operation_on_nonexistent_queue(sqs, endpoint, op):
    url = queue_url(endpoint, unique_name("ghost"))
    with client_error("AWS.SimpleQueueService.NonExistentQueue", shape="QueueDoesNotExist", sqs=sqs):
        NONEXISTENT_CALLS[op](sqs, url)


# ---------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------

def test_tag_untag_list(sqs, queue):
    assert sqs.list_queue_tags(QueueUrl=queue).get("Tags", {}) == {}
    sqs.tag_queue(QueueUrl=queue, Tags={"a": "1", "b": "2"})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"a": "1", "b": "2"}
    # "A new tag with a key identical to that of an existing tag overwrites the existing tag."
    sqs.tag_queue(QueueUrl=queue, Tags={"a": "one", "c": ""})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"a": "one", "b": "2", "c": ""}
    sqs.untag_queue(QueueUrl=queue, TagKeys=["a", "c", "not-there"])
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"b": "2"}
    sqs.untag_queue(QueueUrl=queue, TagKeys=["b"])
    assert sqs.list_queue_tags(QueueUrl=queue).get("Tags", {}) == {}


def test_tags_are_case_sensitive(sqs, queue):
    sqs.tag_queue(QueueUrl=queue, Tags={"Key": "A", "key": "b"})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"Key": "A", "key": "b"}


# ---------------------------------------------------------------------------
# AddPermission / RemovePermission
# ---------------------------------------------------------------------------

def _statements(sqs, url):
    raw = get_attrs(sqs, url, "Policy").get("Policy")
    if not raw:
        return []
    policy = json.loads(raw)
    stmts = policy.get("Statement", [])
    return stmts if isinstance(stmts, list) else [stmts]


def _as_list(v):
    return v if isinstance(v, list) else [v]


def test_add_and_remove_permission(sqs, queue):
    arn = queue_arn(name_of(queue))
    sqs.add_permission(QueueUrl=queue, Label="AllowSend", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage", "ReceiveMessage"])
    sqs.add_permission(QueueUrl=queue, Label="AllowAll", AWSAccountIds=["444455556666"], Actions=["*"])
    raw = get_attrs(sqs, queue, "Policy")["Policy"]
    policy = json.loads(raw)
    # Recorded against AWS (LocalStack snapshot test_sqs_permission_lifecycle):
    # Version "2008-10-17", Id "<queue arn>/SQSDefaultPolicy", Action "SQS:<Action>",
    # Principal {"AWS": "arn:aws:iam::<account>:root"} (a list for several accounts).
    assert policy.get("Version") == "2008-10-17"
    assert policy.get("Id") == f"{arn}/SQSDefaultPolicy"
    stmts = {s["Sid"]: s for s in _statements(sqs, queue)}
    assert set(stmts) == {"AllowSend", "AllowAll"}
    s = stmts["AllowSend"]
    assert s["Effect"] == "Allow"
    assert _as_list(s["Resource"]) == [arn]
    # AWS writes the action as "SQS:<Action>" and the principal as an account ARN
    # ("arn:aws:iam::111122223333:root"); compare loosely on case/format.
    assert sorted(_as_list(s["Action"])) == ["SQS:ReceiveMessage", "SQS:SendMessage"]
    assert s["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert _as_list(stmts["AllowAll"]["Action"]) == ["SQS:*"]

    sqs.remove_permission(QueueUrl=queue, Label="AllowSend")
    assert [st["Sid"] for st in _statements(sqs, queue)] == ["AllowAll"]
    sqs.remove_permission(QueueUrl=queue, Label="AllowAll")
    # AWS drops the Policy attribute once its last statement is removed.
    assert "Policy" not in get_attrs(sqs, queue, "Policy")


def test_add_permission_duplicate_label(sqs, queue):
    sqs.add_permission(QueueUrl=queue, Label="dup", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    # AWS: "Value dup for parameter Label is invalid. Reason: Already exists."
    # (InvalidParameterValue; not a modeled shape, so the exact JSON __type is not asserted).
    with client_error("InvalidParameterValue"):
        sqs.add_permission(QueueUrl=queue, Label="dup", AWSAccountIds=["111122223333"],
                           Actions=["ReceiveMessage"])


def test_remove_permission_unknown_label(sqs, queue):
    # AWS: "Value nope for parameter Label is invalid. Reason: can't find label." (InvalidParameterValue)
    with client_error("InvalidParameterValue"):
        sqs.remove_permission(QueueUrl=queue, Label="nope")
