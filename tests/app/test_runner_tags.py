"""RUNNER_EC2_TAGS (issue 18 item 1): the user's tags reach every launched instance and its
volumes through the CreateFleet tag specifications, next to the ghr:* tags, from scale_up and
from the pool alike (both launch through services/launcher.py with rules/launch.runner_tags)."""

from __future__ import annotations

from typing import Any

import pytest
from scale_down_support import invoke_adjust_pool
from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up, tags_of

from chalicelib import wiring

__all__ = ["scale_up"]

USER_TAGS = '{"Team": "ci", "CostCenter": "4711", "Name": "ci-runner"}'


def spec_tags(call: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec["Tags"]}
            for spec in call["TagSpecifications"]}


def test_scale_up_tags_instances_and_volumes_with_the_user_tags_beside_ours(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNER_EC2_TAGS=USER_TAGS)
    scale_up.record_fleets()
    job = scale_up.stack.github.add_job(ORG, "app", ["self-hosted"])

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == []
    [call] = scale_up.fleet_calls
    kinds = spec_tags(call)
    assert kinds["instance"] == kinds["volume"]
    assert kinds["instance"].pop("ghr:reservation")  # the cap reservation it launched under
    assert kinds["instance"] == {
        "ghr:Application": "github-action-runner", "ghr:environment": "devstack",
        "ghr:Type": "Org", "ghr:Owner": ORG, "ghr:created_by": "scale-up-lambda",
        "Team": "ci", "CostCenter": "4711", "Name": "ci-runner"}
    [instance] = scale_up.instances()
    assert {k: v for k, v in tags_of(instance).items() if not k.startswith("ghr:")} == {
        "Team": "ci", "CostCenter": "4711", "Name": "ci-runner"}
    assert tags_of(instance)["ghr:Owner"] == ORG


def test_a_ghr_user_tag_launches_nothing_and_keeps_the_messages(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true",
                       RUNNER_EC2_TAGS="ghr:bypass-removal=true")
    job = scale_up.stack.github.add_job(ORG, "app", ["self-hosted"])

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == ["msg-0"]
    assert scale_up.instances() == []
    [error] = outcome.lines("configuration error")
    assert "RUNNER_EC2_TAGS: tag 'ghr:bypass-removal'" in error["problems"][0]


def test_the_pool_tags_its_instances_with_the_user_tags(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_OWNER", "acme")
    monkeypatch.setenv("RUNNER_EC2_TAGS", "Team=ci,CostCenter=4711")
    wiring.reset()
    stack.github.add_installation("acme")
    calls: list[dict[str, Any]] = []
    wiring.aws("ec2").meta.events.register("provide-client-params.ec2.CreateFleet",
                                           lambda params, **_: calls.append(params))

    invoke_adjust_pool(1)

    [reservation] = stack.boto("ec2").describe_instances(Filters=[
        {"Name": "tag:ghr:created_by", "Values": ["pool-lambda"]}])["Reservations"]
    [instance] = reservation["Instances"]
    tags = tags_of(instance)
    assert (tags["Team"], tags["CostCenter"], tags["ghr:Owner"]) == ("ci", "4711", "acme")
    # moto does not tag volumes from a fleet's specifications: the request says it.
    [call] = calls
    volume = spec_tags(call)["volume"]
    assert (volume["Team"], volume["CostCenter"], volume["ghr:created_by"]) == (
        "ci", "4711", "pool-lambda")
