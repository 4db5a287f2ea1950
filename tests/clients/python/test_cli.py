"""Smoke test with the AWS CLI v1 installed in the same venv (it follows the
botocore it ships with: query for awscli 1.32.89, JSON for current awscli)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sqs_helpers import ACCESS_KEY, REGION, SECRET_KEY, md5_hex, unique_name


def _aws_bin():
    cand = Path(sys.executable).parent / "aws"
    if cand.exists():
        return str(cand)
    return shutil.which("aws")


@pytest.fixture(scope="module")
def aws(endpoint, tmp_path_factory):
    exe = _aws_bin()
    if not exe:
        pytest.fail("the `aws` CLI is not installed in this venv (awscli is in the requirements)")
    home = tmp_path_factory.mktemp("awshome")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }

    def run(*args, check=True):
        cmd = [exe, "--endpoint-url", endpoint, "--output", "json", "sqs", *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert p.returncode == 0, f"{' '.join(args)} failed ({p.returncode}): {p.stderr}"
        return p

    def run_json(*args):
        out = run(*args).stdout.strip()
        return json.loads(out) if out else {}

    run.json = run_json
    return run


def test_cli_version_matches_env(aws, protocol):
    exe = _aws_bin()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    text = (out.stdout + out.stderr).strip()
    bc = text.split("botocore/")[1].split()[0]
    major_minor_patch = tuple(int(x) for x in bc.split(".")[:3])
    want = "query" if major_minor_patch <= (1, 34, 89) else "json"
    assert want == protocol, f"aws CLI reports {text!r} -> {want}, env expects {protocol}"


def test_cli_smoke(aws):
    name = unique_name("cli")
    url = aws.json("create-queue", "--queue-name", name)["QueueUrl"]
    try:
        assert url.endswith("/" + name)
        assert aws.json("get-queue-url", "--queue-name", name)["QueueUrl"] == url

        body = "hello from the aws cli"
        sent = aws.json("send-message", "--queue-url", url, "--message-body", body,
                        "--message-attributes", json.dumps({"k": {"DataType": "String", "StringValue": "v"}}))
        assert sent["MD5OfMessageBody"] == md5_hex(body)
        assert sent["MessageId"]

        got = aws.json("receive-message", "--queue-url", url, "--wait-time-seconds", "2",
                       "--attribute-names", "All", "--message-attribute-names", "All")
        msgs = got.get("Messages", [])
        assert len(msgs) == 1
        m = msgs[0]
        assert m["Body"] == body and m["MessageId"] == sent["MessageId"]
        assert m["MessageAttributes"]["k"]["StringValue"] == "v"
        assert m["Attributes"]["ApproximateReceiveCount"] == "1"

        aws("delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
        attrs = aws.json("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0"
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

        listed = aws.json("list-queues", "--queue-name-prefix", name)
        assert listed.get("QueueUrls") == [url]
    finally:
        aws("delete-queue", "--queue-url", url, check=False)


def test_cli_error_reports_legacy_code(aws):
    p = aws("get-queue-url", "--queue-name", unique_name("nope"), check=False)
    assert p.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in p.stderr, p.stderr
