"""ec2_events through chalice's test client on devstack (docs/REFERENCE.md §9, issue 15 item 2):
interruption warnings and ending instances of this deployment; everything else ignored."""

from __future__ import annotations

from typing import Any

import pytest
from ec2_events_support import ORG, Harness, ghr, launch
from scale_down_support import states

__all__ = ["ghr"]


def test_an_interrupted_idle_runner_is_deregistered_at_once(
        ghr: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    [instance] = launch(ghr.stack)
    runner = ghr.runner_on(instance)
    token = ghr.token(instance)

    ghr.warning(instance)

    assert [r.id for r in ghr.fake.runners(ORG)] == []
    assert ghr.fake.count(route="DELETE /orgs/{org}/actions/runners/{runner_id}") == 1
    assert ghr.tags(instance)["ghr:interrupted"] == "2027-01-15T08:00:00Z"
    assert not ghr.token_exists(token)
    record = ghr.item("interrupted#devstack", instance)
    assert record is not None and record["since"] == "2027-01-15T08:00:00Z"
    # EC2 takes the instance back itself: not terminated here.
    assert states(ghr.stack, [instance])[instance] == "running"
    [line] = ghr.logged("spot interruption warning")
    assert (line["runner"], line["instance_type"]) == ("deleted", "m1.small")
    metric = [d for d in _emf(capsys.readouterr().out) if "SpotInterruptionWarning" in d]
    assert [(d["InstanceType"], d["AvailabilityZone"]) for d in metric] == [
        ("m1.small", line["availability_zone"])]
    assert runner not in {r.id for r in ghr.fake.runners()}


def test_an_interrupted_busy_runner_is_left_to_its_job(ghr: Harness) -> None:
    [instance] = launch(ghr.stack)
    job = ghr.fake.add_job(ORG, "app", ["self-hosted"])
    runner = ghr.runner_on(instance, busy_with=job)
    ghr.deliver("in_progress", job)

    ghr.warning(instance)

    assert [r.id for r in ghr.fake.runners(ORG)] == [runner]
    assert ghr.fake.count(route="DELETE /orgs/{org}/actions/runners/{runner_id}") == 0
    [line] = ghr.logged("spot interruption warning")
    assert (line["runner"], line["job_id"], line["repository"]) == ("busy", job, f"{ORG}/app")
    assert ghr.item("interrupted#devstack", instance)["jobId"] == job  # type: ignore[index]


@pytest.mark.parametrize("state", ["shutting-down", "terminated"])
def test_an_ending_instance_loses_its_runner_and_token_in_the_same_invocation(
        ghr: Harness, state: str) -> None:
    [instance] = launch(ghr.stack)
    ghr.runner_on(instance)
    token = ghr.token(instance)

    ghr.state_change(instance, state)

    assert ghr.fake.runners(ORG) == []
    assert not ghr.token_exists(token)
    [line] = ghr.logged("runner instance ending")
    assert (line["runner"], line["state"]) == ("deleted", state)


def test_an_ending_instance_whose_runner_is_busy_is_left_to_scale_down(ghr: Harness) -> None:
    [instance] = launch(ghr.stack)
    job = ghr.fake.add_job(ORG, "app", ["self-hosted"])
    runner = ghr.runner_on(instance, busy_with=job)

    ghr.state_change(instance, "shutting-down")

    assert [r.id for r in ghr.fake.runners(ORG)] == [runner]
    assert ghr.logged("runner instance ending")[0]["runner"] == "busy"


@pytest.mark.parametrize("kind", ["warning", "shutting-down"])
def test_another_deployments_instance_changes_nothing(ghr: Harness, kind: str) -> None:
    [instance] = launch(ghr.stack, environment="someone-else")
    runner = ghr.runner_on(instance)
    token = ghr.token(instance)

    if kind == "warning":
        ghr.warning(instance)
    else:
        ghr.state_change(instance, kind)

    assert [r.id for r in ghr.fake.runners(ORG)] == [runner]
    assert ghr.token_exists(token)
    assert "ghr:interrupted" not in ghr.tags(instance)
    assert ghr.item("interrupted#devstack", instance) is None
    [line] = ghr.logged("ec2 event ignored")
    assert line["reason"] == "not an instance of this deployment"
    assert ghr.fake.count(route="GET /orgs/{org}/actions/runners") == 0


@pytest.mark.parametrize("event", [
    {},
    {"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning"},
    {"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
     "detail": {"instance-action": "terminate"}},
    {"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
     "detail": {"instance-id": "../../etc"}},
    {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
     "detail": {"instance-id": "i-0123456789abcdef0"}},
    {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
     "time": 7, "detail": ["i-0123456789abcdef0"]},
])
def test_malformed_events_are_logged_and_ignored_without_raising(
        ghr: Harness, event: dict[str, Any]) -> None:
    [instance] = launch(ghr.stack)
    runner = ghr.runner_on(instance)

    assert ghr.event(event) is None

    [line] = ghr.logged("ec2 event ignored")
    assert line["malformed"] is True and line["level"] == "WARNING"
    assert [r.id for r in ghr.fake.runners(ORG)] == [runner]
    assert ghr.stack.aws_faults.count("ec2", "DescribeInstances") == 0


def test_an_event_of_an_unknown_instance_or_a_running_state_is_ignored(ghr: Harness) -> None:
    ghr.warning("i-0123456789abcdef0")
    [instance] = launch(ghr.stack)
    ghr.runner_on(instance)
    ghr.state_change(instance, "running")

    assert [line["reason"] for line in ghr.logged("ec2 event ignored")] == [
        "not an instance of this deployment", "state running is not an ending state"]
    assert len(ghr.fake.runners(ORG)) == 1


def _emf(output: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in output.splitlines()
            if line.startswith("{") and '"_aws"' in line]
