"""The runner simulation against moto and the GitHub fake: boot, register, run a job, retire."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.github_fake import GitHubFake
from devstack.runner_sim import ConfigArgs, RunnerSimulation, parse_config_args

# The table the real start script is held to as well (tests/infra/test_infra_config_args.py).
VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "config_args_vectors.json").read_text())


class Clock:
    """A clock the test moves by hand, starting just after instances launched now."""

    def __init__(self) -> None:
        # moto's launch times are wall-clock (whole seconds): start past any launch in this test.
        self.now = time.time() + 2

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """The simulation's clock."""
    return Clock()


@pytest.fixture
def github(stack: Any) -> GitHubFake:
    """The fake with the App installed on `acme`."""
    fake: GitHubFake = stack.github
    fake.add_installation("acme")
    return fake


def make_sim(stack: Any, clock: Clock, **kw: Any) -> RunnerSimulation:
    """A simulation of the deployed environment."""
    return RunnerSimulation(
        stack.github,
        stack.boto("ec2"),
        stack.boto("ssm"),
        environment=stack.deployment.environment,
        token_path=stack.deployment.token_path,
        clock=clock,
        **kw,
    )


def launch(stack: Any, environment: str | None = None) -> str:
    """One runner instance tagged for the environment, as scale-up would launch it."""
    tags = [
        {"Key": "ghr:environment", "Value": environment or stack.deployment.environment},
        {"Key": "ghr:Type", "Value": "Org"},
        {"Key": "ghr:Owner", "Value": "acme"},
    ]
    reservation = stack.boto("ec2").run_instances(
        ImageId=stack.deployment.image_id,
        MinCount=1,
        MaxCount=1,
        SubnetId=stack.deployment.subnet_ids[0],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def put_config(stack: Any, instance_id: str, value: str) -> None:
    """The SecureString scale-up writes for the instance."""
    stack.boto("ssm").put_parameter(
        Name=f"{stack.deployment.token_path}/{instance_id}", Value=value, Type="SecureString"
    )


def config_args(github: GitHubFake, scope: str = "acme", extra: str = "--ephemeral") -> str:
    """config.sh arguments with a fresh registration token, as scale-up would write them."""
    token, _ = github.mint_scope_token(scope, "registration")
    return f"--url {github.url}/{scope} --token {token} --labels 'self-hosted,linux' {extra}"


def parameter_exists(stack: Any, instance_id: str) -> bool:
    """Whether the instance's token parameter is still there."""
    names = [
        p["Name"]
        for p in stack.boto("ssm").get_parameters_by_path(
            Path=stack.deployment.token_path, Recursive=True
        )["Parameters"]
    ]
    return f"{stack.deployment.token_path}/{instance_id}" in names


def state_of(stack: Any, instance_id: str) -> str:
    """The EC2 state name of an instance."""
    found = stack.boto("ec2").describe_instances(InstanceIds=[instance_id])
    state: str = found["Reservations"][0]["Instances"][0]["State"]["Name"]
    return state


def kinds(sim: RunnerSimulation) -> list[str]:
    """The event kinds so far, in order."""
    return [kind for _, kind, _ in sim.events]


def test_ephemeral_runner_registers_runs_one_job_and_terminates_its_instance(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock, name_prefix="ci-")
    instance_id = launch(stack)
    put_config(stack, instance_id, config_args(github))
    sim.step()
    assert not parameter_exists(stack, instance_id)
    runner = github.runners("acme")[0]
    assert (runner.name, runner.status, runner.ephemeral) == (f"ci-{instance_id}", "online", True)
    assert runner.labels == ["self-hosted", "Linux", "X64"]
    job = github.add_job("acme", "app", ["self-hosted", "linux"], duration=60)
    sim.step()
    assert github.jobs[job].status == "in_progress"
    clock.now += 59
    sim.step()
    assert github.jobs[job].status == "in_progress"
    clock.now += 1
    sim.step()
    assert github.jobs[job].status == "completed"
    assert github.runners("acme") == []
    assert state_of(stack, instance_id) in ("shutting-down", "terminated")
    assert kinds(sim) == ["registered", "job started", "job completed", "terminated"]
    sim.step()
    assert kinds(sim) == ["registered", "job started", "job completed", "terminated"]


def test_jit_runner_comes_online_and_retires_after_its_job(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock)
    instance_id = launch(stack)
    runner, config = github.create_jit_runner(
        "acme", instance_id, ["self-hosted", "linux"], 1, github.url
    )
    put_config(stack, instance_id, config)
    sim.step()
    assert github.runners("acme")[0].status == "online"
    assert sim.registered == {instance_id: runner.id}
    github.add_job("acme", "app", ["self-hosted", "linux"])
    sim.step()
    sim.step()
    assert state_of(stack, instance_id) in ("shutting-down", "terminated")
    assert kinds(sim) == ["registered", "job started", "job completed", "terminated"]


def test_reusable_runner_keeps_its_instance_after_a_job(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock)
    instance_id = launch(stack)
    put_config(stack, instance_id, config_args(github, extra="--disableupdate"))
    github.add_job("acme", "app", ["self-hosted"])
    sim.step()
    sim.step()
    assert state_of(stack, instance_id) == "running"
    assert [(r.busy, r.status) for r in github.runners("acme")] == [(False, "online")]
    assert kinds(sim) == ["registered", "job started", "job completed"]


def test_instance_waits_for_boot_delay_and_for_its_parameter(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock, boot_delay=30)
    booting = launch(stack)
    put_config(stack, booting, config_args(github))
    sim.step()  # parameter there, but the instance is still booting
    assert sim.events == [] and parameter_exists(stack, booting)
    clock.now += 31
    waiting = launch(stack)
    sim.step()  # both booted; scale-up has not written the second one's parameter yet
    assert kinds(sim) == ["registered"] and booting in sim.registered
    put_config(stack, waiting, config_args(github))
    sim.step()
    assert kinds(sim) == ["registered", "registered"] and waiting in sim.registered


def test_instances_of_other_environments_are_left_alone(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock)
    instance_id = launch(stack, environment="someone-else")
    put_config(stack, instance_id, config_args(github))
    sim.step()
    assert sim.events == [] and parameter_exists(stack, instance_id)


def test_repo_runner_takes_only_its_repositorys_jobs(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock)
    put_config(stack, launch(stack), config_args(github, scope="acme/app"))
    other = github.add_job("acme", "web", ["self-hosted"])
    mine = github.add_job("acme", "app", ["self-hosted"])
    sim.step()
    assert github.jobs[mine].status == "completed"
    assert github.jobs[other].status == "queued"


def test_bad_registration_token_fails_without_leaking_it(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock)
    instance_id = launch(stack)
    put_config(stack, instance_id, f"--url {github.url}/acme --token SECRET-NOT-ISSUED")
    sim.step()
    sim.step()
    assert kinds(sim) == ["registration failed"]
    assert "SECRET" not in repr(sim.events)
    assert github.runners() == [] and not parameter_exists(stack, instance_id)


def test_instance_terminated_elsewhere_takes_its_runner_offline(
    stack: Any, github: GitHubFake, clock: Clock
) -> None:
    sim = make_sim(stack, clock)
    instance_id = launch(stack)
    put_config(stack, instance_id, config_args(github, extra=""))
    sim.step()
    stack.boto("ec2").terminate_instances(InstanceIds=[instance_id])
    sim.step()
    assert github.runners("acme")[0].status == "offline"
    assert kinds(sim) == ["registered", "stopped"]


def test_parse_config_args_reads_every_option() -> None:
    args = parse_config_args(
        "--url http://127.0.0.1:1/acme --token T0K --labels 'self-hosted,my label' "
        "--runnergroup 'Build Group' --disableupdate --ephemeral"
    )
    assert args == ConfigArgs(
        url="http://127.0.0.1:1/acme",
        token="T0K",
        labels=("self-hosted", "my label"),
        runner_group="Build Group",
        disable_update=True,
        ephemeral=True,
    )


@pytest.mark.parametrize(
    "value",
    [
        "--url http://x/acme",
        "--token S3CR3T",
        "--url http://x/a --token S3CR3T --bogus",
        "--url http://x/a --token S3CR3T S3CR3T",
        "--url 'x --token S3CR3T",
    ],
)
def test_parse_config_args_refuses_bad_arguments_without_quoting_them(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_config_args(value)
    assert "S3CR3T" not in str(caught.value)


@pytest.mark.parametrize("vector", VECTORS["split"], ids=lambda v: str(v["case"]))
def test_parse_config_args_splits_like_the_start_script(vector: dict[str, Any]) -> None:
    args = parse_config_args(f"--url http://x/acme --token T0K {vector['value']}")

    words = vector["args"]
    option = {w: words[i + 1] for i, w in enumerate(words) if w in ("--labels", "--runnergroup")}
    labels = tuple(label for label in option.get("--labels", "").split(",") if label)
    assert args == ConfigArgs(url="http://x/acme", token="T0K", labels=labels,
                              runner_group=option.get("--runnergroup"),
                              disable_update="--disableupdate" in words,
                              ephemeral="--ephemeral" in words)


@pytest.mark.parametrize("vector", VECTORS["refused"], ids=lambda v: str(v["case"]))
def test_parse_config_args_refuses_what_the_start_script_refuses(vector: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not valid shell words") as caught:
        parse_config_args(f"--url http://x/acme --token S3CR3T {vector['value']}")
    assert "S3CR3T" not in str(caught.value)
