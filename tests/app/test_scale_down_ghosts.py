"""The ghost rule of scale_down (docs/REFERENCE.md §5.2, §5.4; issue 13 item 2), through
`chalice.test.Client` against devstack.

A runner is deregistered as a ghost only when it is offline, named `<prefix><instance-id>`,
and its instance is known gone: EC2 says shutting-down or terminated, or EC2 did not know it in
two runs at least a scale-down interval apart (the state table remembers the first). Runners of
another deployment's instances, and names this system does not give, are never touched.
"""

from __future__ import annotations

from typing import Any

import pytest
from scale_down_support import launch, register, run_at, runner_ids

UNKNOWN = "i-0123456789abcdef0"  # an instance id EC2 has never heard of


@pytest.fixture(autouse=True)
def org_runners(stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_ORGANIZATION_RUNNERS", "true")
    monkeypatch.setenv("RUNNER_OWNER", "acme")  # the owner is listed without an instance
    stack.github.add_installation("acme")



def absence_marks(stack: Any, env: dict[str, str]) -> dict[str, str]:
    """The state table's absence marks of this environment: instance id -> since."""
    answer = stack.boto("dynamodb").query(
        TableName=env["STATE_TABLE_NAME"], KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"gone#{env['ENVIRONMENT']}"}})
    return {item["sk"]["S"]: item["since"]["S"] for item in answer["Items"]}


def test_ghost_of_an_instance_terminated_out_of_band_goes_in_one_run(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = launch(stack)
    ghost = register(stack, gone[0], status="offline")
    stack.boto("ec2").terminate_instances(InstanceIds=gone)

    run_at(monkeypatch, 10)

    assert ghost not in runner_ids(stack)


def test_runner_of_an_instance_ec2_does_not_know_goes_only_an_interval_later(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = register(stack, UNKNOWN, status="offline")

    first = run_at(monkeypatch, 10)
    assert ghost in runner_ids(stack)
    assert absence_marks(stack, env) == {UNKNOWN: first.strftime("%Y-%m-%dT%H:%M:%SZ")}

    run_at(monkeypatch, 12)
    assert ghost in runner_ids(stack)

    run_at(monkeypatch, 15.5)
    assert ghost not in runner_ids(stack)


def test_runner_whose_instance_ec2_lists_late_is_kept_and_its_mark_forgotten(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A JIT runner exists as soon as scale-up creates it; DescribeInstances may not list its
    # instance yet.
    monkeypatch.setenv("RUNNER_BOOT_TIME_IN_MINUTES", "30")
    stack.aws_faults.hide_new_instances(600)
    fresh = launch(stack)
    runner = register(stack, fresh[0], status="offline")

    run_at(monkeypatch, 0)
    assert runner in runner_ids(stack)
    assert list(absence_marks(stack, env)) == fresh

    stack.aws_faults.hide_new_instances(0)
    register(stack, UNKNOWN, status="offline")  # so that the marks are read again
    run_at(monkeypatch, 6)
    assert runner in runner_ids(stack)
    assert list(absence_marks(stack, env)) == [UNKNOWN]


def test_runner_of_another_deployments_gone_instance_is_never_touched(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Terraform module side by side during a migration: same tag keys, same runner names.
    other = launch(stack, environment="the-modules-env")
    foreign = register(stack, other[0], status="offline")
    stack.boto("ec2").terminate_instances(InstanceIds=other)
    running = launch(stack, environment="the-modules-env")
    booting = register(stack, running[0], status="offline")

    run_at(monkeypatch, 10)
    run_at(monkeypatch, 16)

    assert {foreign, booting} <= runner_ids(stack)


def test_names_this_system_does_not_give_are_never_touched(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    laptop = stack.github.create_runner("acme", "alice-laptop", [], 1, ephemeral=False, jit=False)
    prefixed = register(stack, UNKNOWN, status="offline", prefix="ci-")

    run_at(monkeypatch, 10)
    run_at(monkeypatch, 16)

    assert {laptop.id, prefixed} <= runner_ids(stack)


def test_a_stopped_instance_is_not_gone(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stopped = launch(stack)
    runner = register(stack, stopped[0], status="offline")
    stack.boto("ec2").stop_instances(InstanceIds=stopped)

    run_at(monkeypatch, 10)

    assert runner in runner_ids(stack)


def test_an_unreadable_state_table_makes_no_ghost_by_absence(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = register(stack, UNKNOWN, status="offline")
    run_at(monkeypatch, 10)
    stack.aws_faults.fail_next("dynamodb", "Query", "ThrottlingException", times=20)

    run_at(monkeypatch, 16)  # does not raise: the other steps go on

    assert ghost in runner_ids(stack)


def test_an_unwritable_state_table_marks_nothing_and_deletes_nothing(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = register(stack, UNKNOWN, status="offline")
    stack.aws_faults.fail_next("dynamodb", "PutItem", "InternalServerError", status=500,
                               times=20)

    run_at(monkeypatch, 10)
    run_at(monkeypatch, 16)

    assert ghost in runner_ids(stack)
    assert absence_marks(stack, env) == {}
