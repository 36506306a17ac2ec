"""devstack with several runner configurations (REFERENCE §6, issue 16 item 6): one launch template
per configuration, the SSM parameter with the list, the functions' environment naming it, and the
runner simulation registering each configuration's runners with its machine's labels."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devstack.provision import config_environment, machine_labels
from devstack.runner_sim import RunnerSimulation

CONFIGS = [
    {"id": "linux-x64",
     "matcherConfig": {"labelMatchers": [["self-hosted", "linux", "x64"]], "exactMatch": True},
     "environment": {"INSTANCE_TYPES": "m5.large"}},
    {"id": "linux-arm64",
     "matcherConfig": {"labelMatchers": [["self-hosted", "linux", "arm64"]], "exactMatch": True},
     "environment": {"INSTANCE_TYPES": "m7g.large", "RUNNER_ARCHITECTURE": "arm64"}},
    {"id": "gpu",
     "matcherConfig": {"labelMatchers": [["self-hosted", "linux", "gpu"]],
                       "bidirectionalLabelMatch": True},
     "environment": {"LAUNCH_TEMPLATE_NAME": "ci-gpu", "INSTANCE_TYPES": "g5.xlarge",
                     "RUNNER_LABELS": "gpu", "ENVIRONMENT": "gpu-runners"}},
]


def test_each_configuration_gets_a_launch_template_and_the_list_a_parameter(stack: Any) -> None:
    deployment = stack.add_runner_configs(CONFIGS)
    top = deployment.environment

    names = {t["LaunchTemplateName"] for t in
             stack.boto("ec2").describe_launch_templates()["LaunchTemplates"]}
    assert {f"{top}-linux-x64-action-runner", f"{top}-linux-arm64-action-runner",
            "ci-gpu"} <= names
    stored = json.loads(stack.boto("ssm").get_parameter(
        Name=deployment.runner_configs_parameter)["Parameter"]["Value"])
    assert [c["id"] for c in stored] == ["linux-x64", "linux-arm64", "gpu"]
    assert stored[0]["environment"]["LAUNCH_TEMPLATE_NAME"] == f"{top}-linux-x64-action-runner"
    assert stored[2]["environment"]["LAUNCH_TEMPLATE_NAME"] == "ci-gpu"
    assert CONFIGS[0]["environment"] == {"INSTANCE_TYPES": "m5.large"}  # the caller's untouched
    assert stack.env()["RUNNER_CONFIGS_PARAMETER_NAME"] == deployment.runner_configs_parameter
    assert deployment.runner_environments == {
        "linux-x64": f"{top}-linux-x64", "linux-arm64": f"{top}-linux-arm64",
        "gpu": "gpu-runners"}
    assert deployment.machine_labels[f"{top}-linux-arm64"] == ("self-hosted", "Linux", "ARM64")
    assert deployment.machine_labels[top] == ("self-hosted", "Linux", "X64")


def test_without_configurations_the_environment_is_unchanged(stack: Any) -> None:
    assert "RUNNER_CONFIGS_PARAMETER_NAME" not in stack.env()
    assert stack.deployment.runner_environments == {"default": stack.deployment.environment}


def test_machine_labels_follow_the_configurations_os_and_architecture() -> None:
    assert machine_labels({}) == ("self-hosted", "Linux", "X64")
    assert machine_labels({"RUNNER_OS": "windows", "RUNNER_ARCHITECTURE": "x64"}) == (
        "self-hosted", "Windows", "X64")
    assert config_environment("ci", {"id": "gpu"}) == "ci-gpu"


def _launch(stack: Any, environment: str) -> str:
    reservation = stack.boto("ec2").run_instances(
        ImageId=stack.deployment.image_id, MinCount=1, MaxCount=1,
        SubnetId=stack.deployment.subnet_ids[0],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "ghr:environment", "Value": environment},
            {"Key": "ghr:Type", "Value": "Org"}, {"Key": "ghr:Owner", "Value": "acme"}]}])
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def test_simulation_registers_each_configurations_runners_with_its_machines_labels(
        stack: Any) -> None:
    github = stack.github
    github.add_installation("acme")
    deployment = stack.add_runner_configs(CONFIGS)
    now = [time.time() + 2]
    sim = RunnerSimulation(github, stack.boto("ec2"), stack.boto("ssm"),
                           environment=deployment.machine_labels,
                           token_path=deployment.token_path, clock=lambda: now[0])
    environments = deployment.runner_environments
    arm = _launch(stack, environments["linux-arm64"])
    x64 = _launch(stack, environments["linux-x64"])
    other = _launch(stack, "someone-else")
    for instance_id in (arm, x64, other):
        token, _ = github.mint_scope_token("acme", "registration")
        stack.boto("ssm").put_parameter(
            Name=f"{deployment.token_path}/{instance_id}", Type="SecureString",
            Value=f"--url {github.url}/acme --token {token}")
    sim.step()

    by_name = {r.name: r.labels for r in github.runners("acme")}
    assert by_name == {arm: ["self-hosted", "Linux", "ARM64"],
                       x64: ["self-hosted", "Linux", "X64"]}
    job_x64 = github.add_job("acme", "app", ["self-hosted", "linux", "x64"], duration=60)
    job_arm = github.add_job("acme", "app", ["self-hosted", "linux", "arm64"], duration=60)
    job_gpu = github.add_job("acme", "app", ["self-hosted", "linux", "gpu"], duration=60)
    sim.step()
    jobs = github.jobs
    assert jobs[job_x64].runner_name == x64
    assert jobs[job_arm].runner_name == arm
    assert jobs[job_gpu].status == "queued"  # no runner carries `gpu`
    assert other not in sim.registered  # not one of the deployment's environments


def test_a_session_started_with_configurations_watches_each_one(
        devstack: Any, tmp_path: Any) -> None:
    from devstack.session import Session

    devstack.reset()
    session = Session(devstack, tmp_path / "state.json", 0.5, echo=lambda *_: None,
                      runner_configs=CONFIGS)
    try:
        deployment = session.deployment
        assert devstack.env()["RUNNER_CONFIGS_PARAMETER_NAME"] == \
            deployment.runner_configs_parameter
        assert set(session.simulation.environments) == {
            deployment.environment, *deployment.runner_environments.values()}
        assert session.simulation.machine_labels[f"{deployment.environment}-linux-arm64"] == (
            "self-hosted", "Linux", "ARM64")
    finally:
        session._server.server_close()
        devstack.github.on_job_event = None


def test_serve_refuses_a_configuration_file_that_is_not_a_list(tmp_path: Any) -> None:
    from devstack.__main__ import serve

    bad = tmp_path / "configs.json"
    bad.write_text('{"id": "a"}')
    with pytest.raises(SystemExit) as exit_:
        serve(["--runner-configs", str(bad)])
    assert exit_.value.code == 2
