"""`python -m devstack status`: the build queue, the instances, the runners and the jobs of a
running devstack, as tables or as one JSON object."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

ACTIVE = ("pending", "running", "shutting-down", "stopping", "stopped")


def _client(service: str, env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def _queue(sqs: Any, url: str) -> dict[str, int]:
    names = {"ApproximateNumberOfMessages": "waiting",
             "ApproximateNumberOfMessagesNotVisible": "in_flight",
             "ApproximateNumberOfMessagesDelayed": "delayed"}
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
    return {label: int(attributes.get(name, 0)) for name, label in names.items()}


def _instances(ec2: Any, environments: list[str]) -> list[dict[str, Any]]:
    found = []
    now = datetime.now(UTC)
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:ghr:environment", "Values": environments},
        {"Name": "instance-state-name", "Values": list(ACTIVE)}])
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                found.append({
                    "id": instance["InstanceId"], "state": instance["State"]["Name"],
                    "owner": tags.get("ghr:Owner", ""), "type": tags.get("ghr:Type", ""),
                    "created_by": tags.get("ghr:created_by", ""),
                    "environment": tags.get("ghr:environment", ""),
                    "age_seconds": int((now - instance["LaunchTime"]).total_seconds())})
    return sorted(found, key=lambda i: (i["age_seconds"], i["id"]), reverse=True)


def collect(state: dict[str, Any], github: dict[str, Any]) -> dict[str, Any]:
    """One snapshot: queue depths (AWS), instances (AWS), runners and jobs (the GitHub fake)."""
    env = state["env"]
    sqs = _client("sqs", env)
    return {
        "queue": _queue(sqs, env["SQS_URL_WEBHOOK"]),
        "dead_letter": _queue(sqs, state["dead_letter_queue_url"])["waiting"],
        # Every runner configuration's `ghr:environment` (docs/REFERENCE.md §6), when the
        # session was started with several.
        "instances": _instances(_client("ec2", env),
                                state.get("environments") or [env["ENVIRONMENT"]]),
        "runners": github["runners"],
        "jobs": sorted(github["jobs"], key=lambda j: j["id"]),
        "installations": github["installations"],
    }


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    if not rows:
        table.add_row("(none)", *("" for _ in columns[1:]))
    return table


def render(snapshot: dict[str, Any]) -> str:
    """The snapshot as plain-text tables."""
    queue = snapshot["queue"]
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None, highlight=False)
    console.print(f"build queue: {queue['waiting']} waiting, {queue['in_flight']} in flight, "
                  f"{queue['delayed']} delayed; dead-letter queue: {snapshot['dead_letter']}")
    several = len({i.get("environment") for i in snapshot["instances"]}) > 1
    console.print(_table("instances", ("id", "state", "owner", "type", "created by", "age",
                                       *(("environment",) if several else ())), [
        (i["id"], i["state"], i["owner"], i["type"], i["created_by"], f"{i['age_seconds']} s",
         *((i.get("environment", ""),) if several else ()))
        for i in snapshot["instances"]]))
    console.print(_table("runners", ("id", "name", "scope", "status", "busy", "labels"), [
        (r["id"], r["name"], r["scope"], r["status"], "busy" if r["busy"] else "idle",
         ",".join(r["labels"])) for r in snapshot["runners"]]))
    console.print(_table("jobs", ("id", "repository", "status", "runner", "labels"), [
        (j["id"], j["repository"], j["conclusion"] or j["status"], j["runner_name"] or "",
         ",".join(j["labels"])) for j in snapshot["jobs"]]))
    return out.getvalue().rstrip("\n")
