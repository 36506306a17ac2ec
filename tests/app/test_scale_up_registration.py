"""scale_up's registration: config.sh arguments or JIT configs in SSM, failures, and a runner
that boots from them and runs its job in devstack's runner simulation.

Issue 4 point 6 and "Done when"; RELIABILITY R-UP-06, R-SSM-05, FI-01, FI-11.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up, tags_of

from chalicelib import wiring
from chalicelib.services.write_budget import WINDOW_SECONDS
from devstack.runner_sim import RunnerSimulation

__all__ = ["scale_up"]

JIT_ROUTE = "POST /orgs/{org}/actions/runners/generate-jitconfig"
TOKEN = r"[A-Z0-9]+"


def jobs(harness: ScaleUpHarness, n: int, labels: tuple[str, ...] = ("self-hosted",)
         ) -> list[str]:
    return [job_body(harness.stack.github.add_job(ORG, "app", list(labels))) for _ in range(n)]


def simulation(harness: ScaleUpHarness, prefix: str = "") -> RunnerSimulation:
    stack = harness.stack
    return RunnerSimulation(stack.github, stack.boto("ec2"), stack.boto("ssm"),
                            environment=stack.deployment.environment,
                            token_path=stack.deployment.token_path, name_prefix=prefix)


def test_config_arguments_name_url_token_labels_group_and_flags_exactly(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNER_LABELS="gpu,large",
                       RUNNER_GROUP_NAME="Build Farm", DISABLE_RUNNER_AUTOUPDATE="true")

    scale_up.invoke(*jobs(scale_up, 1))

    [instance] = scale_up.instances()
    value = scale_up.token_value(instance["InstanceId"]) or ""
    url = scale_up.stack.github_url
    assert re.fullmatch(rf"--url {re.escape(url)}/{ORG} --token {TOKEN} --labels gpu,large "
                        r"--runnergroup 'Build Farm' --disableupdate", value), value


def test_config_arguments_default_group_no_labels_and_ephemeral_flag(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       ENABLE_JIT_CONFIG="false")

    scale_up.invoke(*jobs(scale_up, 1))

    [instance] = scale_up.instances()
    value = scale_up.token_value(instance["InstanceId"]) or ""
    assert re.fullmatch(rf"--url \S+/{ORG} --token {TOKEN} --runnergroup Default --ephemeral",
                        value), value


def test_labels_with_shell_metacharacters_are_quoted(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="false", RUNNER_LABELS="big disk,a;b")

    scale_up.invoke(*jobs(scale_up, 1))

    [instance] = scale_up.instances()
    value = scale_up.token_value(instance["InstanceId"]) or ""
    assert value.endswith("--labels 'big disk,a;b'"), value


def test_one_registration_token_per_group(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="5")

    scale_up.invoke(*jobs(scale_up, 4))

    values = {scale_up.token_value(i["InstanceId"]) for i in scale_up.instances()}
    assert len(values) == 1
    assert scale_up.stack.github.count(
        route="POST /orgs/{org}/actions/runners/registration-token") == 1


def test_token_parameters_are_secure_strings_tagged_with_their_instance(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true")

    scale_up.invoke(*jobs(scale_up, 1))

    [instance] = scale_up.instances()
    ssm = scale_up.stack.boto("ssm")
    name = f"{scale_up.stack.deployment.token_path}/{instance['InstanceId']}"
    [meta] = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert meta["Type"] == "SecureString" and meta["Tier"] == "Standard"
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    assert tags == [{"Key": "InstanceId", "Value": instance["InstanceId"]}]


def test_jit_config_is_stored_per_instance_and_the_instance_tagged_with_runner_id(
        scale_up: ScaleUpHarness) -> None:
    group_id = scale_up.stack.github.add_runner_group(ORG, "Build Farm")
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       RUNNER_GROUP_NAME="Build Farm", RUNNER_NAME_PREFIX="ci-",
                       RUNNER_LABELS="gpu")

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    assert outcome.failures == []
    runners = {r.name: r for r in scale_up.stack.github.runners(ORG)}
    for instance in scale_up.instances():
        instance_id = instance["InstanceId"]
        runner = runners[f"ci-{instance_id}"]
        value = scale_up.token_value(instance_id)
        assert scale_up.stack.github.jit_configs[value] == runner.id
        assert runner.runner_group_id == group_id
        assert runner.labels == ["self-hosted", "linux", "x64", "gpu"]
        assert tags_of(instance)["ghr:github_runner_id"] == str(runner.id)


def test_repo_jit_runner_uses_the_default_group(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="false", ENABLE_EPHEMERAL_RUNNERS="true")

    outcome = scale_up.invoke(*jobs(scale_up, 1))

    assert outcome.failures == []
    [runner] = scale_up.stack.github.runners(f"{ORG}/app")
    assert runner.runner_group_id == 1 and runner.jit


def test_ssm_failure_for_one_instance_terminates_it_and_retries_its_message(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="5")
    scale_up.stack.aws_faults.fail_next("ssm", "PutParameter", "AccessDeniedException")

    outcome = scale_up.invoke(*jobs(scale_up, 3))

    assert len(outcome.failures) == 1
    assert len(scale_up.instances()) == 2
    [gone] = scale_up.instances(states=("shutting-down", "terminated"))
    assert scale_up.token_value(gone["InstanceId"]) is None
    [result] = outcome.lines("scale-up result")
    assert result["terminated"] == [gone["InstanceId"]]


def test_ssm_throttling_is_absorbed_by_backoff(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="5")
    scale_up.stack.aws_faults.fail_next("ssm", "PutParameter", "ThrottlingException", times=3)

    outcome = scale_up.invoke(*jobs(scale_up, 3))

    assert outcome.failures == []
    assert all(scale_up.token_value(i["InstanceId"]) for i in scale_up.instances())


def test_jit_refused_for_one_of_five_terminates_that_instance_only(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       RUNNERS_MAXIMUM_COUNT="5")
    scale_up.stack.github.fail_next(JIT_ROUTE, n=1, status=422)

    outcome = scale_up.invoke(*jobs(scale_up, 5))

    assert len(outcome.failures) == 1
    assert len(scale_up.instances()) == 4
    assert all(scale_up.token_value(i["InstanceId"]) for i in scale_up.instances())
    assert len(scale_up.instances(states=("shutting-down", "terminated"))) == 1


def test_jit_502_once_is_retried_by_the_client(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       RUNNERS_MAXIMUM_COUNT="5")
    scale_up.stack.github.fail_next(JIT_ROUTE, n=1, status=502)

    outcome = scale_up.invoke(*jobs(scale_up, 5))

    assert outcome.failures == []
    assert len(scale_up.instances()) == 5


def test_jit_launches_only_what_githubs_write_budget_allows_and_the_rest_wait(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       RUNNERS_MAXIMUM_COUNT="10")
    github = wiring.github("scale_up")  # the warm container's client, as the handler gets it
    for _ in range(178):  # this container's JIT writes of the last minute
        assert github.http.pacer.try_acquire(JIT_ROUTE, github.http.clock()) == 0.0

    outcome = scale_up.invoke(*jobs(scale_up, 5))

    assert len(outcome.failures) == 3
    assert len(scale_up.instances()) == 2
    assert scale_up.instances(states=("shutting-down", "terminated")) == []
    assert scale_up.stack.github.count(route=JIT_ROUTE) == 2
    [result] = outcome.lines("scale-up result")
    assert result["launched"] == 2 and result["retrying"] == 3


def test_jit_writes_of_other_containers_count_against_the_shared_budget(
        scale_up: ScaleUpHarness) -> None:
    # Other containers took all but 2 of this window's JIT writes (docs/REFERENCE.md §7).
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       RUNNERS_MAXIMUM_COUNT="10")
    budget = wiring.write_budget("scale_up")
    # The budget is counted per window of the wall clock: start early in one.
    while time.time() % WINDOW_SECONDS > WINDOW_SECONDS / 2:
        time.sleep(0.1)
    assert budget.take(budget.per_window - 2) == budget.per_window - 2

    outcome = scale_up.invoke(*jobs(scale_up, 5))

    assert len(outcome.failures) == 3
    assert scale_up.stack.github.count(route=JIT_ROUTE) == 2
    assert len(scale_up.instances()) == 2


def test_no_secret_reaches_the_log(scale_up: ScaleUpHarness, capsys: Any) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true")

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    secrets = [scale_up.token_value(i["InstanceId"]) or "" for i in scale_up.instances()]
    assert len(secrets) == 2
    text = json.dumps(outcome.log) + capsys.readouterr().out
    for secret in secrets:
        assert secret not in text
        # The runner's own secret inside the JIT config must not leak in any form either.
        inner = json.loads(base64.b64decode(secret))
        assert all(str(part) not in text for part in inner.values())


def test_reuse_runner_registers_through_the_simulation_and_runs_its_job(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNER_NAME_PREFIX="ci-")
    github = scale_up.stack.github
    job_id = github.add_job(ORG, "app", ["self-hosted", "Linux"], duration=0.0)
    sim = simulation(scale_up, prefix="ci-")

    assert scale_up.invoke(job_body(job_id)).failures == []
    for _ in range(3):
        sim.step()

    [instance] = scale_up.instances()
    assert instance["InstanceId"] in sim.registered
    assert github.jobs[job_id].status == "completed"
    assert github.jobs[job_id].runner_name == f"ci-{instance['InstanceId']}"
    assert scale_up.token_value(instance["InstanceId"]) is None  # read once, deleted


def test_ephemeral_jit_runner_runs_its_job_and_its_instance_ends(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true")
    github = scale_up.stack.github
    job_id = github.add_job(ORG, "app", ["self-hosted", "linux"], duration=0.0)
    sim = simulation(scale_up)

    assert scale_up.invoke(job_body(job_id)).failures == []
    for _ in range(3):
        sim.step()

    assert github.jobs[job_id].status == "completed"
    assert scale_up.instances() == []
    assert github.runners(ORG) == []


def test_unexpected_error_while_configuring_terminates_every_new_instance_and_retries(
        scale_up: ScaleUpHarness, monkeypatch: Any) -> None:
    from chalicelib.github.client import GitHubClient

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("an answer nobody expected")

    # A rare edge that devstack cannot produce: a bug or an unforeseen GitHub answer.
    monkeypatch.setattr(GitHubClient, "jit_config", broken)
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true")

    outcome = scale_up.invoke(*jobs(scale_up, 2))

    assert outcome.failures == ["msg-0", "msg-1"]
    assert scale_up.instances() == []
    assert len(scale_up.instances(states=("shutting-down", "terminated"))) == 2
    assert outcome.lines("scale-up group failed unexpectedly")
