"""Shared helpers of the scale-up tests: SQS events, the handler on devstack, what it left."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import chalice.test
import pytest
from chalice.local import LambdaContext
from chalice.test import Client

from app import app
from chalicelib import logs, wiring
from chalicelib.models import TAG_OWNER

ORG = "acme"
REPO = "app"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:github-runners-queued-builds"


def job_body(job_id: int, owner: str = ORG, repo: str = REPO, installation_id: int = 0,
             owner_type: str | None = "Organization", **extra: Any) -> str:
    """A build-queue message body (docs/REFERENCE.md §3)."""
    body: dict[str, Any] = {"id": job_id, "eventType": "workflow_job", "repositoryName": repo,
                            "repositoryOwner": owner, "installationId": installation_id,
                            "labels": ["self-hosted", "linux"], **extra}
    if owner_type is not None:
        body["repoOwnerType"] = owner_type
    return json.dumps(body)


def sqs_event(*bodies: str, receive_count: int = 1, prefix: str = "msg") -> dict[str, Any]:
    """An SQS event whose records are `bodies`, with message ids `<prefix>-0`, `<prefix>-1`..."""
    return {"Records": [{
        "messageId": f"{prefix}-{n}", "receiptHandle": f"handle-{n}", "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count),
                       "SentTimestamp": "1700000000000", "SenderId": "sender",
                       "ApproximateFirstReceiveTimestamp": "1700000000000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN, "awsRegion": "eu-west-1",
    } for n, body in enumerate(bodies)]}


@dataclass
class Outcome:
    """What one scale_up invocation returned and left behind."""

    failures: list[str]
    log: list[dict[str, Any]] = field(default_factory=list)

    def lines(self, message: str) -> list[dict[str, Any]]:
        """The log lines with this constant message."""
        return [line for line in self.log if line.get("message") == message]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(logs.JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


class ScaleUpHarness:
    """Invokes scale_up through chalice's test client and reads devstack afterwards."""

    def __init__(self, stack: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.client = client
        self.monkeypatch = monkeypatch
        self.fleet_calls: list[dict[str, Any]] = []
        self.fleet_tokens: list[str] = []

    def configure(self, **variables: str) -> None:
        """Set environment variables of the function (a fresh container sees them)."""
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
        wiring.reset()

    def unset(self, *names: str) -> None:
        """Remove environment variables of the function."""
        for name in names:
            self.monkeypatch.delenv(name, raising=False)
        wiring.reset()

    def record_fleets(self) -> None:
        """Remember the parameters of every CreateFleet call, and the ClientToken of every
        HTTP attempt (botocore's own retries included)."""
        def remember(params: dict[str, Any], **_: Any) -> None:
            self.fleet_calls.append(json.loads(json.dumps(params, default=str)))

        def attempt(request: Any, **_: Any) -> None:
            fields = dict(parse_qsl(request.body.decode() if isinstance(request.body, bytes)
                                    else str(request.body)))
            self.fleet_tokens.append(fields.get("ClientToken", ""))

        events = wiring.aws("ec2").meta.events
        events.register("provide-client-params.ec2.CreateFleet", remember)
        events.register("before-send.ec2.CreateFleet", attempt)

    def invoke(self, *bodies: str, receive_count: int = 1, prefix: str = "msg") -> Outcome:
        """Run scale_up on one batch of `bodies`; return the ids to retry and the log."""
        return self.invoke_event(sqs_event(*bodies, receive_count=receive_count, prefix=prefix))

    def invoke_event(self, event: dict[str, Any]) -> Outcome:
        """Run scale_up on a prepared SQS event."""
        capture = _Capture()
        root = logging.getLogger("ghr")
        root.addHandler(capture)
        try:
            response = self.client.lambda_.invoke("scale_up", event)
        finally:
            root.removeHandler(capture)
        payload = response.payload
        ids = [item["itemIdentifier"] for item in payload["batchItemFailures"]]
        return Outcome(failures=ids, log=capture.lines)

    def instances(self, owner: str | None = None,
                  states: tuple[str, ...] = ("pending", "running"),
                  environment: str = "devstack") -> list[dict[str, Any]]:
        """Instances of `environment` in `states` (optionally of one owner), as EC2 says."""
        filters = [{"Name": "instance-state-name", "Values": list(states)},
                   {"Name": "tag:ghr:environment", "Values": [environment]}]
        if owner is not None:
            filters.append({"Name": f"tag:{TAG_OWNER}", "Values": [owner]})
        pages = self.stack.boto("ec2").describe_instances(Filters=filters)["Reservations"]
        return [i for r in pages for i in r["Instances"]]

    def token_value(self, instance_id: str) -> str | None:
        """The SecureString the function left for `instance_id`, or None."""
        name = f"{self.stack.deployment.token_path}/{instance_id}"
        try:
            answer = self.stack.boto("ssm").get_parameter(Name=name, WithDecryption=True)
        except self.stack.boto("ssm").exceptions.ParameterNotFound:
            return None
        return str(answer["Parameter"]["Value"])


def tags_of(instance: dict[str, Any]) -> dict[str, str]:
    """An instance's tags as a dict."""
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


@pytest.fixture
def scale_up(stack: Any, env: dict[str, str],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[ScaleUpHarness]:
    """The scale_up function on devstack, with the App installed on `acme`."""
    stack.github.add_installation(ORG)
    # chalice's test context says 3 s are left; a deployed scale_up has 60 (.chalice/config.json).
    monkeypatch.setattr(chalice.test, "LambdaContext",
                        functools.partial(LambdaContext, max_runtime_ms=60_000))
    with Client(app, stage_name="devstack") as client:
        yield ScaleUpHarness(stack, client, monkeypatch)
