"""Write the botocore data the functions need, trimmed to the operations they call.

botocore parses a service's whole model when a client is created: EC2's is 550 KB gzipped and
costs about 170 ms of every cold start, for the four operations scale-up and scale-down use.
Its endpoint table (1.2 MB, every service of every partition) costs another 30 ms, and looking
for a service among its ~400 data folders another 40. This writes, under
`chalicelib/aws_models/`, everything `chalicelib/wiring.py`'s loader reads, and that loader reads
nothing else:

- per service, a model holding only the operations it calls and the shapes they reach, their
  paginators, and the service's endpoint rule set (copied whole);
- the endpoint table of every partition, holding only these services;
- botocore's partitions, retry and defaults-mode files, copied whole.

Run it again (`python scripts/trim_botocore_models.py`) when an adapter starts calling another
operation or service, or botocore is upgraded; `tests/unit/test_aws_models.py` checks the files
are current, complete and resolve endpoints as botocore's own data does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import botocore.session

OUT = Path(__file__).resolve().parents[1] / "chalicelib" / "aws_models"

# The operations each adapter calls; the test checks every one the code names is listed.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "ec2": ("CreateFleet", "CreateTags", "DeleteTags", "DescribeImages", "DescribeInstances",
            "TerminateInstances"),
    "ssm": ("DeleteParameters", "DescribeParameters", "GetParameter", "GetParameters",
            "PutParameter"),
    "sqs": ("GetQueueAttributes", "SendMessage", "SendMessageBatch"),
    "dynamodb": ("DeleteItem", "GetItem", "PutItem", "Query", "TransactWriteItems",
                 "UpdateItem"),
}


def reachable_shapes(shapes: dict[str, Any], roots: list[str]) -> set[str]:
    """Every shape name reachable from `roots` through members, lists and maps."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = shapes[name]
        refs = [m["shape"] for m in shape.get("members", {}).values()]
        refs += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        todo.extend(refs)
    return seen


def trim(service: str, operations: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The trimmed `service-2` and `paginators-1` documents of `service`."""
    loader = botocore.session.get_session().get_component("data_loader")
    version = loader.determine_latest_version(service, "service-2")
    model = loader.load_service_model(service, "service-2", version)
    ops = {name: model["operations"][name] for name in operations}
    roots = [op[k]["shape"] for op in ops.values() for k in ("input", "output") if k in op]
    roots += [error["shape"] for op in ops.values() for error in op.get("errors", [])]
    keep = reachable_shapes(model["shapes"], roots)
    service_doc = {
        "version": model.get("version", "2.0"),
        "metadata": model["metadata"],
        "operations": ops,
        "shapes": {name: model["shapes"][name] for name in sorted(keep)},
    }
    paginators = loader.load_service_model(service, "paginators-1", version)
    pages = {name: spec for name, spec in paginators["pagination"].items() if name in operations}
    rules = loader.load_service_model(service, "endpoint-rule-set-1", version)
    return {f"{version}/service-2.json": service_doc,
            f"{version}/paginators-1.json": {"pagination": pages},
            f"{version}/endpoint-rule-set-1.json": rules}


def shared_data() -> dict[str, Any]:
    """botocore's files that are not a service's: the endpoint table, trimmed to our services,
    and the partitions, retry and defaults-mode files as they are."""
    loader = botocore.session.get_session().get_component("data_loader")
    endpoints = loader.load_data("endpoints")
    partitions = [{**partition, "services": {name: spec for name, spec
                                             in partition["services"].items()
                                             if name in OPERATIONS}}
                  for partition in endpoints["partitions"]]
    return {"endpoints.json": {**endpoints, "partitions": partitions},
            **{f"{name}.json": loader.load_data(name)
               for name in ("partitions", "_retry", "sdk-default-configuration")}}


def strip_docs(value: Any) -> Any:
    """Drop documentation strings: they are most of a model's bytes and never read at run time."""
    if isinstance(value, dict):
        return {k: strip_docs(v) for k, v in value.items()
                if k not in ("documentation", "documentationUrl")}
    if isinstance(value, list):
        return [strip_docs(v) for v in value]
    return value


def render() -> dict[Path, str]:
    """Every file this script writes, by path, with its content."""
    files: dict[Path, str] = {}
    for service, operations in OPERATIONS.items():
        for relative, document in trim(service, operations).items():
            text = json.dumps(strip_docs(document), separators=(",", ":"))
            files[OUT / service / relative] = text + "\n"
    for relative, document in shared_data().items():
        files[OUT / relative] = json.dumps(strip_docs(document), separators=(",", ":")) + "\n"
    return files


def main() -> int:
    """Write the trimmed models."""
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(OUT.parent.parent)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
