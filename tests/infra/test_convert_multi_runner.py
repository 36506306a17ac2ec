"""scripts/convert_multi_runner.py: the reference multi-runner module's `multi_runner_config`, from
a .tfvars (HCL) or .tfvars.json file, becomes a runner-configurations file that the build takes,
with every setting it cannot carry over named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_support import ROOT

from infra import build, runnerconfigs
from scripts import convert_multi_runner as converter

FIXTURES = ROOT / "tests" / "fixtures" / "multi_runner"
HCL, JSON = FIXTURES / "terraform.tfvars", FIXTURES / "terraform.tfvars.json"


def converted(path: Path) -> converter.Conversion:
    return converter.convert(converter.read_variables(path), hcl=path.suffix == ".tfvars")


@pytest.fixture(scope="module")
def from_hcl() -> converter.Conversion:
    return converted(HCL)


def by_id(conversion: converter.Conversion) -> dict[str, dict[str, Any]]:
    return {config["id"]: config for config in conversion.configs}


def test_every_configuration_is_carried_over_with_its_matcher_and_launch_settings(
        from_hcl: converter.Conversion) -> None:
    configs = by_id(from_hcl)

    assert list(configs) == ["linux-x64", "linux-arm64", "gpu", "windows-x64"]
    x64 = configs["linux-x64"]
    assert x64["matcherConfig"] == {"labelMatchers": [["self-hosted", "linux", "x64"]],
                                    "exactMatch": True, "priority": 10}
    assert x64["environment"] == {
        "RUNNER_LABELS": ["docker"], "RUNNERS_MAXIMUM_COUNT": 50,
        "ENABLE_EPHEMERAL_RUNNERS": False, "ENABLE_ORGANIZATION_RUNNERS": True,
        "MINIMUM_RUNNING_TIME_IN_MINUTES": 10,
        "SCALE_DOWN_CONFIG": [{"cron": "* * 9-17 * * 1-5", "timeZone": "Europe/Amsterdam",
                               "idleCount": 2}],
        "RUNNER_EC2_TAGS": {"Team": "platform"}}
    launch = x64["launchTemplate"]
    # The module's null fields are dropped; its heredoc is dedented and `$${` is a literal `${`.
    assert launch["block_device_mappings"] == [{
        "device_name": "/dev/xvda", "delete_on_termination": True, "volume_type": "gp3",
        "volume_size": 100, "encrypted": True}]
    assert launch["userdata_pre_install"] == (
        'dnf install -y docker\nsystemctl enable --now docker\necho "${HOME}"\n')
    arm = configs["linux-arm64"]
    assert arm["environment"]["AMI_FILTER"] == {"name": ["al2023-ami-2023.*-arm64"],
                                                "state": ["available"]}
    assert arm["environment"]["JOB_RETRY_CONFIG"] == {"enable": True, "maxAttempts": 2,
                                                      "delayInSeconds": 180}
    gpu = configs["gpu"]["launchTemplate"]
    assert gpu["ami_id_ssm_parameter_name"] == "/ci/ami/gpu"
    assert gpu["runner_additional_security_group_ids"] == ["sg-0123456789abcdef0"]
    assert configs["windows-x64"]["launchTemplate"]["runner_os"] == "windows"


def test_what_cannot_be_carried_over_is_named_with_what_to_do_instead(
        from_hcl: converter.Conversion) -> None:
    notes = "\n".join(from_hcl.notes)

    for expected in ("linux_arm64: renamed linux-arm64",
                     "linux-x64.fifo = true: not carried over",
                     "linux-x64.redrive_build_queue",
                     "linux-x64.runner_config.delay_webhook_event = 5: not carried over (one "
                     "build queue); set the parameter DelayWebhookEvent",
                     "linux-x64.runner_config.enable_ssm_on_runners = true",
                     "linux-arm64.runner_config.runner_hook_job_started",
                     "linux-arm64.runner_config.job_retry: lambda_timeout not carried over",
                     "gpu.runner_config.ebs_optimized",
                     "gpu.runner_config.subnet_ids: a Terraform expression "
                     "(${var.gpu_subnet_ids})",
                     "windows-x64.runner_config.enable_userdata"):
        assert expected in notes, expected
    assert "SUBNET_IDS" not in by_id(from_hcl)["gpu"]["environment"]


def test_pool_schedules_become_build_configuration_entries_naming_their_configuration(
        from_hcl: converter.Conversion, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert from_hcl.pools == [{"schedule_expression": "cron(0 8 ? * MON-FRI *)", "size": 1,
                               "runner_config": "windows-x64"}]
    runners, pools = tmp_path / "runners.yaml", tmp_path / "pools.build.json"

    assert converter.main([str(HCL), "-o", str(runners)]) == 0
    assert "pool_config of windows-x64: not written" in capsys.readouterr().err
    assert converter.main([str(HCL), "-o", str(runners), "--build-config", str(pools)]) == 0

    files = build.configured_outputs(pools, tmp_path / "out", runners)
    assert '{"poolSize": 1, "runnerConfig": "windows-x64"}' in files[
        tmp_path / "out" / "runners-stack.yaml"]


def test_a_json_variable_file_gives_the_same_configurations_its_strings_literal() -> None:
    from_json = by_id(converted(JSON))
    from_hcl = by_id(converted(HCL))

    assert from_json["gpu"]["environment"].pop("SUBNET_IDS") == ["subnet-0aaaaaaaaaaaaaaaa"]
    assert from_json == from_hcl


@pytest.mark.parametrize("source", [HCL, JSON], ids=["hcl", "json"])
def test_the_written_file_builds_both_templates(source: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "runners.yaml"

    assert converter.main([str(source), "-o", str(output)]) == 0

    configs = runnerconfigs.load(output)
    assert [c.id for c in configs] == ["linux-x64", "linux-arm64", "gpu", "windows-x64"]
    assert configs[0].environment["RUNNERS_MAXIMUM_COUNT"] == "50"
    assert "note: linux-x64.fifo" in capsys.readouterr().err
    template = build.stack_template(runner_configs=configs)
    assert "RunnerLaunchTemplateWindowsX64" in template["Resources"]


def test_a_result_that_needs_editing_fails_with_the_problems(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "vars.tfvars.json"
    source.write_text('{"multi_runner_config": {"big": {"runner_config": {'
                      '"runner_os": "windows", "runner_architecture": "arm64"}}}}')

    assert converter.main([str(source), "-o", str(tmp_path / "out.yaml")]) == 1

    err = capsys.readouterr().err
    assert "instance_types: missing, the module's default" in err
    assert "Windows runners are x64 only" in err
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())[0]["id"] == "big"


def test_a_file_without_multi_runner_config_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "vars.tfvars"
    source.write_text('prefix = "ci"\n')
    assert converter.main([str(source)]) == 1
