#!/usr/bin/env python3
"""Generate query-protocol request fixtures with botocore's own QuerySerializer.

Each case is an input in JSON-protocol shape (blobs as base64) and the exact
form body botocore 1.34.89 (the last SQS query-protocol release) sends for it.
sluice-protocol's unit tests decode every body and expect the input back, so the
flattened / locationName conventions are botocore's, not our reading of them.

Cases marked "model": "merged" are serialized with botocore 1.34.89's serializer
over sluice's merged models/sqs.json (protocol forced to query): they cover
members the 1.34.89 model lacks (ReceiveMessage MessageSystemAttributeNames).

Usage:
  mkdir -p /tmp/bc134 && cd /tmp/bc134 && python3 -m zipfile -e botocore-1.34.89-py3-none-any.whl .
  PYTHONPATH=/tmp/bc134 python3 testdata/gen_query_requests.py > testdata/query_requests.json
(jmespath, python-dateutil and urllib3 must be importable.)
"""
import base64
import copy
import json
import os
import sys

import botocore
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.serialize import QuerySerializer
from botocore.utils import percent_encode_sequence

assert botocore.__version__ == "1.34.89", botocore.__version__
HERE = os.path.dirname(os.path.abspath(__file__))


def pristine(service):
    return ServiceModel(Loader().load_service_model(service, "service-2"), service)


def merged_sqs():
    with open(os.path.join(HERE, "..", "models", "sqs.json")) as f:
        model = json.load(f)
    model["metadata"]["protocol"] = "query"
    model["metadata"].pop("protocols", None)
    return ServiceModel(model, "sqs")


def to_json_shape(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: to_json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_shape(v) for v in value]
    return value


Q = "http://localhost:4566/000000000000/jobs"
ATTR = {
    "s": {"DataType": "String", "StringValue": "hello & <world>\r\n"},
    "n": {"DataType": "Number.float", "StringValue": "3.14"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
}

CASES = [
    ("sqs", "SendMessage", {
        "QueueUrl": Q, "MessageBody": "body with \r\n and ünïcödé", "DelaySeconds": 5,
        "MessageAttributes": ATTR,
        "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}},
        "MessageDeduplicationId": "d1", "MessageGroupId": "g1",
    }),
    ("sqs", "SendMessageBatch", {
        "QueueUrl": Q,
        "Entries": [
            {"Id": "a", "MessageBody": "one", "DelaySeconds": 0, "MessageAttributes": {"x": ATTR["s"], "y": ATTR["b"]}},
            {"Id": "b", "MessageBody": "two", "MessageGroupId": "g",
             "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "t"}}},
        ],
    }),
    ("sqs", "ReceiveMessage", {
        "QueueUrl": Q, "AttributeNames": ["All", "SentTimestamp"],
        "MessageAttributeNames": ["All", "x.*"], "MaxNumberOfMessages": 10,
        "VisibilityTimeout": 30, "WaitTimeSeconds": 20, "ReceiveRequestAttemptId": "r1",
    }),
    ("sqs", "ReceiveMessage", {"QueueUrl": Q, "AttributeNames": []}),
    ("sqs", "CreateQueue", {
        "QueueName": "jobs.fifo",
        "Attributes": {"FifoQueue": "true", "VisibilityTimeout": "45",
                       "RedrivePolicy": "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\",\"maxReceiveCount\":\"5\"}"},
        "tags": {"team": "core", "env": "dev"},
    }),
    ("sqs", "GetQueueAttributes", {"QueueUrl": Q, "AttributeNames": ["VisibilityTimeout", "QueueArn"]}),
    ("sqs", "SetQueueAttributes", {"QueueUrl": Q, "Attributes": {"DelaySeconds": "10"}}),
    ("sqs", "DeleteMessage", {"QueueUrl": Q, "ReceiptHandle": "rh+/=="}),
    ("sqs", "DeleteMessageBatch", {"QueueUrl": Q, "Entries": [
        {"Id": "1", "ReceiptHandle": "rh-1"}, {"Id": "2", "ReceiptHandle": "rh-2"}]}),
    ("sqs", "ChangeMessageVisibility", {"QueueUrl": Q, "ReceiptHandle": "rh", "VisibilityTimeout": 0}),
    ("sqs", "ChangeMessageVisibilityBatch", {"QueueUrl": Q, "Entries": [
        {"Id": "1", "ReceiptHandle": "rh-1", "VisibilityTimeout": 60},
        {"Id": "2", "ReceiptHandle": "rh-2"}]}),
    ("sqs", "TagQueue", {"QueueUrl": Q, "Tags": {"a": "1", "b": ""}}),
    ("sqs", "UntagQueue", {"QueueUrl": Q, "TagKeys": ["a", "b"]}),
    ("sqs", "ListQueueTags", {"QueueUrl": Q}),
    ("sqs", "AddPermission", {"QueueUrl": Q, "Label": "l", "AWSAccountIds": ["111111111111", "222222222222"],
                              "Actions": ["SendMessage", "ReceiveMessage"]}),
    ("sqs", "RemovePermission", {"QueueUrl": Q, "Label": "l"}),
    ("sqs", "StartMessageMoveTask", {"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq",
                                     "DestinationArn": "arn:aws:sqs:us-east-1:000000000000:jobs",
                                     "MaxNumberOfMessagesPerSecond": 50}),
    ("sqs", "ListMessageMoveTasks", {"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "MaxResults": 10}),
    ("sqs", "CancelMessageMoveTask", {"TaskHandle": "th"}),
    ("sqs", "ListQueues", {"QueueNamePrefix": "jo", "MaxResults": 1000, "NextToken": "n"}),
    ("sqs", "ListDeadLetterSourceQueues", {"QueueUrl": Q, "MaxResults": 5}),
    ("sqs", "GetQueueUrl", {"QueueName": "jobs", "QueueOwnerAWSAccountId": "000000000000"}),
    ("sqs", "PurgeQueue", {"QueueUrl": Q}),
    ("sqs", "DeleteQueue", {"QueueUrl": Q}),
    ("sqs", "SendMessage", {"QueueUrl": Q, "MessageBody": "lists", "MessageAttributes": {
        "l": {"DataType": "String", "StringListValues": ["p", "q"], "BinaryListValues": [b"\x01", b"\x02"]}}}),
    ("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Message": "m", "Subject": "s",
                        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"},
                                              "b": {"DataType": "Binary", "BinaryValue": b"\xff"}}}),
    ("sns", "PublishBatch", {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "PublishBatchRequestEntries": [
        {"Id": "1", "Message": "a", "MessageAttributes": {"k": {"DataType": "Number", "StringValue": "1"}}},
        {"Id": "2", "Message": "b", "MessageGroupId": "g"}]}),
    ("sns", "CreateTopic", {"Name": "t", "Attributes": {"FifoTopic": "true"},
                            "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    ("sns", "Subscribe", {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Protocol": "sqs",
                          "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q", "ReturnSubscriptionArn": True,
                          "Attributes": {"RawMessageDelivery": "true"}}),
    ("sns", "UntagResource", {"ResourceArn": "arn:aws:sns:us-east-1:000000000000:t", "TagKeys": ["a"]}),
    ("sns", "ListTopics", {}),
]

MERGED_CASES = [
    ("sqs", "ReceiveMessage", {
        "QueueUrl": Q, "AttributeNames": ["All"], "MessageSystemAttributeNames": ["SenderId", "SentTimestamp"],
        "MessageAttributeNames": ["a"], "MaxNumberOfMessages": 1,
    }),
    ("sqs", "SendMessage", {"QueueUrl": Q, "MessageBody": "m", "MessageAttributes": {"s": ATTR["s"]}}),
]


def serialize(model, op, params):
    body = QuerySerializer().serialize_to_request(copy.deepcopy(params), model.operation_model(op))["body"]
    return percent_encode_sequence(body)


def main():
    out = []
    models = {"sqs": pristine("sqs"), "sns": pristine("sns")}
    for service, op, params in CASES:
        out.append({"service": service, "model": "botocore-1.34.89", "operation": op,
                    "body": serialize(models[service], op, params), "input": to_json_shape(params)})
    merged = merged_sqs()
    for service, op, params in MERGED_CASES:
        out.append({"service": service, "model": "merged", "operation": op,
                    "body": serialize(merged, op, params), "input": to_json_shape(params)})
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
