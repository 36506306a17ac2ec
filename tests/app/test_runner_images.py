"""AMI selection (issue 18 item 2) against devstack's moto: AMI_ID_SSM_PARAMETER_NAME first, then
the newest image of AMI_FILTER owned by AMI_OWNERS (one DescribeImages, remembered 15 minutes
per container), then the launch template's own; a filter matching nothing is retried."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.aws.ec2 import Ec2, FleetRequest
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, RetryableError
from chalicelib.services.images import CACHE_SECONDS, ImageNotFound, ImageResolver
from devstack import REGION
from devstack.provision import IMAGE_ID

ACCOUNT = "123456789012"


def register_image(stack: Any, name: str, created: datetime) -> str:
    """An image of this account in moto, created at `created` (moto stamps every image with
    the second it was registered, so the test sets the time itself)."""
    from moto.ec2.models import ec2_backends

    image_id = str(stack.boto("ec2").register_image(Name=name,
                                                    RootDeviceName="/dev/xvda")["ImageId"])
    ec2_backends[ACCOUNT][REGION].amis[image_id].creation_date = created
    return image_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def resolver(env: dict[str, str]) -> tuple[ImageResolver, Clock]:
    clock = Clock()
    return ImageResolver(Ec2(wiring.aws("ec2")), Ssm(wiring.aws("ssm")), clock=clock), clock


def settings_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    return wiring.settings("scale_up")


def describe_images(stack: Any) -> int:
    return int(stack.aws_faults.count("ec2", "DescribeImages"))


def test_the_newest_image_of_the_filter_and_owners_is_launched(
        stack: Any, resolver: tuple[ImageResolver, Clock],
        monkeypatch: pytest.MonkeyPatch) -> None:
    older = register_image(stack, "runner-2024-01", datetime(2024, 1, 5, tzinfo=UTC))
    newest = register_image(stack, "runner-2024-03", datetime(2024, 3, 5, tzinfo=UTC))
    register_image(stack, "runner-2024-02", datetime(2024, 2, 5, tzinfo=UTC))
    register_image(stack, "other-2025-01", datetime(2025, 1, 5, tzinfo=UTC))
    settings = settings_with(monkeypatch, AMI_FILTER='{"name": ["runner-*"]}', AMI_OWNERS="self")

    image = resolver[0].image_id(settings)

    assert image == newest != older
    assert describe_images(stack) == 1
    ec2 = Ec2(wiring.aws("ec2"))
    result = ec2.launch(FleetRequest(
        launch_template_name=stack.deployment.launch_template_name,
        subnet_ids=stack.deployment.subnet_ids, instance_types=("m5.large",), count=1,
        tags=(("ghr:Application", "github-action-runner"), ("ghr:environment", "devstack")),
        image_id=image))
    [reservation] = stack.boto("ec2").describe_instances(
        InstanceIds=list(result.instance_ids))["Reservations"]
    assert reservation["Instances"][0]["ImageId"] == newest


def test_owners_narrow_the_filter(stack: Any, resolver: tuple[ImageResolver, Clock],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    register_image(stack, "runner-1", datetime(2024, 1, 5, tzinfo=UTC))
    settings = settings_with(monkeypatch, AMI_FILTER='{"name": ["runner-*"]}',
                             AMI_OWNERS="amazon")

    with pytest.raises(ImageNotFound):
        resolver[0].image_id(settings)


def test_the_lookup_is_remembered_for_fifteen_minutes(
        stack: Any, resolver: tuple[ImageResolver, Clock],
        monkeypatch: pytest.MonkeyPatch) -> None:
    images, clock = resolver
    first = register_image(stack, "runner-1", datetime(2024, 1, 5, tzinfo=UTC))
    settings = settings_with(monkeypatch, AMI_FILTER='{"name": ["runner-*"]}', AMI_OWNERS="self")
    assert images.image_id(settings) == first
    second = register_image(stack, "runner-2", datetime(2024, 2, 5, tzinfo=UTC))

    clock.now += CACHE_SECONDS - 1
    assert images.image_id(settings) == first
    assert describe_images(stack) == 1
    clock.now += 1
    assert images.image_id(settings) == second
    assert describe_images(stack) == 2


def test_a_filter_matching_nothing_is_a_logged_error_and_retryable(
        stack: Any, resolver: tuple[ImageResolver, Clock], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_with(monkeypatch, AMI_FILTER='{"name": ["nothing-*"]}',
                             AMI_OWNERS="self")

    with caplog.at_level(logging.ERROR, logger="ghr"), pytest.raises(RetryableError,
                                                                     match="nothing-"):
        resolver[0].image_id(settings)
    with pytest.raises(ImageNotFound):  # not remembered: the next batch looks again
        resolver[0].image_id(settings)

    assert [r.getMessage() for r in caplog.records] == ["no AMI matches the filter"] * 2
    assert describe_images(stack) == 2


def test_the_ssm_parameter_comes_before_the_filter(
        stack: Any, resolver: tuple[ImageResolver, Clock],
        monkeypatch: pytest.MonkeyPatch) -> None:
    register_image(stack, "runner-1", datetime(2024, 1, 5, tzinfo=UTC))
    stack.boto("ssm").put_parameter(Name="/ami/runner", Value=IMAGE_ID, Type="String")
    settings = settings_with(monkeypatch, AMI_ID_SSM_PARAMETER_NAME="/ami/runner",
                             AMI_FILTER='{"name": ["runner-*"]}', AMI_OWNERS="self")

    assert resolver[0].image_id(settings) == IMAGE_ID
    assert describe_images(stack) == 0
    missing = settings_with(monkeypatch, AMI_ID_SSM_PARAMETER_NAME="/ami/none")
    with pytest.raises(ConfigError, match="/ami/none"):
        resolver[0].image_id(missing)


def test_neither_leaves_the_launch_templates_image(
        stack: Any, resolver: tuple[ImageResolver, Clock],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolver[0].image_id(settings_with(monkeypatch)) is None
    assert describe_images(stack) == 0


def test_wiring_keeps_one_resolver_per_container(env: dict[str, str]) -> None:
    assert wiring.image_resolver() is wiring.image_resolver()
    first = wiring.image_resolver()
    wiring.reset()
    assert wiring.image_resolver() is not first


def test_scale_up_launches_the_newest_image_of_the_filter(stack: Any, env: dict[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from scale_up_support import ORG, job_body, sqs_event

    from app import app

    newest = register_image(stack, "runner-2", datetime(2024, 2, 5, tzinfo=UTC))
    register_image(stack, "runner-1", datetime(2024, 1, 5, tzinfo=UTC))
    settings_with(monkeypatch, ENABLE_ORGANIZATION_RUNNERS="true",
                  AMI_FILTER='{"name": ["runner-*"]}', AMI_OWNERS="self")
    stack.github.add_installation(ORG)
    job = stack.github.add_job(ORG, "app", ["self-hosted"])

    from chalice.test import Client

    with Client(app, stage_name="devstack") as client:
        payload = client.lambda_.invoke("scale_up", sqs_event(job_body(job))).payload

    assert payload["batchItemFailures"] == []
    [reservation] = stack.boto("ec2").describe_instances(Filters=[
        {"Name": "tag:ghr:Owner", "Values": [ORG]}])["Reservations"]
    assert reservation["Instances"][0]["ImageId"] == newest
    assert describe_images(stack) == 1


def test_a_filter_matching_nothing_keeps_the_batch_for_retry(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from scale_up_support import ORG, job_body, sqs_event

    from app import app

    settings_with(monkeypatch, ENABLE_ORGANIZATION_RUNNERS="true",
                  AMI_FILTER='{"name": ["nothing-*"]}', AMI_OWNERS="self")
    stack.github.add_installation(ORG)
    job = stack.github.add_job(ORG, "app", ["self-hosted"])

    from chalice.test import Client

    with Client(app, stage_name="devstack") as client:
        payload = client.lambda_.invoke("scale_up", sqs_event(job_body(job))).payload

    assert payload["batchItemFailures"] == [{"itemIdentifier": "msg-0"}]
    assert describe_images(stack) == 1
    assert stack.boto("ec2").describe_instances(Filters=[
        {"Name": "tag:ghr:Owner", "Values": [ORG]}])["Reservations"] == []


def test_the_pool_launches_the_newest_image_of_the_filter(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from scale_down_support import invoke_adjust_pool

    newest = register_image(stack, "runner-2", datetime(2024, 2, 5, tzinfo=UTC))
    settings_with(monkeypatch, RUNNER_OWNER="acme", AMI_FILTER='{"name": ["runner-*"]}',
                  AMI_OWNERS="self")
    stack.github.add_installation("acme")

    invoke_adjust_pool(1)

    [reservation] = stack.boto("ec2").describe_instances(Filters=[
        {"Name": "tag:ghr:created_by", "Values": ["pool-lambda"]}])["Reservations"]
    assert reservation["Instances"][0]["ImageId"] == newest
