"""A stand-in instance for the Linux start script (infra/src/start-runner.sh).

The stand-ins (curl for IMDS and GitHub, aws, sudo, the runner's config.sh/run.sh/svc.sh...)
record every call, so the tests see what the script would do on an instance: which parameter it
reads and deletes, what reaches the runner and how, and when the instance terminates itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from infra_support import ROOT

SCRIPT = ROOT / "infra" / "src" / "start-runner.sh"
INSTANCE = "i-0123456789abcdef0"
CONFIG = "/github-action-runners/dev/runners/config"
TOKENS = "/github-action-runners/dev/runners/tokens"
SECRET = "AABBCCDDEEFFsecretRegistrationToken"
RUNNER_VERSION = "2.330.0"

STUBS = {
    # IMDSv2 (a token, then the instance's metadata and tags) and GitHub (release, download).
    "curl": r"""
url="${@: -1}"
case "$*" in *"-X PUT"*) [ -f "$STUB/no-imds" ] && exit 7; echo imds-token; exit 0 ;; esac
case "$url" in
  */meta-data/instance-id) echo "$INSTANCE" ;;
  */meta-data/placement/region) echo eu-west-1 ;;
  */tags/instance/ghr:ssm_config_path) echo "$CONFIG" ;;
  */tags/instance/ghr:runner_name_prefix) echo "pre-" ;;
  https://api.github.com/repos/actions/runner/releases/latest) cat "$STUB/release.json" ;;
  https://github.com/actions/runner/releases/download/*)
    echo "download $url" >> "$STUB/calls.log"
    out=""; prev=""
    for arg in "$@"; do [ "$prev" = "-o" ] && out="$arg"; prev="$arg"; done
    cp "$STUB/runner.tar.gz" "$out" ;;
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
  "s3api get-object")
    [ -f "$STUB/no-s3" ] && { echo "An error occurred (NoSuchKey)" >&2; exit 254; }
    cp "$STUB/runner.tar.gz" "${@: -1}"
    cat "$STUB/s3-sha256" 2>/dev/null || echo None ;;
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
    "uname": 'echo x86_64\n',
    "amazon-cloudwatch-agent-ctl": 'echo "cloudwatch $*" >> "$STUB/calls.log"\n',
}
RUNNER_FILES = {
    # config.sh also keeps its exact argument list, NUL-separated, for the quoting tests.
    "config.sh": 'echo "config.sh $* token=${ACTIONS_RUNNER_INPUT_TOKEN:-}" >> "$STUB/runner.log"\n'
                 'printf "%s\\0" "$@" > "$STUB/config-args"\n'
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

    @property
    def config_args(self) -> list[str] | None:
        """The arguments config.sh received, one by one; None when it never ran."""
        path = self.directory / "config-args"
        return path.read_bytes().decode().split("\0")[:-1] if path.exists() else None

    def terminated(self) -> bool:
        return f"ec2 terminate-instances --instance-ids {INSTANCE}" in self.text("aws.log")

    def parameter_exists(self, name: str) -> bool:
        return (self.directory / "ssm" / name.replace("/", "_")).exists()


def make_instance(directory: Path) -> Path:
    """Stub commands, the runner tarball in S3 with its checksum, and the SSM configuration."""
    bin_dir = directory / "bin"
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
    (directory / "runner.tar.gz").write_bytes(buffer.getvalue())
    (directory / "s3-sha256").write_text(archive_sha256(directory) + "\n")
    (directory / "ssm").mkdir()
    configure(directory, agent_mode="persistent", jit="false")
    return directory


def archive_sha256(directory: Path) -> str:
    """The SHA-256 of the stand-in runner tarball."""
    return hashlib.sha256((directory / "runner.tar.gz").read_bytes()).hexdigest()


def publish_release(directory: Path, sha256: str | None) -> None:
    """GitHub's latest actions/runner release, its notes carrying the linux-x64 checksum."""
    lines = [f"- actions-runner-linux-arm64-{RUNNER_VERSION}.tar.gz <!-- BEGIN SHA linux-arm64 -->"
             f"{'b' * 64}<!-- END SHA linux-arm64 -->"]
    if sha256 is not None:
        lines.append(f"- actions-runner-linux-x64-{RUNNER_VERSION}.tar.gz <!-- BEGIN SHA "
                     f"linux-x64 -->{sha256}<!-- END SHA linux-x64 -->")
    release = {"tag_name": f"v{RUNNER_VERSION}", "body": "\r\n".join(lines)}
    (directory / "release.json").write_text(json.dumps(release, indent=2))


def configure(directory: Path, **values: str) -> None:
    """Write the SSM config parameters the script reads (CFN creates them in a deployment)."""
    defaults = {"run_as": "ec2-user", "enable_cloudwatch": "false", "token_path": TOKENS,
                "runner_binaries_s3_uri": "s3://bucket/actions-runner-linux-x64.tar.gz"}
    names = {"agent_mode": "agent_mode", "jit": "enable_jit_config"}
    for key, value in {**defaults, **values}.items():
        name = f"{CONFIG}/{names.get(key, key)}"
        (directory / "ssm" / name.replace("/", "_")).write_text(value + "\n")


def put_token(directory: Path, value: str) -> None:
    """What scale-up stores for the instance (docs/REFERENCE.md §4)."""
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
