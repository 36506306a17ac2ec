"""scale_down through `chalice.test.Client` against devstack: moto for EC2/SSM, the GitHub fake."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from scale_down_support import (
    invoke_scale_down,
    later,
    launch,
    register,
    runner_ids,
    states,
)

from chalicelib.errors import ConfigError, RetryableError
from chalicelib.services import scale_down

DELETE_ORG_RUNNER = "DELETE /orgs/{org}/actions/runners/{runner_id}"
LIST_ORG_RUNNERS = "GET /orgs/{org}/actions/runners"
LIST_REPO_RUNNERS = "GET /repos/{owner}/{repo}/actions/runners"


@pytest.fixture(autouse=True)
def org_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment runs org runners, as most instances here are: scale-down's tokens are
    limited to them (repository ones still work, through an unscoped token)."""
    monkeypatch.setenv("ENABLE_ORGANIZATION_RUNNERS", "true")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Instances look ten minutes old: past the default boot and minimum running times."""
    monkeypatch.setattr(scale_down, "utcnow", lambda: later(10))


def terminations(stack: Any) -> int:
    return int(stack.aws_faults.count("ec2", "TerminateInstances"))


def test_scale_down_deregisters_idle_runners_then_terminates_them_in_one_call(
        stack: Any, env: dict[str, str], clock: None) -> None:
    idle = launch(stack, count=2)
    busy = launch(stack)
    idle_runners = {register(stack, i) for i in idle}
    busy_runner = register(stack, busy[0], busy=True)

    invoke_scale_down()

    assert states(stack, idle) == {i: "terminated" for i in idle}
    assert states(stack, busy) == {busy[0]: "running"}
    assert runner_ids(stack) == {busy_runner}
    assert not idle_runners & runner_ids(stack)
    assert terminations(stack) == 1


def test_scale_down_keeps_runners_younger_than_minimum_running_time(
        stack: Any, env: dict[str, str]) -> None:
    young = launch(stack)
    runner = register(stack, young[0])

    invoke_scale_down()  # real clock: the instance is seconds old, the minimum is 5 minutes

    assert states(stack, young) == {young[0]: "running"}
    assert runner_ids(stack) == {runner}
    assert terminations(stack) == 0


def test_scale_down_race_runner_takes_a_job_before_delete_keeps_instance(
        stack: Any, env: dict[str, str], clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    runner = register(stack, instance[0])
    fake = stack.github
    real_delete = fake.delete_runner

    def job_assigned_first(scope: str, runner_id: int) -> None:
        # GitHub hands the runner a job after the listing said idle, just before the DELETE.
        fake.set_runner_busy(runner_id, True)
        real_delete(scope, runner_id)

    monkeypatch.setattr(fake, "delete_runner", job_assigned_first)

    invoke_scale_down()

    assert fake.count(DELETE_ORG_RUNNER, method="DELETE") == 1  # answered 422
    assert states(stack, instance) == {instance[0]: "running"}
    assert runner_ids(stack) == {runner}
    assert terminations(stack) == 0


def test_scale_down_deregistration_failure_keeps_the_instance(
        stack: Any, env: dict[str, str], clock: None) -> None:
    instance = launch(stack)
    runner = register(stack, instance[0])
    stack.github.fail_next(DELETE_ORG_RUNNER, n=10, status=502)

    invoke_scale_down()

    assert states(stack, instance) == {instance[0]: "running"}
    assert runner_ids(stack) == {runner}
    assert terminations(stack) == 0


def test_scale_down_deregisters_and_terminates_runner_that_never_came_online(
        stack: Any, env: dict[str, str], clock: None) -> None:
    instance = launch(stack)
    register(stack, instance[0], status="offline")

    invoke_scale_down()

    assert states(stack, instance) == {instance[0]: "terminated"}
    assert runner_ids(stack) == set()


def test_scale_down_keeps_booting_instance_without_runner(stack: Any, env: dict[str, str]) -> None:
    stack.github.add_installation("acme")
    booting = launch(stack)

    invoke_scale_down()

    assert states(stack, booting) == {booting[0]: "running"}


def test_scale_down_deregisters_ghost_of_an_instance_terminated_out_of_band(
        stack: Any, env: dict[str, str], clock: None) -> None:
    gone = launch(stack)
    ghost = register(stack, gone[0], status="offline")
    stack.boto("ec2").terminate_instances(InstanceIds=gone)
    stack.aws_faults.reset()

    invoke_scale_down()

    assert ghost not in runner_ids(stack)
    assert terminations(stack) == 0


def test_scale_down_deletes_stale_token_parameters_ten_per_call(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale_down, "utcnow", lambda: later(2))
    stack.github.add_installation("acme")
    live = launch(stack)
    ssm = stack.boto("ssm")
    path = env["SSM_TOKEN_PATH"]
    ssm.put_parameter(Name=f"{path}/{live[0]}", Value="token", Type="SecureString")
    dead = [f"{path}/i-{n:017x}" for n in range(12)]
    for name in dead:
        ssm.put_parameter(Name=name, Value="token", Type="SecureString")
    stack.aws_faults.reset()

    invoke_scale_down()

    left = {p["Name"] for p in ssm.describe_parameters(
        ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [path]}])["Parameters"]}
    assert left == {f"{path}/{live[0]}"}
    assert stack.aws_faults.count("ssm", "DeleteParameters") == 2


def test_scale_down_one_owner_failing_does_not_stop_another(
        stack: Any, env: dict[str, str], clock: None) -> None:
    acme = launch(stack, owner="acme")
    register(stack, acme[0])
    beta = launch(stack, owner="beta/app", runner_type="Repo")
    beta_runner = register(stack, beta[0], scope="beta/app")
    stack.github.fail_next(LIST_REPO_RUNNERS, n=8, status=502)  # GitHub down for beta/app

    invoke_scale_down()  # does not raise: one owner's failure is logged

    assert states(stack, acme) == {acme[0]: "terminated"}
    assert states(stack, beta) == {beta[0]: "running"}
    assert runner_ids(stack, "beta/app") == {beta_runner}


def test_scale_down_lists_an_owner_once_whatever_the_case_of_its_tags(
        stack: Any, env: dict[str, str], clock: None) -> None:
    upper = launch(stack, owner="ACME")
    lower = launch(stack, owner="acme")
    busy = register(stack, upper[0], busy=True)
    register(stack, lower[0])

    invoke_scale_down()

    assert stack.github.count(LIST_ORG_RUNNERS) == 1
    assert states(stack, upper + lower) == {upper[0]: "running", lower[0]: "terminated"}
    assert runner_ids(stack) == {busy}


def test_scale_down_github_down_for_every_owner_fails_the_invocation_without_terminating(
        stack: Any, env: dict[str, str], clock: None) -> None:
    instance = launch(stack)
    register(stack, instance[0])
    stack.github.fail_next(LIST_ORG_RUNNERS, n=8, status=502)

    with pytest.raises(RetryableError):
        invoke_scale_down()

    assert states(stack, instance) == {instance[0]: "running"}
    assert terminations(stack) == 0


@pytest.mark.parametrize("config", [
    '[{"cron": "* * * *", "idleCount": 0}]',
    '[{"cron": "* * * * *", "timeZone": "Europe/Atlantis", "idleCount": 0}]',
    "not json",
])
def test_scale_down_invalid_idle_config_fails_the_invocation_and_terminates_nothing(
        stack: Any, env: dict[str, str], clock: None, monkeypatch: pytest.MonkeyPatch,
        config: str) -> None:
    instance = launch(stack)
    register(stack, instance[0])
    monkeypatch.setenv("SCALE_DOWN_CONFIG", config)

    with pytest.raises(ConfigError) as caught:
        invoke_scale_down()

    assert "SCALE_DOWN_CONFIG" in str(caught.value)
    assert states(stack, instance) == {instance[0]: "running"}
    assert terminations(stack) == 0


def test_scale_down_keeps_idle_count_of_the_active_window_newest_first_kept(
        stack: Any, env: dict[str, str], clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALE_DOWN_CONFIG", json.dumps(
        [{"cron": "* * * * *", "timeZone": "Europe/Amsterdam", "idleCount": 1}]))
    oldest = launch(stack)
    time.sleep(1.1)  # moto's launch times have one-second resolution
    newest = launch(stack)
    for instance in oldest + newest:
        register(stack, instance)

    invoke_scale_down()

    assert states(stack, oldest + newest) == {oldest[0]: "terminated", newest[0]: "running"}


def test_scale_down_never_touches_bypass_removal_instances(
        stack: Any, env: dict[str, str], clock: None) -> None:
    idle = launch(stack, bypass=True)
    silent = launch(stack, bypass=True)
    runner = register(stack, idle[0])
    stack.github.add_installation("acme")

    invoke_scale_down()

    assert states(stack, idle + silent) == {idle[0]: "running", silent[0]: "running"}
    assert runner_ids(stack) == {runner}
    assert stack.github.count(DELETE_ORG_RUNNER) == 0


def test_scale_down_termination_failure_is_reported_and_recovered_next_run(
        stack: Any, env: dict[str, str], clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    register(stack, instance[0])
    stack.aws_faults.fail_next("ec2", "TerminateInstances", "UnauthorizedOperation", status=403)

    with pytest.raises(RetryableError):
        invoke_scale_down()
    assert states(stack, instance) == {instance[0]: "running"}
    assert runner_ids(stack) == set()  # deregistered: the instance is now a runner-less orphan

    invoke_scale_down()  # marked as a suspected orphan: no runner any more
    assert states(stack, instance) == {instance[0]: "running"}

    monkeypatch.setattr(scale_down, "utcnow", lambda: later(16))
    invoke_scale_down()  # an interval later, and GitHub has no runner of that name
    assert states(stack, instance) == {instance[0]: "terminated"}
