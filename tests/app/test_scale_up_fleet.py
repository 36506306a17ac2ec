"""scale_up's fleet: the CreateFleet request, partial capacity, on-demand failover, errors.

Issue 4 point 5; RELIABILITY R-EC2-02/03/05, R-UP-02, R-Q-06, FI-07..FI-10, BI-29.
"""

from __future__ import annotations

from typing import Any

import pytest
from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up

from devstack.provision import IMAGE_ID

__all__ = ["scale_up"]

EPHEMERAL = {"ENABLE_ORGANIZATION_RUNNERS": "true", "ENABLE_EPHEMERAL_RUNNERS": "true",
             "ENABLE_JIT_CONFIG": "false", "RUNNERS_MAXIMUM_COUNT": "10"}
ICE = ("InsufficientInstanceCapacity", "There is no Spot capacity available")


def jobs(harness: ScaleUpHarness, n: int) -> list[str]:
    return [job_body(harness.stack.github.add_job(ORG, "app", ["self-hosted"]))
            for _ in range(n)]


def test_fleet_request_is_instant_with_every_subnet_and_type_and_tags_on_create(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", INSTANCE_TYPES="m5.large,c5.large",
                       INSTANCE_ALLOCATION_STRATEGY="price-capacity-optimized",
                       INSTANCE_MAX_SPOT_PRICE="0.5")
    scale_up.record_fleets()

    scale_up.invoke(*jobs(scale_up, 2))

    [call] = scale_up.fleet_calls
    assert call["Type"] == "instant"
    [config] = call["LaunchTemplateConfigs"]
    assert config["LaunchTemplateSpecification"] == {
        "LaunchTemplateName": scale_up.stack.deployment.launch_template_name,
        "Version": "$Default"}
    subnets = scale_up.stack.deployment.subnet_ids
    assert [(o["SubnetId"], o["InstanceType"]) for o in config["Overrides"]] == [
        (s, t) for s in subnets for t in ("m5.large", "c5.large")]
    assert call["TargetCapacitySpecification"] == {"TotalTargetCapacity": 2,
                                                   "DefaultTargetCapacityType": "spot"}
    assert call["SpotOptions"] == {"AllocationStrategy": "price-capacity-optimized",
                                   "MaxTotalPrice": "0.5"}
    kinds = {spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec["Tags"]}
             for spec in call["TagSpecifications"]}
    assert set(kinds) == {"instance", "volume"}
    assert kinds["instance"] == kinds["volume"]
    assert kinds["instance"]["ghr:Owner"] == ORG
    assert len(call["ClientToken"]) == 64


def test_on_demand_with_a_spot_only_strategy_is_corrected_and_prioritized_gets_priorities(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", INSTANCE_TYPES="c5.large,m5.large",
                       INSTANCE_TARGET_CAPACITY_TYPE="on-demand",
                       INSTANCE_ALLOCATION_STRATEGY="capacity-optimized-prioritized")
    scale_up.record_fleets()

    outcome = scale_up.invoke(*jobs(scale_up, 1))

    assert outcome.failures == []
    [call] = scale_up.fleet_calls
    assert call["OnDemandOptions"] == {"AllocationStrategy": "prioritized"}
    assert "SpotOptions" not in call
    overrides = call["LaunchTemplateConfigs"][0]["Overrides"]
    assert [(o["InstanceType"], o["Priority"]) for o in overrides[:2]] == [("c5.large", 0.0),
                                                                          ("m5.large", 1.0)]


def test_ami_from_ssm_parameter_overrides_the_template_image(scale_up: ScaleUpHarness) -> None:
    scale_up.stack.boto("ssm").put_parameter(Name="/ami/runner", Value=IMAGE_ID, Type="String")
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", AMI_ID_SSM_PARAMETER_NAME="/ami/runner")
    scale_up.record_fleets()

    outcome = scale_up.invoke(*jobs(scale_up, 1))

    assert outcome.failures == []
    overrides = scale_up.fleet_calls[0]["LaunchTemplateConfigs"][0]["Overrides"]
    assert {o["ImageId"] for o in overrides} == {IMAGE_ID}


def test_missing_ami_parameter_is_a_configuration_error_and_every_message_retried(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", AMI_ID_SSM_PARAMETER_NAME="/ami/none")

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    assert outcome.failures == ["msg-0", "msg-1"]
    assert scale_up.instances() == []


def test_partial_fleet_returns_exactly_the_unfulfilled_messages(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL)
    scale_up.stack.aws_faults.partial_fleet(
        launched=3, errors=[("UnfulfillableCapacity", "Unable to fulfill capacity")])

    outcome = scale_up.invoke(*jobs(scale_up, 5))

    assert outcome.failures == ["msg-3", "msg-4"]
    assert len(scale_up.instances()) == 3
    [result] = outcome.lines("scale-up result")
    assert result["fleet_errors"] == ["UnfulfillableCapacity"]


def test_no_capacity_without_failover_retries_every_message(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL)
    scale_up.stack.aws_faults.partial_fleet(launched=0, errors=[ICE])

    outcome = scale_up.invoke(*jobs(scale_up, 3))

    assert outcome.failures == ["msg-0", "msg-1", "msg-2"]
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 1


def test_on_demand_failover_requests_the_missing_capacity_once_on_demand(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL,
                       ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS='["InsufficientInstanceCapacity"]')
    scale_up.record_fleets()
    scale_up.stack.aws_faults.partial_fleet(launched=1, errors=[ICE])

    outcome = scale_up.invoke(*jobs(scale_up, 3))

    assert outcome.failures == []
    assert len(scale_up.instances()) == 3
    spot, on_demand = scale_up.fleet_calls
    assert spot["TargetCapacitySpecification"]["DefaultTargetCapacityType"] == "spot"
    assert on_demand["TargetCapacitySpecification"] == {"TotalTargetCapacity": 2,
                                                        "DefaultTargetCapacityType": "on-demand"}
    assert on_demand["OnDemandOptions"] == {"AllocationStrategy": "lowest-price"}
    assert on_demand["ClientToken"] != spot["ClientToken"]


def test_failover_not_triggered_by_an_unlisted_error(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL,
                       ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS='["InsufficientInstanceCapacity"]')
    scale_up.stack.aws_faults.partial_fleet(launched=0, errors=[("UnfulfillableCapacity", "x")])

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    assert outcome.failures == ["msg-0", "msg-1"]
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 1


def test_permanent_fleet_error_returns_the_messages_for_retry_with_the_code_logged(
        scale_up: ScaleUpHarness) -> None:
    # A missing image, a refused permission right after a stack update: an operator fixes it,
    # and meanwhile the jobs wait in the queue and then the dead-letter queue, never dropped.
    scale_up.configure(**EPHEMERAL)
    scale_up.stack.aws_faults.partial_fleet(
        launched=0, errors=[("InvalidAMIID.NotFound", "The image id does not exist")])

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    assert outcome.failures == ["msg-0", "msg-1"]
    assert outcome.lines("message dropped") == []
    [line] = outcome.lines("capacity refused for a permanent reason; messages retried")
    assert line["codes"] == ["InvalidAMIID.NotFound"] and line["level"] == "ERROR"


@pytest.mark.parametrize("code", ["InvalidLaunchTemplateName.NotFoundException",
                                  "UnauthorizedOperation", "InvalidParameterValue"])
def test_rejected_fleet_call_is_not_retried_in_process_and_returned_for_retry(
        scale_up: ScaleUpHarness, code: str) -> None:
    scale_up.configure(**EPHEMERAL)
    scale_up.stack.aws_faults.fail_next("ec2", "CreateFleet", code)

    outcome = scale_up.invoke(*jobs(scale_up, 1))

    assert outcome.failures == ["msg-0"]
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 1
    [line] = outcome.lines("fleet launch rejected")
    assert code in line["error"]


def test_throttled_fleet_call_is_retried_with_the_same_client_token(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL)
    scale_up.record_fleets()
    scale_up.stack.aws_faults.fail_next("ec2", "CreateFleet", "RequestLimitExceeded", times=3,
                                        status=503)

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    assert outcome.failures == []
    assert len(scale_up.instances()) == 2
    assert len(scale_up.fleet_tokens) == 4
    assert len(set(scale_up.fleet_tokens)) == 1


def test_redelivered_batch_gets_a_fresh_client_token(scale_up: ScaleUpHarness) -> None:
    # A message returned after its instance was terminated must not get EC2's replay of the
    # terminated instance: the receive count is part of the token.
    scale_up.configure(**EPHEMERAL)
    scale_up.record_fleets()
    bodies = jobs(scale_up, 1)
    # The first instance gets no registration, so it is terminated and the message retried.
    scale_up.stack.aws_faults.fail_next("ssm", "PutParameter", "AccessDeniedException")

    assert scale_up.invoke(*bodies, receive_count=1).failures == ["msg-0"]
    assert scale_up.invoke(*bodies, receive_count=2).failures == []

    first, second = (call["ClientToken"] for call in scale_up.fleet_calls)
    assert first != second


def test_fleet_errors_are_counted_by_code(scale_up: ScaleUpHarness, capsys: Any) -> None:
    scale_up.configure(**EPHEMERAL)
    scale_up.stack.aws_faults.partial_fleet(launched=0, errors=[ICE])

    scale_up.invoke(*jobs(scale_up, 1))

    out = capsys.readouterr().out
    assert '"FleetErrors": 1.0' in out and '"code": "InsufficientInstanceCapacity"' in out
