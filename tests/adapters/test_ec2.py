"""The EC2 adapter against devstack's moto: runner instances by tag, fleets, termination, errors.

RELIABILITY R-EC2-02/03/05, R-UP-02; the fleet-request rules are tested as a pure function.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.ec2 import (
    Ec2,
    FleetError,
    FleetRequest,
    allocation_strategy,
    fleet_parameters,
)
from chalicelib.errors import PermanentError, RetryableError

TAGS = (("ghr:Application", "github-action-runner"), ("ghr:environment", "devstack"),
        ("ghr:Type", "Org"), ("ghr:Owner", "acme"), ("ghr:created_by", "scale-up-lambda"))


def request(stack: Any, count: int = 2, **overrides: Any) -> FleetRequest:
    values: dict[str, Any] = {
        "launch_template_name": stack.deployment.launch_template_name,
        "subnet_ids": stack.deployment.subnet_ids, "instance_types": ("m5.large",),
        "count": count, "tags": TAGS}
    values.update(overrides)
    return FleetRequest(**values)


def owner_tags(owner: str, runner_type: str = "Org",
               environment: str = "devstack") -> tuple[tuple[str, str], ...]:
    return (("ghr:Application", "github-action-runner"), ("ghr:environment", environment),
            ("ghr:Type", runner_type), ("ghr:Owner", owner))


@pytest.fixture
def ec2(stack: Any) -> Ec2:
    return Ec2(stack.boto("ec2"))


def test_allocation_strategy_is_corrected_for_the_capacity_type() -> None:
    assert allocation_strategy("capacity-optimized", "on-demand") == "lowest-price"
    assert allocation_strategy("capacity-optimized-prioritized", "on-demand") == "prioritized"
    assert allocation_strategy("prioritized", "spot") == "capacity-optimized-prioritized"
    assert allocation_strategy("price-capacity-optimized", "spot") == "price-capacity-optimized"
    assert allocation_strategy("lowest-price", "on-demand") == "lowest-price"


def test_fleet_parameters_without_priorities_or_image_for_plain_strategies() -> None:
    params = fleet_parameters(FleetRequest("lt", ("s-1",), ("m5.large",), 1, TAGS))

    assert params["LaunchTemplateConfigs"][0]["Overrides"] == [
        {"SubnetId": "s-1", "InstanceType": "m5.large"}]
    assert "ClientToken" not in params


def test_launch_tags_instances_and_returns_their_ids(stack: Any, ec2: Ec2) -> None:
    result = ec2.launch(request(stack, count=2))

    assert len(result.instance_ids) == 2 and result.errors == ()
    found = ec2.runner_instances("devstack", "acme", "Org")
    assert sorted(i.instance_id for i in found) == sorted(result.instance_ids)
    assert all(i.owner == "acme" and i.runner_type == "Org" and i.state == "running"
               for i in found)
    assert found[0].tag("ghr:created_by") == "scale-up-lambda"


def test_launch_of_nothing_sends_no_request(stack: Any, ec2: Ec2) -> None:
    assert ec2.launch(request(stack, count=0)).instance_ids == ()
    assert stack.aws_faults.count("ec2", "CreateFleet") == 0


def test_launch_reports_fleet_errors_with_their_class(stack: Any, ec2: Ec2) -> None:
    stack.aws_faults.partial_fleet(launched=1, errors=[("InsufficientInstanceCapacity", "no"),
                                                       ("InvalidAMIID.NotFound", "bad")])

    result = ec2.launch(request(stack, count=3))

    assert len(result.instance_ids) == 1
    assert result.errors == (FleetError("InsufficientInstanceCapacity", "no"),
                             FleetError("InvalidAMIID.NotFound", "bad"))
    assert [e.retryable for e in result.errors] == [True, False]


def test_launch_throttled_past_the_client_retries_is_retryable(stack: Any, ec2: Ec2) -> None:
    stack.aws_faults.fail_next("ec2", "CreateFleet", "RequestLimitExceeded", status=503)

    with pytest.raises(RetryableError, match="CreateFleet: RequestLimitExceeded"):
        ec2.launch(request(stack))


def test_launch_with_a_missing_template_is_permanent(stack: Any, ec2: Ec2) -> None:
    stack.aws_faults.fail_next("ec2", "CreateFleet", "InvalidLaunchTemplateName.NotFoundException")

    with pytest.raises(PermanentError, match="InvalidLaunchTemplateName"):
        ec2.launch(request(stack))


def test_runner_instances_filter_by_environment_owner_type_and_state(
        stack: Any, ec2: Ec2) -> None:
    mine = ec2.launch(request(stack, count=2, tags=owner_tags("acme"))).instance_ids
    ec2.launch(request(stack, count=1, tags=owner_tags("beta")))
    ec2.launch(request(stack, count=1, tags=owner_tags("acme/app", "Repo")))
    ec2.launch(request(stack, count=1, tags=owner_tags("acme", environment="other")))
    stack.boto("ec2").run_instances(MinCount=1, MaxCount=1, ImageId=stack.deployment.image_id)
    ec2.terminate([mine[0]])

    assert [i.instance_id for i in ec2.runner_instances("devstack", "acme", "Org")] == [mine[1]]
    assert len(ec2.runner_instances("devstack")) == 3
    assert len(ec2.runner_instances("devstack", states=("shutting-down", "terminated"))) == 1


def test_terminate_sends_one_call_for_all_ids_and_none_for_no_ids(
        stack: Any, ec2: Ec2) -> None:
    ids = ec2.launch(request(stack, count=3)).instance_ids
    before = stack.aws_faults.count("ec2", "TerminateInstances")

    ec2.terminate(ids)
    ec2.terminate([])

    assert stack.aws_faults.count("ec2", "TerminateInstances") == before + 1
    assert ec2.runner_instances("devstack") == []


def test_terminate_errors_are_translated(stack: Any, ec2: Ec2) -> None:
    stack.aws_faults.fail_next("ec2", "TerminateInstances", "RequestLimitExceeded", status=503)
    with pytest.raises(RetryableError):
        ec2.terminate(["i-0123456789abcdef0"])
    stack.aws_faults.fail_next("ec2", "TerminateInstances", "UnauthorizedOperation", status=403)
    with pytest.raises(PermanentError):
        ec2.terminate(["i-0123456789abcdef0"])


def test_tag_adds_a_tag_to_one_instance(stack: Any, ec2: Ec2) -> None:
    [instance_id] = ec2.launch(request(stack, count=1)).instance_ids

    ec2.tag(instance_id, {"ghr:github_runner_id": "42"})

    [instance] = ec2.runner_instances("devstack")
    assert instance.tag("ghr:github_runner_id") == "42"


def test_runner_instances_of_an_owner_ignore_the_case_of_its_tag(stack: Any, ec2: Ec2) -> None:
    upper = ec2.launch(request(stack, count=1, tags=owner_tags("ACME"))).instance_ids
    lower = ec2.launch(request(stack, count=1, tags=owner_tags("acme"))).instance_ids

    found = {i.instance_id for i in ec2.runner_instances("devstack", "Acme", "Org")}

    assert found == {*upper, *lower}


def test_instances_by_id_in_any_environment_leave_unknown_ids_out(stack: Any, ec2: Ec2) -> None:
    [mine] = ec2.launch(request(stack, count=1)).instance_ids
    [other] = ec2.launch(request(stack, count=1, tags=owner_tags("acme", environment="x"))
                         ).instance_ids
    ec2.terminate([other])

    found = ec2.instances_by_id([mine, other, "i-0123456789abcdef0"])

    assert set(found) == {mine, other}
    assert found[other].state in ("shutting-down", "terminated")
    assert found[other].tag("ghr:environment") == "x"


def test_tag_and_untag_instances_in_one_call_each(stack: Any, ec2: Ec2) -> None:
    ids = ec2.launch(request(stack, count=2)).instance_ids

    ec2.tag_instances(ids, "ghr:orphan-suspected", "2026-01-05T12:00:00Z")
    tagged = {i.tag("ghr:orphan-suspected") for i in ec2.runner_instances("devstack")}
    ec2.untag_instances(ids, "ghr:orphan-suspected")

    assert tagged == {"2026-01-05T12:00:00Z"}
    assert {i.tag("ghr:orphan-suspected") for i in ec2.runner_instances("devstack")} == {None}
    assert all(i.tag("ghr:Owner") == "acme" for i in ec2.runner_instances("devstack"))
    assert stack.aws_faults.count("ec2", "CreateTags") == 1
    assert stack.aws_faults.count("ec2", "DeleteTags") == 1
