"""Shared helpers of the ec2_events and re-run tests: EventBridge events, runners on instances,
the handlers through `chalice.test.Client`, what the state table and the logs hold."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from typing import Any

import chalice.test
import pytest
from chalice.local import LambdaContext
from chalice.test import Client
from scale_down_support import launch, register
from webhook_support import _Lines

from app import app
from chalicelib.rules.signature import sign
from devstack.spot import STATE_CHANGE, WARNING, ec2_event

ORG = "acme"
REPO = "app"


class Harness:
    """ec2_events, the webhook and scale_down of one deployment, and what they left."""

    def __init__(self, stack: Any, client: Client, lines: list[str]) -> None:
        self.stack = stack
        self.client = client
        self.lines = lines

    @property
    def fake(self) -> Any:
        return self.stack.github

    def runner_on(self, instance_id: str, busy_with: int | None = None) -> int:
        """An online runner named after `instance_id`; with a job id, running that job."""
        runner = register(self.stack, instance_id)
        if busy_with is not None:
            with self.fake.lock:
                self.fake.runner_records[runner].busy = True
                self.fake.runner_records[runner].job_id = busy_with
                job = self.fake.job_records[busy_with]
                job.status, job.runner_id, job.runner_name = "in_progress", runner, instance_id
                job.started_at = self.fake.clock()
        return runner

    def token(self, instance_id: str) -> str:
        """Write the instance's registration parameter, as scale-up would; its name."""
        name = f"{self.stack.deployment.token_path}/{instance_id}"
        self.stack.boto("ssm").put_parameter(Name=name, Value="--url x --token y",
                                             Type="SecureString", Overwrite=True)
        return name

    def token_exists(self, name: str) -> bool:
        found = self.stack.boto("ssm").get_parameters(Names=[name])["Parameters"]
        return bool(found)

    def event(self, event: Any) -> Any:
        """Invoke ec2_events with `event`, as EventBridge would; its payload."""
        return self.client.lambda_.invoke("ec2_events", event).payload

    def warning(self, instance_id: str) -> Any:
        return self.event(ec2_event(WARNING, {"instance-id": instance_id,
                                              "instance-action": "terminate"}, 1_800_000_000))

    def state_change(self, instance_id: str, state: str) -> Any:
        return self.event(ec2_event(STATE_CHANGE, {"instance-id": instance_id, "state": state},
                                    1_800_000_000))

    def deliver(self, action: str, job_id: int) -> Any:
        """Post GitHub's `workflow_job` delivery of `action` for the fake's job."""
        body = json.dumps(self.fake.workflow_job_payload(action, job_id)).encode()
        secret = self.stack.deployment.webhook_secret
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "workflow_job",
                   "X-GitHub-Delivery": f"{action}-{job_id}-{len(self.lines)}",
                   "X-Hub-Signature-256": sign(secret, body)}
        response = self.client.http.post("/webhook", headers=headers, body=body)
        assert response.status_code == 200, response.body
        return response

    def scale_down(self) -> None:
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
        self.client.lambda_.invoke("scale_down", event)

    def item(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self.stack.boto("dynamodb").get_item(
            TableName=self.stack.deployment.state_table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}})
        raw = answer.get("Item")
        return {k: int(v["N"]) if "N" in v else next(iter(v.values()))
                for k, v in raw.items()} if raw else None

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines
                if json.loads(line).get("message") == message]

    def tags(self, instance_id: str) -> dict[str, str]:
        answer = self.stack.boto("ec2").describe_instances(InstanceIds=[instance_id])
        [instance] = [i for r in answer["Reservations"] for i in r["Instances"]]
        return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


@pytest.fixture
def ghr(stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The deployment's functions on devstack, the App installed on `acme`."""
    stack.github.add_installation(ORG)
    monkeypatch.setenv("ENABLE_ORGANIZATION_RUNNERS", "true")
    # A fresh container: the advice about `actions: write` not given yet.
    monkeypatch.setattr("chalicelib.services.rerun._advised", set())
    monkeypatch.setattr(chalice.test, "LambdaContext",
                        functools.partial(LambdaContext, max_runtime_ms=60_000))
    handler = _Lines()
    root = logging.getLogger("ghr")
    root.addHandler(handler)
    try:
        with Client(app, stage_name="devstack") as client:
            yield Harness(stack, client, handler.lines)
    finally:
        root.removeHandler(handler)


__all__ = ["ORG", "REPO", "Harness", "ghr", "launch"]
