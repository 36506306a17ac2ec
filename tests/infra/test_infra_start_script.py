"""The runner start scripts: shellcheck, and the Linux script run against stand-in commands.

The stand-ins (curl for IMDS, aws, sudo, the runner's config.sh/run.sh/svc.sh...) record every
call, so the tests see what the script would do on an instance: which parameter it reads and
deletes, what reaches the runner and how, and when the instance terminates itself.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from infra_support import ROOT, tool

SCRIPT = ROOT / "infra" / "src" / "start-runner.sh"
SHELL_SCRIPTS = sorted([*ROOT.glob("infra/src/*.sh"), *ROOT.glob("scripts/*.sh")])
INSTANCE = "i-0123456789abcdef0"
CONFIG = "/github-action-runners/dev/runners/config"
TOKENS = "/github-action-runners/dev/runners/tokens"
SECRET = "AABBCCDDEEFFsecretRegistrationToken"

STUBS = {
    # IMDSv2: a token, then the instance's metadata and tags.
    "curl": r"""
url="${@: -1}"
case "$*" in *"-X PUT"*) [ -f "$STUB/no-imds" ] && exit 7; echo imds-token; exit 0 ;; esac
case "$url" in
  */meta-data/instance-id) echo "$INSTANCE" ;;
  */meta-data/placement/region) echo eu-west-1 ;;
  */tags/instance/ghr:ssm_config_path) echo "$CONFIG" ;;
  */tags/instance/ghr:runner_name_prefix) echo "pre-" ;;
  *) exit 22 ;;
esac
""",
    "aws": r"""
echo "aws $*" >> "$STUB/aws.log"
name=""; prev=""
for arg in "$@"; do [ "$prev" = "--name" ] && name="$arg"; prev="$arg"; done
file="$STUB/ssm/$(echo "$name" | tr / _)"
case "$1 $2" in
  "ssm get-parameter") [ -f "$file" ] || { echo "ParameterNotFound" >&2; exit 254; }; cat "$file" ;;
  "ssm delete-parameter") rm -f "$file" ;;
  "s3 cp") cp "$STUB/runner.tar.gz" "${@: -1}" ;;
  "ec2 terminate-instances"|"ec2 create-tags") ;;
  *) echo "unexpected aws $*" >&2; exit 2 ;;
esac
""",
    "sudo": r"""
echo "sudo $*" >> "$STUB/calls.log"
while [ "$1" != "--" ]; do shift; done; shift
exec "$@"
""",
    "logger": 'cat >&2\n',
    "shutdown": 'echo "shutdown $*" >> "$STUB/calls.log"\n',
    "sleep": ':\n',
    "id": ':\n',
    "chown": ':\n',
    "getent": 'exit 2\n',
    "dnf": 'echo "dnf $*" >> "$STUB/calls.log"\n',
    "systemctl": 'exit 1\n',
    "amazon-cloudwatch-agent-ctl": 'echo "cloudwatch $*" >> "$STUB/calls.log"\n',
}
RUNNER_FILES = {
    "config.sh": 'echo "config.sh $* token=${ACTIONS_RUNNER_INPUT_TOKEN:-}" >> "$STUB/runner.log"\n'
                 'echo \'{"agentId": 42, "agentName": "x"}\' > .runner\n',
    "run.sh": 'echo "run.sh $* jit=${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" >> "$STUB/runner.log"\n',
    "svc.sh": 'echo "svc.sh $*" >> "$STUB/runner.log"\n',
}


@dataclass
class Boot:
    """One run of the start script on the stand-in instance."""

    exit_code: int
    directory: Path

    def text(self, name: str) -> str:
        path = self.directory / name
        return path.read_text() if path.exists() else ""

    @property
    def everything_printed(self) -> str:
        return self.text("user-data.log") + self.text("console.log") + self.text("stdout")

    @property
    def command_lines(self) -> str:
        return self.text("aws.log") + self.text("calls.log")

    def terminated(self) -> bool:
        return f"ec2 terminate-instances --instance-ids {INSTANCE}" in self.text("aws.log")

    def parameter_exists(self, name: str) -> bool:
        return (self.directory / "ssm" / name.replace("/", "_")).exists()


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """A stand-in instance: stub commands, the runner tarball, and the SSM configuration."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in RUNNER_FILES.items():
            data = ("#!/bin/bash\n" + body).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    (tmp_path / "runner.tar.gz").write_bytes(buffer.getvalue())
    (tmp_path / "ssm").mkdir()
    configure(tmp_path, agent_mode="persistent", jit="false")
    return tmp_path


def configure(directory: Path, **values: str) -> None:
    """Write the SSM config parameters the script reads (CFN creates them in a deployment)."""
    defaults = {"run_as": "ec2-user", "enable_cloudwatch": "false", "token_path": TOKENS,
                "runner_binaries_s3_uri": "s3://bucket/actions-runner-linux-x64.tar.gz"}
    names = {"agent_mode": "agent_mode", "jit": "enable_jit_config"}
    for key, value in {**defaults, **values}.items():
        name = f"{CONFIG}/{names.get(key, key)}"
        (directory / "ssm" / name.replace("/", "_")).write_text(value + "\n")


def put_token(directory: Path, value: str) -> None:
    """What scale-up stores for the instance (CONTRACT.md §4)."""
    (directory / "ssm" / f"{TOKENS}/{INSTANCE}".replace("/", "_")).write_text(value + "\n")


def boot(directory: Path, debug: str = "false") -> Boot:
    """Run the start script as user data would, against the stand-ins."""
    env = {
        "PATH": f"{directory / 'bin'}:/usr/bin:/bin",
        "STUB": str(directory), "INSTANCE": INSTANCE, "CONFIG": CONFIG,
        "GHR_RUNNER_DIR": str(directory / "runner"),
        "GHR_LOG_FILE": str(directory / "user-data.log"),
        "GHR_CONSOLE": str(directory / "console.log"),
        "GHR_IMDS_URL": "http://imds.invalid",
        "GHR_TOKEN_WAIT_SECONDS": "30",
        "GHR_USER_DATA_DEBUG": debug,
    }
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    (directory / "stdout").write_text(result.stdout + result.stderr)
    return Boot(exit_code=result.returncode, directory=directory)


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
