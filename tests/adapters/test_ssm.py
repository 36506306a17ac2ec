"""The SSM adapter against devstack's moto: runner configs, tiers, strings, listing, deletion.

RELIABILITY R-SSM-05 (throttling translated after the client's retries), R-SSM-06 (tier by size).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.ssm import Ssm, tier_for
from chalicelib.errors import PermanentError, RetryableError

PATH = "/github-action-runners/devstack/runners/tokens"


@pytest.fixture
def ssm(stack: Any) -> Ssm:
    return Ssm(stack.boto("ssm"))


def describe(stack: Any, name: str) -> dict[str, Any]:
    [meta] = stack.boto("ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    return dict(meta)


def test_tier_is_standard_up_to_4_kb_and_advanced_above() -> None:
    assert tier_for("x" * 3999) == "Standard"
    assert tier_for("x" * 4096) == "Standard"
    assert tier_for("x" * 4097) == "Advanced"
    assert tier_for("é" * 2100) == "Advanced"  # bytes, not characters


@pytest.mark.parametrize(("size", "tier"), [(3999, "Standard"), (4000, "Standard"),
                                            (8000, "Advanced")])
def test_put_runner_config_writes_a_secure_string_in_the_tier_its_size_needs(
        stack: Any, ssm: Ssm, size: int, tier: str) -> None:
    name = f"{PATH}/i-{size}"

    ssm.put_runner_config(name, "x" * size)

    meta = describe(stack, name)
    assert (meta["Type"], meta["Tier"]) == ("SecureString", tier)
    assert ssm.get_string(name) == "x" * size


def test_put_runner_config_with_tags_creates_then_overwrites(stack: Any, ssm: Ssm) -> None:
    name = f"{PATH}/i-1"

    ssm.put_runner_config(name, "first", tags={"InstanceId": "i-1"})
    ssm.put_runner_config(name, "second", tags={"InstanceId": "i-1"})

    assert ssm.get_string(name) == "second"
    tags = stack.boto("ssm").list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
    assert tags["TagList"] == [{"Key": "InstanceId", "Value": "i-1"}]


def test_put_runner_config_failure_never_carries_the_value(stack: Any, ssm: Ssm) -> None:
    stack.aws_faults.fail_next("ssm", "PutParameter", "ThrottlingException")

    with pytest.raises(RetryableError) as caught:
        ssm.put_runner_config(f"{PATH}/i-2", "--token SECRETTOKEN")

    assert "SECRETTOKEN" not in str(caught.value)
    assert f"{PATH}/i-2" in str(caught.value)


def test_access_denied_is_permanent(stack: Any, ssm: Ssm) -> None:
    stack.aws_faults.fail_next("ssm", "PutParameter", "AccessDeniedException")

    with pytest.raises(PermanentError, match="AccessDeniedException"):
        ssm.put_string("/x/y", "v")


def test_get_string_of_a_missing_parameter_is_none(ssm: Ssm) -> None:
    assert ssm.get_string("/does/not/exist") is None


def test_put_string_writes_a_plain_string(stack: Any, ssm: Ssm) -> None:
    ssm.put_string("/config/group", "7")
    ssm.put_string("/config/group", "8")

    assert describe(stack, "/config/group")["Type"] == "String"
    assert ssm.get_string("/config/group") == "8"


def test_parameters_under_lists_every_page_recursively(stack: Any, ssm: Ssm) -> None:
    for n in range(55):
        ssm.put_string(f"{PATH}/i-{n:03d}", "v")
    ssm.put_string(f"{PATH}/nested/i-x", "v")
    ssm.put_string("/elsewhere/i-y", "v")

    found = ssm.parameters_under(PATH)

    assert len(found) == 56
    assert all(p.name.startswith(PATH + "/") for p in found)
    assert all(p.last_modified is not None for p in found)


def test_delete_parameters_in_chunks_of_ten_ignoring_missing_names(
        stack: Any, ssm: Ssm) -> None:
    names = [f"{PATH}/i-{n:02d}" for n in range(25)]
    for name in names:
        ssm.put_string(name, "v")
    before = stack.aws_faults.count("ssm", "DeleteParameters")

    ssm.delete_parameters([*names, f"{PATH}/gone"])

    assert stack.aws_faults.count("ssm", "DeleteParameters") == before + 3
    assert ssm.parameters_under(PATH) == []
