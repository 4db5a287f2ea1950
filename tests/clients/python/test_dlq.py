"""Dead-letter queues: RedrivePolicy, ListDeadLetterSourceQueues and DLQ redrive via
StartMessageMoveTask / ListMessageMoveTasks / CancelMessageMoveTask."""

import json
import time

from sqs_helpers import (
    client_error,
    counts,
    name_of,
    queue_arn,
    receive_all,
    unique_name,
)


def _redrive(dlq_name, max_receive_count):
    return json.dumps({"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": max_receive_count})


def _dlq_pair(make_queue, max_receive_count=2):
    dlq, dlq_name = make_queue("dlq")
    src, src_name = make_queue("src", attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": _redrive(dlq_name, max_receive_count),
    })
    return src, src_name, dlq, dlq_name


def _dead_letter_everything(sqs, src, dlq, n, max_calls=20):
    """Receive from src (VisibilityTimeout 0) until n messages have moved to dlq."""
    for _ in range(max_calls):
        sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if counts(sqs, dlq)[0] >= n:
            return
    raise AssertionError(f"messages did not reach the DLQ: src={counts(sqs, src)} dlq={counts(sqs, dlq)}")


def _wait_task(sqs, source_arn, statuses, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        results = sqs.list_message_move_tasks(SourceArn=source_arn).get("Results", [])
        if results and results[0]["Status"] in statuses:
            return results[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"move task did not reach {statuses} within {timeout}s: {results!r}")
        time.sleep(0.2)


def test_message_moves_to_dlq_after_max_receive_count(sqs, make_queue):
    src, src_name, dlq, _ = _dlq_pair(make_queue, max_receive_count=2)
    attrs = {"k": {"DataType": "String", "StringValue": "v"}}
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes=attrs)

    deliveries = []
    for _ in range(6):
        msgs = sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1,
                                   AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        if not msgs:
            break
        deliveries.append(msgs[0]["Attributes"]["ApproximateReceiveCount"])
    # RedrivePolicy docs: "When the ReceiveCount for a message exceeds the
    # maxReceiveCount for a queue, Amazon SQS moves the message to the dead-letter-queue."
    assert deliveries == ["1", "2"], f"source deliveries (ApproximateReceiveCount): {deliveries}"

    m = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2, MessageAttributeNames=["All"],
                            AttributeNames=["All"]).get("Messages", [])
    assert len(m) == 1, "message must be in the DLQ"
    m = m[0]
    assert m["Body"] == "poison"
    # The moved message keeps its MessageId and attributes.
    assert m["MessageId"] == sent["MessageId"]
    assert m["MessageAttributes"] == attrs
    assert counts(sqs, src) == (0, 0, 0)


def test_list_dead_letter_source_queues(sqs, make_queue):
    src, _, dlq, dlq_name = _dlq_pair(make_queue)
    src2, _ = make_queue("src2", attributes={"RedrivePolicy": _redrive(dlq_name, 3)})
    unrelated, _ = make_queue("plain")
    got = sqs.list_dead_letter_source_queues(QueueUrl=dlq)
    assert sorted(got.get("queueUrls", [])) == sorted([src, src2])
    assert sqs.list_dead_letter_source_queues(QueueUrl=unrelated).get("queueUrls", []) == []

    # Pagination: MaxResults + NextToken.
    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=1)
    assert len(first["queueUrls"]) == 1 and first.get("NextToken")
    second = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=1, NextToken=first["NextToken"])
    assert len(second["queueUrls"]) == 1
    assert sorted(first["queueUrls"] + second["queueUrls"]) == sorted([src, src2])
    assert not second.get("NextToken")


def test_redrive_back_to_source_with_message_move_task(sqs, make_queue):
    src, src_name, dlq, dlq_name = _dlq_pair(make_queue, max_receive_count=1)
    bodies = {f"m{i}" for i in range(3)}
    for b in sorted(bodies):
        sqs.send_message(QueueUrl=src, MessageBody=b)
    _dead_letter_everything(sqs, src, dlq, 3)
    assert counts(sqs, dlq)[0] == 3

    # Stop the source from dead-lettering again while we read the redriven messages.
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"VisibilityTimeout": "30"})

    resp = sqs.start_message_move_task(SourceArn=queue_arn(dlq_name))  # no DestinationArn: back to the source
    assert resp.get("TaskHandle")
    task = _wait_task(sqs, queue_arn(dlq_name), {"COMPLETED"})
    assert task["SourceArn"] == queue_arn(dlq_name)
    assert task.get("DestinationArn") is None  # "If a DestinationArn has not been specified ... NULL"
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert "StartedTimestamp" in task
    assert "TaskHandle" not in task  # only populated for RUNNING tasks

    assert counts(sqs, dlq) == (0, 0, 0)
    got = receive_all(sqs, src, 3)
    assert {m["Body"] for m in got} == bodies


def test_move_task_to_explicit_destination_and_listing(sqs, make_queue):
    _, _, dlq, dlq_name = _dlq_pair(make_queue)
    dest, dest_name = make_queue("dest")
    dlq_arn = queue_arn(dlq_name)
    sqs.send_message_batch(QueueUrl=dlq, Entries=[{"Id": f"e{i}", "MessageBody": f"d{i}"} for i in range(2)])

    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(dest_name))
    first = _wait_task(sqs, dlq_arn, {"COMPLETED"})
    assert first["DestinationArn"] == queue_arn(dest_name)
    assert first["ApproximateNumberOfMessagesMoved"] == 2
    assert {m["Body"] for m in receive_all(sqs, dest, 2)} == {"d0", "d1"}

    sqs.send_message(QueueUrl=dlq, MessageBody="d2")
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(dest_name),
                                MaxNumberOfMessagesPerSecond=100)
    second = _wait_task(sqs, dlq_arn, {"COMPLETED"})
    assert second["ApproximateNumberOfMessagesMoved"] == 1
    assert second.get("MaxNumberOfMessagesPerSecond") == 100

    # MaxResults "default is 1, which provides the most recent message movement task".
    default = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert len(default) == 1 and default[0]["ApproximateNumberOfMessagesMoved"] == 1
    both = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert [t["ApproximateNumberOfMessagesMoved"] for t in both] == [1, 2], "most recent first"


def test_cancel_message_move_task(sqs, make_queue):
    _, _, dlq, dlq_name = _dlq_pair(make_queue)
    dest, dest_name = make_queue("dest")
    dlq_arn = queue_arn(dlq_name)
    for chunk in range(2):
        sqs.send_message_batch(QueueUrl=dlq, Entries=[
            {"Id": f"e{i}", "MessageBody": f"c{chunk}-{i}"} for i in range(10)])
    # 1 message/second: 20 messages take ~20 s, so the task is still RUNNING when cancelled.
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(dest_name),
                                         MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    running = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
    assert running["Status"] == "RUNNING"
    assert running.get("TaskHandle") == handle
    assert running.get("ApproximateNumberOfMessagesToMove") in (None, 20)

    # Recorded against AWS (LocalStack snapshot test_start_multiple_move_tasks):
    # InvalidParameterValue "There is already a task running. Only one active task
    # is allowed for a source queue arn at a given time."
    with client_error("InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(dest_name))

    resp = sqs.cancel_message_move_task(TaskHandle=handle)
    moved = resp["ApproximateNumberOfMessagesMoved"]
    assert 0 <= moved < 20
    task = _wait_task(sqs, dlq_arn, {"CANCELLED"}, timeout=5)
    assert task["ApproximateNumberOfMessagesMoved"] < 20
    remaining = counts(sqs, dlq)[0]
    assert remaining > 0 and remaining + counts(sqs, dest)[0] == 20


def test_start_message_move_task_unknown_source(sqs):
    # Model: StartMessageMoveTask errors include ResourceNotFoundException (query code
    # "ResourceNotFoundException", HTTP 404).
    with client_error("ResourceNotFoundException", shape="ResourceNotFoundException", status=404, sqs=sqs):
        sqs.start_message_move_task(SourceArn=queue_arn(unique_name("ghost")))


def test_start_message_move_task_unknown_destination(sqs, make_queue):
    _, _, _, dlq_name = _dlq_pair(make_queue)
    # Recorded against AWS (LocalStack snapshot test_destination_needs_to_exist):
    # ResourceNotFoundException, HTTP 404.
    with client_error("ResourceNotFoundException", shape="ResourceNotFoundException", status=404, sqs=sqs):
        sqs.start_message_move_task(SourceArn=queue_arn(dlq_name), DestinationArn=queue_arn(unique_name("ghost")))


def test_cancel_message_move_task_invalid_handle(sqs):
    # Recorded against AWS (LocalStack snapshot test_cancel_with_invalid_task_handle):
    # InvalidParameterValue "Value for parameter TaskHandle is invalid."
    with client_error("InvalidParameterValue"):
        sqs.cancel_message_move_task(TaskHandle="not-a-task-handle")


def test_start_message_move_task_on_non_dlq(sqs, make_queue):
    url, name = make_queue("notdlq")
    # "Currently, only ARNs of dead-letter queues (DLQs) whose sources are other
    # Amazon SQS queues are accepted." Recorded against AWS (LocalStack snapshot
    # test_source_needs_redrive_policy): InvalidParameterValue
    # "Source queue must be configured as a Dead Letter Queue.", HTTP 400.
    with client_error("InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=queue_arn(name))
    assert name_of(url) == name
