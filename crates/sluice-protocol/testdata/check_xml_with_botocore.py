#!/usr/bin/env python3
"""Check that botocore 1.34.89 (the last SQS query-protocol release) reads sluice's query XML.

testdata/xml_outputs.json holds (service, operation, output, xml) cases; the Rust test
`xml::tests::xml_fixture_matches_rendering` pins `xml` to what sluice renders for `output`.
This script feeds every `xml` to botocore's own QueryParser with the operation's output
shape and checks the parsed result equals `output` (blobs compared as base64, as the
JSON-protocol shape carries them). Run it after regenerating the fixture:

  mkdir -p /tmp/bc134 && cd /tmp/bc134 && python3 -m zipfile -e botocore-1.34.89-py3-none-any.whl .
  PYTHONPATH=/tmp/bc134 python3 testdata/check_xml_with_botocore.py
"""
import base64
import json
import os
import sys

import botocore
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import QueryParser

assert botocore.__version__ == "1.34.89", botocore.__version__
HERE = os.path.dirname(os.path.abspath(__file__))


def json_shape(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shape(v) for v in value]
    return value


def drop_empty_lists(value):
    """botocore cannot tell an absent flattened list from an empty one; neither can clients."""
    if isinstance(value, dict):
        return {k: drop_empty_lists(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [drop_empty_lists(v) for v in value]
    return value


def main():
    with open(os.path.join(HERE, "xml_outputs.json")) as f:
        cases = json.load(f)
    models = {s: ServiceModel(Loader().load_service_model(s, "service-2"), s) for s in ("sqs", "sns", "sts")}
    failures = 0
    for case in cases:
        op = models[case["service"]].operation_model(case["operation"])
        response = {"body": case["xml"].encode(), "headers": {}, "status_code": 200}
        parsed = QueryParser().parse(response, op.output_shape)
        request_id = parsed.pop("ResponseMetadata", {}).get("RequestId")
        got = json_shape(parsed)
        want = drop_empty_lists(case["output"])
        if got != want or request_id != "req-1":
            failures += 1
            print("MISMATCH %s %s\n  want %s\n  got  %s (request id %r)" % (
                case["service"], case["operation"], want, got, request_id))
    print("%d cases, %d mismatches" % (len(cases), failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
