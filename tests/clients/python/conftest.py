"""Fixtures for the Python real-client SQS suite.

The same test files run in two virtualenvs (see run.sh):
  * query: boto3/botocore 1.34.89 -> SQS query protocol (form request, XML response)
  * json:  current boto3/botocore  -> AWS JSON 1.0 + awsQueryCompatible

A session fixture starts `sluice serve` (durable engine in a temp dir, or
`--in-memory` with SLUICE_PY_ENGINE=memory) on a free loopback port
(or uses SLUICE_ENDPOINT if it is set, to debug against a running server).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqs_helpers import ACCOUNT_ID, REGION, expected_protocol, make_client, unique_name  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[3]
HEALTH_TIMEOUT_S = 30.0

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health_ok(endpoint: str) -> bool:
    try:
        with _NO_PROXY_OPENER.open(endpoint + "/health", timeout=1.0) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def endpoint():
    """Start sluice on a free loopback port, yield its base URL, stop it at the end."""
    external = os.environ.get("SLUICE_ENDPOINT")
    if external:
        yield external.rstrip("/")
        return

    binary = Path(os.environ.get("SLUICE_BIN") or REPO_ROOT / "target" / "debug" / "sluice")
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not binary.exists():
        pytest.fail(f"sluice binary not found at {binary} "
                    "(build it with `cargo build -p sluice` or set SLUICE_BIN)")

    port = _free_port()
    ep = f"http://127.0.0.1:{port}"
    logdir = Path(tempfile.mkdtemp(prefix="sluice-pytest-"))
    out_path, err_path = logdir / "stdout.log", logdir / "stderr.log"
    # SLUICE_PY_ENGINE=memory|durable picks the storage engine (default durable).
    if os.environ.get("SLUICE_PY_ENGINE", "durable") == "memory":
        engine = ["--in-memory"]
    else:
        engine = ["--data-dir", str(logdir / "data")]
    cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", *engine,
           "--region", REGION, "--account-id", ACCOUNT_ID]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def server_output() -> str:
        text = err_path.read_text(errors="replace") + out_path.read_text(errors="replace")
        return text[-8000:]

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while not _health_ok(ep):
        if proc.poll() is not None:
            pytest.fail(f"sluice exited with {proc.returncode} before becoming healthy; "
                        f"cmd={cmd}\n--- server output ---\n{server_output()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"sluice did not answer GET /health with 200 within {HEALTH_TIMEOUT_S}s; "
                        f"cmd={cmd}\n--- server output ---\n{server_output()}")
        time.sleep(0.1)

    try:
        yield ep
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sys.stderr.write(f"\nsluice server logs: {logdir}\n")


@pytest.fixture(scope="session")
def sqs(endpoint):
    return make_client(endpoint)


@pytest.fixture(scope="session")
def protocol():
    return expected_protocol()


@pytest.fixture
def make_queue(sqs):
    """Factory: make_queue(prefix='q', attributes=None, tags=None) -> (url, name).

    Queues are deleted after the test (errors ignored)."""
    created = []

    def _make(prefix: str = "q", attributes=None, tags=None):
        name = unique_name(prefix)
        kwargs = {"QueueName": name}
        if attributes:
            kwargs["Attributes"] = {k: str(v) for k, v in attributes.items()}
        if tags:
            kwargs["tags"] = tags
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        created.append(url)
        return url, name

    yield _make
    for url in created:
        with contextlib.suppress(Exception):
            sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def queue(make_queue):
    """A fresh standard queue URL with default attributes."""
    return make_queue()[0]
