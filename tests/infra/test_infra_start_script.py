"""The runner start scripts: shellcheck, and the Linux script run against stand-in commands
(tests/infra/start_script.py): the token's path to the runner, bounded waits, self-termination,
and the runner archive's checksum."""

from __future__ import annotations

import subprocess
from pathlib import Path

from infra_support import ROOT, tool
from start_script import (
    INSTANCE,
    RUNNER_VERSION,
    SECRET,
    TOKENS,
    boot,
    configure,
    publish_release,
    put_token,
)

SHELL_SCRIPTS = sorted([*ROOT.glob("infra/src/*.sh"), *ROOT.glob("scripts/*.sh")])


def test_shell_scripts_pass_shellcheck() -> None:
    assert len(SHELL_SCRIPTS) >= 2
    result = subprocess.run([tool("shellcheck"), *map(str, SHELL_SCRIPTS)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_a_reuse_runner_registers_with_its_token_out_of_sight_and_keeps_running(
        instance: Path) -> None:
    put_token(instance, f"--url https://github.com/acme --token {SECRET} --labels a,b "
                        "--runnergroup Default")

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    runner = run.text("runner.log")
    assert (f"config.sh --unattended --name pre-{INSTANCE} --work _work --url "
            f"https://github.com/acme --labels a,b --runnergroup Default token={SECRET}") in runner
    assert "svc.sh install ec2-user" in runner and "svc.sh start" in runner
    assert not run.parameter_exists(f"{TOKENS}/{INSTANCE}")
    assert SECRET not in run.everything_printed + run.command_lines
    assert "Key=ghr:github_runner_id,Value=42" in run.text("aws.log")
    assert not run.terminated()


def test_an_ephemeral_jit_runner_gets_its_config_in_the_environment_then_terminates(
        instance: Path) -> None:
    configure(instance, agent_mode="ephemeral", jit="true")
    put_token(instance, SECRET)

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    assert run.text("runner.log") == f"run.sh  jit={SECRET}\n"
    assert "config.sh" not in run.text("runner.log")
    assert SECRET not in run.everything_printed + run.command_lines
    assert not run.parameter_exists(f"{TOKENS}/{INSTANCE}")
    assert run.terminated()


def test_an_ephemeral_runner_without_jit_registers_runs_once_and_terminates(
        instance: Path) -> None:
    configure(instance, agent_mode="ephemeral", jit="false")
    put_token(instance, f"--url https://github.com/acme --token {SECRET} --ephemeral")

    run = boot(instance)

    lines = run.text("runner.log").splitlines()
    assert [line.split()[0] for line in lines] == ["config.sh", "run.sh"]
    assert "--ephemeral" in lines[0]
    assert run.terminated()


def test_a_token_that_never_comes_ends_in_termination_within_the_bounded_wait(
        instance: Path) -> None:
    run = boot(instance)

    assert run.exit_code != 0
    assert "no runner configuration" in run.everything_printed
    assert run.text("aws.log").count("ssm get-parameter") > 2
    assert run.terminated()
    assert "config.sh" not in run.text("runner.log")


def test_without_instance_metadata_the_instance_shuts_itself_down(instance: Path) -> None:
    (instance / "no-imds").touch()

    run = boot(instance)

    assert run.exit_code != 0
    assert "shutdown -h now" in run.text("calls.log")


def test_debug_logging_warns_and_does_log_the_secret(instance: Path) -> None:
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance, debug="true-logs-secrets")

    assert "WILL be logged" in run.everything_printed
    assert SECRET in run.everything_printed


def test_the_s3_copy_is_installed_when_its_recorded_checksum_matches(instance: Path) -> None:
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    assert "runner archive SHA-256 verified" in run.everything_printed
    assert "s3api get-object --region eu-west-1 --bucket bucket --key " \
           "actions-runner-linux-x64.tar.gz" in run.text("aws.log")
    assert "download" not in run.text("calls.log")


def test_an_s3_copy_that_does_not_match_its_checksum_is_never_extracted(instance: Path) -> None:
    (instance / "s3-sha256").write_text("0" * 64 + "\n")
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code != 0
    assert f"expected {'0' * 64}: not installing it" in run.everything_printed
    assert not (instance / "runner" / "config.sh").exists()
    assert run.config_args is None and run.terminated()


def test_an_s3_copy_without_a_recorded_checksum_is_installed_and_says_so(
        instance: Path) -> None:
    (instance / "s3-sha256").unlink()
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    assert "carries no runner-sha256" in run.everything_printed
    assert run.config_args is not None


def test_without_the_s3_copy_the_github_release_is_checked_against_its_notes(
        instance: Path) -> None:
    (instance / "no-s3").touch()
    publish_release(instance, (instance / "s3-sha256").read_text().strip())
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    assert (f"download https://github.com/actions/runner/releases/download/v{RUNNER_VERSION}/"
            f"actions-runner-linux-x64-{RUNNER_VERSION}.tar.gz") in run.text("calls.log")
    assert "runner archive SHA-256 verified" in run.everything_printed
    assert run.config_args is not None


def test_a_github_download_that_does_not_match_the_release_notes_is_never_extracted(
        instance: Path) -> None:
    (instance / "no-s3").touch()
    publish_release(instance, "f" * 64)
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code != 0
    assert not (instance / "runner" / "config.sh").exists()
    assert run.terminated()


def test_a_github_release_without_a_checksum_for_the_platform_is_not_downloaded(
        instance: Path) -> None:
    (instance / "no-s3").touch()
    publish_release(instance, None)
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code != 0
    assert "no runner release with a linux-x64 SHA-256" in run.everything_printed
    assert "download" not in run.text("calls.log")
    assert run.terminated()


def test_with_the_syncer_off_the_runner_comes_from_github_without_asking_s3(
        instance: Path) -> None:
    configure(instance, runner_binaries_s3_uri="none")
    publish_release(instance, (instance / "s3-sha256").read_text().strip())
    put_token(instance, f"--url https://github.com/acme --token {SECRET}")

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    assert "s3api" not in run.text("aws.log")
    assert "runner binaries syncer off; downloading from GitHub" in run.everything_printed
    assert (f"download https://github.com/actions/runner/releases/download/v{RUNNER_VERSION}/"
            f"actions-runner-linux-x64-{RUNNER_VERSION}.tar.gz") in run.text("calls.log")
    assert "runner archive SHA-256 verified" in run.everything_printed
