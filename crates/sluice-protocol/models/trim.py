#!/usr/bin/env python3
"""Produce the trimmed service models that sluice-protocol embeds.

Sources (botocore service models, Apache-2.0, (c) Amazon.com, Inc. or its affiliates):
  sqs-new.json      botocore 1.44.5  botocore/data/sqs/2012-11-05/service-2.json.gz
                    (protocol json, awsQueryCompatible; the authoritative operation,
                    shape and member list; byte-identical to botocore 1.43.11's copy)
  sqs-old.json      botocore 1.34.89 botocore/data/sqs/2012-11-05/service-2.json.gz
                    (protocol query: the last release with the query traits
                    locationName, flattened, resultWrapper, xmlNamespace and the
                    legacy query error codes such as AWS.SimpleQueueService.NonExistentQueue)
  sns-old.json      botocore 1.34.89 botocore/data/sns/2010-03-31/service-2.json.gz (query)
  kinesis-old.json  botocore 1.34.89 botocore/data/kinesis/2013-12-02/service-2.json.gz (json 1.1)

Outputs: models/{sqs,sns,kinesis}.json next to this script, with every
`documentation` / `documentationUrl` / `examples` field removed and nothing else
changed, except that SQS is MERGED: the new model's operations, shapes and
members, carrying over from the old model every query trait (`locationName`,
`flattened`, `resultWrapper`, `xmlNamespace`) and `error` trait onto the same
operation / shape / member.  Members the old model lacks get the query names
AWS documents for them (see QUERY_ADDITIONS).

Usage: python3 models/trim.py [SOURCE_DIR]   (SOURCE_DIR defaults to /tmp/models)
The script is deterministic; rerunning it must leave the committed files unchanged.
"""
import json
import os
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/tmp/models"
OUT = os.path.dirname(os.path.abspath(__file__))

DROP_KEYS = {"documentation", "documentationUrl", "examples"}
QUERY_TRAITS = ("locationName", "flattened", "xmlNamespace")

# Members that exist only in the JSON-era model, with the query names AWS documents.
# ReceiveMessage: "MessageSystemAttributeName.N" (flattened list), per the
# ReceiveMessage query API reference.
QUERY_ADDITIONS = {
    ("MessageSystemAttributeList", "member"): {"locationName": "MessageSystemAttributeName"},
}


def load(name):
    with open(os.path.join(SRC, name)) as f:
        return json.load(f)


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def copy_traits(dst, src, names):
    for t in names:
        if t in src:
            dst[t] = src[t]


def merge_sqs(new, old):
    out = strip(new)
    report = []
    if "xmlNamespace" in old["metadata"]:
        out["metadata"]["xmlNamespace"] = old["metadata"]["xmlNamespace"]

    for name, op in out["operations"].items():
        old_op = old["operations"].get(name)
        if old_op is None:
            report.append("operation %s: not in the old model" % name)
            continue
        if "output" in op and "resultWrapper" in old_op.get("output", {}):
            op["output"]["resultWrapper"] = old_op["output"]["resultWrapper"]

    for name, shape in out["shapes"].items():
        old_shape = old["shapes"].get(name)
        if old_shape is None:
            if shape.get("type") in ("structure", "list", "map") and not shape.get("exception"):
                report.append("shape %s: not in the old model" % name)
        else:
            copy_traits(shape, old_shape, QUERY_TRAITS + ("error",))
            for part in ("member", "key", "value"):
                if part in shape and part in old_shape:
                    copy_traits(shape[part], old_shape[part], QUERY_TRAITS)
            for mname, member in shape.get("members", {}).items():
                old_member = old_shape.get("members", {}).get(mname)
                if old_member is None:
                    if not shape.get("exception"):
                        report.append("member %s.%s: not in the old model" % (name, mname))
                    continue
                copy_traits(member, old_member, QUERY_TRAITS)
        for (sname, part), traits in QUERY_ADDITIONS.items():
            if sname == name:
                shape[part].update(traits)
    return out, report


def dump(model, name):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(model, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %s (%d operations, %d shapes)" % (path, len(model["operations"]), len(model["shapes"])))


def main():
    sqs, report = merge_sqs(load("sqs-new.json"), load("sqs-old.json"))
    for line in report:
        print("note: " + line)
    dump(sqs, "sqs.json")
    dump(strip(load("sns-old.json")), "sns.json")
    dump(strip(load("kinesis-old.json")), "kinesis.json")


if __name__ == "__main__":
    main()
