"""End to end on devstack (issue 7 "Done when"): GitHub queues a job and delivers the webhook →
build queue → scale_up → instance → the runner simulation boots it, registers, runs the job.

GitHub is the fake: its job events are delivered, signed, to the webhook route, the way GitHub
delivers them. The queue is moto's: the test receives what the webhook sent and hands it to
scale_up as the event source mapping would.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from typing import Any

import chalice.test
import pytest
from chalice.local import LambdaContext
from chalice.test import Client
from webhook_support import headers

from app import app
from devstack.runner_sim import RunnerSimulation

ORG = "acme"
REPO = "app"
LABELS = ["self-hosted", "linux"]


class Clock:
    """The simulation's clock, moved by hand from the wall clock (moto's launch times)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class System:
    """The deployed system on devstack, with GitHub delivering job events to its webhook."""

    def __init__(self, stack: Any, client: Client) -> None:
        self.stack = stack
        self.client = client
        self.clock = Clock()
        self.deliveries: list[tuple[str, int]] = []  # (action, status)
        self.sim = RunnerSimulation(stack.github, stack.boto("ec2"), stack.boto("ssm"),
                                    environment=stack.deployment.environment,
                                    token_path=stack.deployment.token_path, clock=self.clock)
        stack.github.on_job_event = self._deliver

    def _deliver(self, action: str, job: dict[str, Any]) -> None:
        """GitHub's webhook delivery of a job event, signed with the deployment's secret."""
        body = json.dumps(self.stack.github.workflow_job_payload(action, job["id"])).encode()
        response = self.client.http.post(
            "/webhook", headers=headers(body, self.stack.deployment.webhook_secret), body=body)
        self.deliveries.append((action, response.status_code))

    def drain_queue_into_scale_up(self) -> list[str]:
        """Hand every build-queue message to scale_up; return the bodies it was given."""
        sqs = self.stack.boto("sqs")
        url = self.stack.deployment.queue_url
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not received:
            return []
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "eventSource": "aws:sqs", "awsRegion": "eu-west-1",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:devstack-queued-builds",
        } for m in received]}
        result = self.client.lambda_.invoke("scale_up", event).payload
        retry = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        assert retry == set(), result
        for m in received:  # what the event source mapping does with the records not returned
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return [m["Body"] for m in received]

    def instances(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        """The environment's instances in `states`."""
        reservations = self.stack.boto("ec2").describe_instances(Filters=[
            {"Name": "tag:ghr:environment", "Values": [self.stack.deployment.environment]},
            {"Name": "instance-state-name", "Values": list(states)},
        ])["Reservations"]
        return [i for r in reservations for i in r["Instances"]]


@pytest.fixture
def system(stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    """The system on devstack with the App installed on the org."""
    stack.github.add_installation(ORG)
    # chalice's test context says 3 s are left; a deployed scale_up has 60.
    monkeypatch.setattr(chalice.test, "LambdaContext",
                        functools.partial(LambdaContext, max_runtime_ms=60_000))
    with Client(app, stage_name="devstack") as client:
        yield System(stack, client)
    stack.github.on_job_event = None


@pytest.mark.parametrize("mode", [
    {"ENABLE_EPHEMERAL_RUNNERS": "true"},                                 # JIT config
    {"ENABLE_EPHEMERAL_RUNNERS": "true", "ENABLE_JIT_CONFIG": "false"},  # config.sh --ephemeral
    {"ENABLE_EPHEMERAL_RUNNERS": "false"},                                # reusable runner
], ids=["ephemeral-jit", "ephemeral-config", "reusable"])
def test_queued_job_is_run_by_a_runner_the_system_launched(
        system: System, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], mode: dict[str, str]) -> None:
    for name, value in {"ENABLE_ORGANIZATION_RUNNERS": "true", **mode}.items():
        monkeypatch.setenv(name, value)
    github = system.stack.github

    job_id = github.add_job(ORG, REPO, LABELS, duration=30)     # GitHub delivers `queued`
    assert system.deliveries == [("queued", 201)]

    [body] = system.drain_queue_into_scale_up()
    assert json.loads(body) == {
        "id": job_id, "eventType": "workflow_job", "repositoryName": REPO,
        "repositoryOwner": ORG, "installationId": github.installation_id(ORG),
        "repoOwnerType": "Organization", "labels": LABELS}
    [instance] = system.instances(("pending", "running"))
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert (tags["ghr:Owner"], tags["ghr:Type"]) == (ORG, "Org")

    system.clock.now = time.time()                     # the simulation starts after launch
    system.sim.step()                                  # boots, reads its config, registers
    system.sim.step()                                  # GitHub hands it the job: `in_progress`
    assert github.jobs[job_id].status == "in_progress"
    assert github.jobs[job_id].runner_name == instance["InstanceId"]
    system.clock.now += 30
    system.sim.step()                                  # the job finishes: `completed`
    assert github.jobs[job_id].status == "completed"
    assert system.deliveries == [("queued", 201), ("in_progress", 200), ("completed", 200)]

    ephemeral = mode["ENABLE_EPHEMERAL_RUNNERS"] == "true"
    kinds = [kind for _, kind, _ in system.sim.events]
    assert kinds == ["registered", "job started", "job completed",
                     *(["terminated"] if ephemeral else [])]
    assert len(system.instances(("running",))) == (0 if ephemeral else 1)
    # The webhook reported how long the job waited for the runner, and how long it ran.
    output = capsys.readouterr().out
    assert '"JobQueuedSeconds"' in output and '"JobRunSeconds": 30.0' in output
    assert system.stack.aws_faults.count("sqs", "SendMessage") == 1
