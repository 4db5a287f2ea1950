"""Helpers shared by the SQS client tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import uuid

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def botocore_version():
    return tuple(int(p) for p in botocore.__version__.split(".")[:3])


def expected_protocol() -> str:
    """The SQS protocol this environment is supposed to speak.

    run.sh exports SLUICE_PY_PROTOCOL (query|json); without it, derive it from
    the botocore version (<= 1.34.89 query, >= 1.34.90 json; see
    shared/DEPENDENCIES.md "botocore SQS protocol timeline")."""
    kind = os.environ.get("SLUICE_PY_PROTOCOL")
    if kind:
        return kind
    return "query" if botocore_version() <= (1, 34, 89) else "json"


def make_client(endpoint: str):
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    return session.client(
        "sqs",
        endpoint_url=endpoint,
        config=Config(
            # No retries: a 5xx or throttle must surface as-is, not be hidden.
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,  # > the longest WaitTimeSeconds used (20)
            proxies={},
        ),
    )


def unique_name(prefix: str = "q") -> str:
    """A queue name unique to this run (alphanumerics, '-' and '_' only, <= 80 chars)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def queue_url(endpoint: str, name: str) -> str:
    return f"{endpoint}/{ACCOUNT_ID}/{name}"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def name_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def get_attrs(sqs, url, *names):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"]).get("Attributes", {})


def counts(sqs, url):
    """(ApproximateNumberOfMessages, ...NotVisible, ...Delayed) as ints."""
    a = get_attrs(sqs, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                  "ApproximateNumberOfMessagesDelayed")
    return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
            int(a["ApproximateNumberOfMessagesDelayed"]))


def receive_all(sqs, url, expected: int, *, max_calls: int = 20, wait: int = 1, **kwargs):
    """Receive until `expected` distinct messages were seen or max_calls is hit.

    (AWS short/long polls may return fewer messages than available, so a
    deterministic test collects over several calls.)"""
    seen = {}
    kwargs.setdefault("MaxNumberOfMessages", 10)
    for _ in range(max_calls):
        resp = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait, **kwargs)
        msgs = resp.get("Messages", [])
        assert len(msgs) <= kwargs["MaxNumberOfMessages"], (
            f"ReceiveMessage returned {len(msgs)} > MaxNumberOfMessages={kwargs['MaxNumberOfMessages']}")
        for m in msgs:
            seen[m["MessageId"]] = m
        if len(seen) >= expected:
            break
    return list(seen.values())


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class _Holder:
    value: ClientError | None = None


@contextlib.contextmanager
def client_error(code: str, shape: str | None = None, status: int | None = 400, sqs=None):
    """Expect a botocore ClientError whose Error.Code is `code`.

    `code` is the legacy query-protocol code, which both envs must expose: the
    query env reads it from the XML <Code>, the JSON env from the
    x-amzn-query-error header ("<code>;Sender"), which botocore (parsers.py
    _do_query_compatible_error_parse) puts into Error.Code.

    shape: the modeled exception shape (e.g. QueueDoesNotExist). In the JSON env
      botocore keeps the JSON `__type` short name in Error.QueryErrorCode, so we
      check that; with `sqs` given we also check the exception class botocore
      raised (in both envs).
    status: expected HTTP status (None = don't check)."""
    holder = _Holder()
    try:
        yield holder
    except ClientError as e:
        holder.value = e
    else:
        pytest.fail(f"expected ClientError {code!r}, but the call succeeded")
    e = holder.value
    err = e.response.get("Error", {})
    meta = e.response.get("ResponseMetadata", {})
    detail = f"got Error={err!r} HTTP={meta.get('HTTPStatusCode')}"
    assert err.get("Code") == code, f"expected Error.Code {code!r}; {detail}"
    # Client errors are sender faults (query: <Type>Sender</Type>; JSON: the
    # ";Sender" suffix of x-amzn-query-error).
    assert err.get("Type") == "Sender", f"expected Error.Type 'Sender'; {detail}"
    if status is not None:
        assert meta.get("HTTPStatusCode") == status, f"expected HTTP {status}; {detail}"
    if shape and expected_protocol() == "json":
        assert err.get("QueryErrorCode") == shape, (
            f"expected JSON __type {shape!r} (botocore Error.QueryErrorCode); {detail}")
    if shape and sqs is not None and hasattr(sqs.exceptions, shape):
        assert isinstance(e, getattr(sqs.exceptions, shape)), (
            f"expected exception class {shape}, got {type(e).__name__}; {detail}")


# ---------------------------------------------------------------------------
# MD5 digests, computed independently per the AWS algorithm
# (SQS Developer Guide, "Calculating the MD5 message digest for message attributes")
# ---------------------------------------------------------------------------

def md5_hex(data) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def _len_prefixed(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def md5_of_attributes(attrs: dict) -> str:
    """MD5 of message (or message system) attributes.

    For each attribute, sorted ascending by name: 4-byte big-endian length +
    UTF-8 name, length + UTF-8 DataType, 1 transport byte (1 = String/Number,
    2 = Binary), length + value bytes (UTF-8 string or raw binary)."""
    buf = b""
    for name in sorted(attrs):
        a = attrs[name]
        buf += _len_prefixed(name.encode("utf-8"))
        buf += _len_prefixed(a["DataType"].encode("utf-8"))
        if a.get("StringValue") is not None:
            buf += b"\x01" + _len_prefixed(a["StringValue"].encode("utf-8"))
        else:
            v = a["BinaryValue"]
            if isinstance(v, str):
                v = v.encode("utf-8")
            buf += b"\x02" + _len_prefixed(v)
    return hashlib.md5(buf).hexdigest()
