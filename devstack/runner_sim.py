"""What runner instances and their start script would do, played against moto and the GitHub fake.

A real instance boots, reads its SecureString `<token_path>/<instance-id>` once and deletes it,
then either runs `config.sh <arguments>` (registration token) or `run.sh --jitconfig <config>`
(JIT), takes jobs whose labels it carries, and as an ephemeral runner removes itself and terminates
its instance after one job. Each `step()` advances every instance of the environment by that much.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devstack.github_fake import GitHubFake
from devstack.github_records import ApiError
from devstack.github_state import DEFAULT_RUNNER_LABELS

TAG_ENVIRONMENT = "ghr:environment"

Event = tuple[float, str, str]  # (time, kind, detail)


@dataclass(frozen=True)
class ConfigArgs:
    """The `config.sh` arguments of docs/REFERENCE.md §4."""

    url: str
    token: str
    labels: tuple[str, ...] = ()
    runner_group: str | None = None
    disable_update: bool = False
    ephemeral: bool = False


# Unquoted, these make sh expand or run something (or end the command): the start script
# refuses such a value rather than guess, and so does the simulation.
_SH_SPECIAL = frozenset("$`;&|<>()*?[\n")


def split_words(value: str) -> list[str]:
    r"""The words sh makes of `value`, by the rules of infra/src/start-runner.sh's split_words.

    Blanks separate words; '...' is literal; "..." is literal but for \\ \" \$ \` and
    \<newline>; an unquoted \ quotes the next character. A value whose meaning would depend on
    sh expanding or running something, or with an unterminated quote, is refused (ValueError).
    Messages never quote the value: it holds a registration token.
    """
    words: list[str] = []
    word: list[str] = []
    started = False
    index, end = 0, len(value)
    while index < end:
        char, index = value[index], index + 1
        if char in " \t":
            if started:
                words.append("".join(word))
            word, started = [], False
        elif char == "'":
            close = value.find("'", index)
            if close < 0:
                raise ValueError("unterminated single quote")
            word.append(value[index:close])
            index, started = close + 1, True
        elif char == '"':
            started = True
            while True:
                if index >= end:
                    raise ValueError("unterminated double quote")
                char, index = value[index], index + 1
                if char == '"':
                    break
                if char in "$`":
                    raise ValueError("expansion inside double quotes")
                if char == "\\" and index < end and value[index] in '$`"\\\n':
                    if value[index] != "\n":
                        word.append(value[index])
                    index += 1
                else:
                    word.append(char)
        elif char == "\\":
            if index >= end:
                raise ValueError("trailing backslash")
            if value[index] != "\n":
                word.append(value[index])
                started = True
            index += 1
        elif char in _SH_SPECIAL or (char in "~#" and not started):
            raise ValueError(f"unquoted shell-special character at position {index - 1}")
        else:
            word.append(char)
            started = True
    if started:
        words.append("".join(word))
    return words


def parse_config_args(value: str) -> ConfigArgs:
    """Parse `--url U --token T [--labels a,b] [--runnergroup G] [--disableupdate] [--ephemeral]`,
    split as the start script splits it (split_words).

    Error messages never quote a word of `value`: it holds a registration token.
    """
    try:
        words = split_words(value)
    except ValueError as err:
        raise ValueError(f"config.sh arguments are not valid shell words: {err}") from err
    options: dict[str, str] = {}
    flags: set[str] = set()
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("--url", "--token", "--labels", "--runnergroup"):
            if index + 1 >= len(words):
                raise ValueError(f"{word} needs a value")
            options[word], index = words[index + 1], index + 2
        elif word in ("--disableupdate", "--ephemeral"):
            flags.add(word)
            index += 1
        else:
            raise ValueError(f"unknown config.sh argument at position {index}")
    if "--url" not in options or "--token" not in options:
        raise ValueError("config.sh needs --url and --token")
    labels = tuple(label for label in options.get("--labels", "").split(",") if label)
    return ConfigArgs(
        url=options["--url"],
        token=options["--token"],
        labels=labels,
        runner_group=options.get("--runnergroup"),
        disable_update="--disableupdate" in flags,
        ephemeral="--ephemeral" in flags,
    )


class RunnerSimulation:
    """Boots, registers, runs and retires the runner instances of one environment, or of
    several (one per runner configuration, REFERENCE §6).

    `environment` is one `ghr:environment`, or a mapping of several to the labels a runner's
    machine gives it on its own (self-hosted, OS, architecture; default self-hosted, Linux,
    X64). A runner registered with config.sh carries those, then the labels of its `--labels`.
    A JIT runner carries exactly the labels its configuration was generated with. GitHub then
    hands a job only to a runner that carries every label of the job (github_jobs.dispatch).
    """

    def __init__(
        self,
        github_fake: GitHubFake,
        ec2_client: Any,
        ssm_client: Any,
        *,
        environment: str | Mapping[str, Sequence[str]],
        token_path: str,
        name_prefix: str = "",
        boot_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.github = github_fake
        self.ec2 = ec2_client
        self.ssm = ssm_client
        self.machine_labels = {environment: DEFAULT_RUNNER_LABELS} \
            if isinstance(environment, str) else dict(environment)
        self.environments = tuple(self.machine_labels)
        self.environment = self.environments[0]
        self.instance_environment: dict[str, str] = {}  # instance id -> its ghr:environment
        self.token_path = token_path.rstrip("/")
        self.name_prefix = name_prefix
        self.boot_delay = boot_delay
        self.clock = clock
        self.events: list[Event] = []
        self.registered: dict[str, int] = {}  # instance id -> runner id
        self.failed: set[str] = set()  # instances whose start script failed for good
        self._gone: set[str] = set()

    def step(self) -> list[Event]:
        """Advance every instance one tick; returns the events of this tick."""
        now = self.clock()
        first = len(self.events)
        running = dict(self._running_instances())
        for instance_id, launched in running.items():
            if instance_id in self.registered or instance_id in self.failed:
                continue
            if now - launched >= self.boot_delay:
                self._boot(instance_id, now)
        self._notice_stopped(running, now)
        for job in self.github.dispatch(now):
            detail = f"job {job.id} ({job.full_repo}) on {job.runner_name}"
            self._event(now, "job started", detail)
        for job in self.github.complete_due(now):
            self._event(
                now, "job completed", f"job {job.id} ({job.full_repo}) on {job.runner_name}"
            )
            self._retire(job.runner_id, now)
        return self.events[first:]

    def _running_instances(self) -> Iterator[tuple[str, float]]:
        paginator = self.ec2.get_paginator("describe_instances")
        filters = [
            {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": list(self.environments)},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        for page in paginator.paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    self.instance_environment[instance["InstanceId"]] = tags.get(
                        TAG_ENVIRONMENT, self.environment)
                    yield instance["InstanceId"], instance["LaunchTime"].timestamp()

    def _boot(self, instance_id: str, now: float) -> None:
        """The start script: read and delete the token parameter, then register."""
        name = f"{self.token_path}/{instance_id}"
        try:
            value = self.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            return  # scale-up has not written it yet: a real start script polls too
        self.ssm.delete_parameter(Name=name)
        try:
            runner_id, how = self._register(instance_id, value)
        except (ApiError, ValueError) as err:
            # The secret itself never goes into the event: only what failed.
            reason = err.message if isinstance(err, ApiError) else str(err)
            self.failed.add(instance_id)
            self._event(now, "registration failed", f"{instance_id}: {reason}")
            return
        self.registered[instance_id] = runner_id
        self._event(now, "registered", f"{instance_id} as runner {runner_id} ({how})")

    def _register(self, instance_id: str, value: str) -> tuple[int, str]:
        if not value.lstrip().startswith("--"):
            return self.github.jit_runner_online(value.strip()), "jit"
        args = parse_config_args(value)
        base = self.github.url.rstrip("/") + "/"
        if not args.url.startswith(base):
            raise ValueError("--url does not point at this GitHub")
        runner_id = self.github.register_runner(
            args.url[len(base) :].strip("/"),
            f"{self.name_prefix}{instance_id}",
            list(args.labels),
            token=args.token,
            runner_group=args.runner_group,
            ephemeral=args.ephemeral,
            default_labels=self.machine_labels.get(
                self.instance_environment.get(instance_id, self.environment),
                DEFAULT_RUNNER_LABELS),
        )
        return runner_id, "ephemeral" if args.ephemeral else "reusable"

    def _notice_stopped(self, running: dict[str, float], now: float) -> None:
        """An instance terminated by someone else: its runner goes offline in GitHub."""
        for instance_id, runner_id in self.registered.items():
            if instance_id in running or instance_id in self._gone:
                continue
            self._gone.add(instance_id)
            if any(r.id == runner_id for r in self.github.runners()):
                self.github.set_runner_status(runner_id, "offline")
            self._event(now, "stopped", f"{instance_id} gone; runner {runner_id} offline")

    def _retire(self, runner_id: int | None, now: float) -> None:
        """An ephemeral runner, its job done and itself removed, terminates its own instance."""
        instance_id = next((i for i, r in self.registered.items() if r == runner_id), None)
        if instance_id is None or instance_id in self._gone:
            return
        if any(r.id == runner_id for r in self.github.runners()):
            return  # a reusable runner waits for the next job
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        self._gone.add(instance_id)
        self._event(now, "terminated", instance_id)

    def _event(self, now: float, kind: str, detail: str) -> None:
        self.events.append((now, kind, detail))
