"""The client really speaks the protocol this env is meant to exercise."""

import botocore

from sqs_helpers import make_client


def test_client_speaks_expected_protocol(protocol):
    # A mis-pinned venv (e.g. query env that resolved a newer botocore) must
    # fail loudly instead of silently testing the other protocol twice.
    # (No server needed: the client is only inspected, never called.)
    got = make_client("http://127.0.0.1:1").meta.service_model.protocol
    assert got == protocol, (
        f"botocore {botocore.__version__} speaks SQS over {got!r}, but this env "
        f"(SLUICE_PY_PROTOCOL={protocol!r}) must speak {protocol!r}")
    assert protocol in ("query", "json")


def test_json_env_is_query_compatible(protocol):
    sqs = make_client("http://127.0.0.1:1")
    if protocol != "json":
        assert "awsQueryCompatible" not in sqs.meta.service_model.metadata
        return
    # awsQueryCompatible: the client sends x-amzn-query-mode and reads the
    # legacy error code from x-amzn-query-error.
    assert sqs.meta.service_model.metadata.get("awsQueryCompatible") is not None
    assert sqs.meta.service_model.metadata.get("jsonVersion") == "1.0"


def test_response_metadata_has_request_id(sqs):
    resp = sqs.list_queues()
    meta = resp["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    # query: <ResponseMetadata><RequestId>; json: x-amzn-RequestId header
    assert meta.get("RequestId"), f"no RequestId in {meta!r}"
