"""Shared helpers of the scale-down and pool tests: instances in moto, runners in the GitHub fake,
and invoking the handlers through `chalice.test.Client`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.models import (
    APPLICATION,
    TAG_APPLICATION,
    TAG_BYPASS_REMOVAL,
    TAG_CREATED_BY,
    TAG_ENVIRONMENT,
    TAG_OWNER,
    TAG_TYPE,
)


def launch(stack: Any, owner: str = "acme", runner_type: str = "Org", count: int = 1,
           bypass: bool = False, environment: str | None = None) -> list[str]:
    """Start `count` runner instances in moto tagged as scale-up would; their ids."""
    deployment = stack.deployment
    tags = {
        TAG_APPLICATION: APPLICATION,
        TAG_ENVIRONMENT: environment or deployment.environment,
        TAG_TYPE: runner_type,
        TAG_OWNER: owner,
        TAG_CREATED_BY: "scale-up-lambda",
    }
    if bypass:
        tags[TAG_BYPASS_REMOVAL] = "true"
    answer = stack.boto("ec2").run_instances(
        ImageId=deployment.image_id, MinCount=count, MaxCount=count,
        SubnetId=deployment.subnet_ids[0],
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    return [i["InstanceId"] for i in answer["Instances"]]


def register(stack: Any, instance_id: str, scope: str = "acme", busy: bool = False,
             status: str = "online", prefix: str = "") -> int:
    """Register the runner of `instance_id` in the fake, as config.sh would; its id."""
    fake = stack.github
    if fake.installation_for(scope.split("/")[0]) is None:
        fake.add_installation(scope.split("/")[0])
    runner = fake.create_runner(scope, prefix + instance_id, ["self-hosted"], 1,
                                ephemeral=False, jit=False)
    fake.set_runner_status(runner.id, status)
    if busy:
        fake.set_runner_busy(runner.id, True)
    return int(runner.id)


def states(stack: Any, instance_ids: list[str]) -> dict[str, str]:
    """The EC2 state of each instance."""
    answer = stack.boto("ec2").describe_instances(InstanceIds=instance_ids)
    return {i["InstanceId"]: i["State"]["Name"]
            for r in answer["Reservations"] for i in r["Instances"]}


def runner_ids(stack: Any, scope: str = "acme") -> set[int]:
    """Ids of the runners the fake still has in `scope`."""
    return {r.id for r in stack.github.runners(scope)}


def scheduled_event(client: Client) -> dict[str, Any]:
    """The EventBridge scheduled event that triggers scale_down."""
    return client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                           detail={}, resources=[])


# A stage .chalice/config.json does not define: the test client then adds no environment of
# its own over the devstack one the `env` fixture set.
STAGE = "devstack"


def invoke_scale_down() -> Any:
    """Run the scale_down handler once; its (empty) payload."""
    with Client(app, stage_name=STAGE) as client:
        return client.lambda_.invoke("scale_down", scheduled_event(client)).payload


def invoke_adjust_pool(pool_size: Any) -> Any:
    """Run the adjust_pool handler with `{"poolSize": pool_size}`."""
    with Client(app, stage_name=STAGE) as client:
        return client.lambda_.invoke("adjust_pool", {"poolSize": pool_size}).payload


def later(minutes: float) -> datetime:
    """A clock `minutes` ahead: instances look that much older."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


def run_at(monkeypatch: pytest.MonkeyPatch, minutes: float) -> datetime:
    """Run scale_down with a clock `minutes` ahead of now; that clock."""
    from chalicelib.services import scale_down

    moment = later(minutes)
    monkeypatch.setattr(scale_down, "utcnow", lambda: moment)
    invoke_scale_down()
    return moment
