"""Scenarios: the jobs a demo replays, loaded from a JSON or YAML list (see demo/README.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "default.json"
DEFAULT_LABELS = ("self-hosted", "linux", "x64")
# GitHub Apps a scenario may ask for: one GetParameters call reads five (REFERENCE §10).
MAX_APPS = 5
# Runner configurations (REFERENCE §6): what an entry of `runnerConfigs` may hold.
CONFIG_ID = re.compile(r"[a-z0-9-]{1,32}")
CONFIG_KEYS = frozenset({"id", "matcherConfig", "environment"})
MATCHER_KEYS = frozenset({"labelMatchers", "exactMatch", "bidirectionalLabelMatch", "priority"})


class ScenarioError(ValueError):
    """A scenario file that cannot be replayed; the message names every bad entry."""


@dataclass(frozen=True)
class ScenarioJob:
    """One workflow job: queued `queued_at` seconds after the start, running `duration` seconds."""

    owner: str
    repo: str
    labels: tuple[str, ...]
    queued_at: float
    duration: float

    @property
    def full_repo(self) -> str:
        """`owner/repo`."""
        return f"{self.owner}/{self.repo}"


@dataclass(frozen=True)
class Interruption:
    """Spot interruptions `at` seconds after the start: `count` busy runners' instances get
    EC2's two-minute notice."""

    at: float
    count: int


@dataclass(frozen=True)
class Scenario:
    """The jobs of a scenario, ordered by queue time."""

    name: str
    jobs: tuple[ScenarioJob, ...]
    # GitHub Apps installed on every owner (REFERENCE §10); the first is the webhook's.
    apps: int = 1
    interruptions: tuple[Interruption, ...] = ()
    # Several runner configurations (REFERENCE §6's list, as written to the SSM parameter);
    # empty: the one configuration of the functions' environment.
    runner_configs: tuple[dict[str, Any], ...] = ()

    @property
    def config_ids(self) -> tuple[str, ...]:
        """The runner configurations' ids, in list order (none without `runnerConfigs`)."""
        return tuple(str(config["id"]) for config in self.runner_configs)

    def config_of(self, job: ScenarioJob) -> str | None:
        """The configuration the webhook routes `job` to (REFERENCE §6's matching rule), None
        without `runnerConfigs` or when none matches."""
        position = route(job.labels, self.runner_configs)
        return None if position is None else self.config_ids[position]

    @property
    def owners(self) -> tuple[str, ...]:
        """The distinct repository owners (each needs the App installed)."""
        return tuple(dict.fromkeys(job.owner for job in self.jobs))

    @property
    def repos(self) -> tuple[str, ...]:
        """The distinct `owner/repo` names."""
        return tuple(dict.fromkeys(job.full_repo for job in self.jobs))

    @property
    def last_queued_at(self) -> float:
        """When the last job is queued (simulated seconds)."""
        return max((job.queued_at for job in self.jobs), default=0.0)


def scenario_path(value: str | Path) -> Path:
    """The file of a scenario: a path, or the name of one in demo/scenarios (`two-apps`)."""
    source = Path(value)
    if source.exists() or source.suffix:
        return source
    for suffix in (".json", ".yaml", ".yml"):
        if (SCENARIOS / f"{source.name}{suffix}").exists():
            return SCENARIOS / f"{source.name}{suffix}"
    return source


def load_scenario(path: str | Path = DEFAULT_SCENARIO) -> Scenario:
    """Read and validate a scenario file (`.json`, `.yaml` or `.yml`), or a scenario of
    demo/scenarios by name."""
    source = scenario_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"cannot read scenario {source}: {error.strerror}") from error
    if source.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ScenarioError(f"{source}: not valid YAML: {error}") from error
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ScenarioError(f"{source}: not valid JSON: {error}") from error
    return parse_scenario(data, name=source.stem)


def parse_scenario(data: Any, name: str = "scenario") -> Scenario:
    """Validate already-decoded scenario data: a non-empty list of job objects, or an object
    `{"apps": N, "jobs": [...]}` replaying them with N GitHub Apps."""
    apps = 1
    interruptions: tuple[Interruption, ...] = ()
    configs: tuple[dict[str, Any], ...] = ()
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"apps", "jobs", "interruptions", "runnerConfigs"})
        apps = data.get("apps", 1)
        if unknown:
            raise ScenarioError(f"{name}: unknown field(s) {', '.join(unknown)}")
        if isinstance(apps, bool) or not isinstance(apps, int) or not 1 <= apps <= MAX_APPS:
            raise ScenarioError(f"{name}: apps must be a whole number from 1 to {MAX_APPS}")
        interruptions = _interruptions(data.get("interruptions", []), name)
        if "runnerConfigs" in data:
            configs = runner_configs(data["runnerConfigs"], name)
        data = data.get("jobs")
    if not isinstance(data, list) or not data:
        raise ScenarioError(f"{name}: a scenario is a non-empty list of jobs")
    jobs: list[ScenarioJob] = []
    problems: list[str] = []
    for index, entry in enumerate(data):
        try:
            jobs.append(_parse_job(entry))
        except ScenarioError as error:
            problems.append(f"job {index}: {error}")
    if configs:
        problems.extend(f"job {index}: labels {', '.join(job.labels)} match no runner "
                        "configuration (the webhook would not accept it)"
                        for index, job in enumerate(jobs) if route(job.labels, configs) is None)
    if problems:
        raise ScenarioError(f"{name}: " + "; ".join(problems))
    return Scenario(name=name, jobs=tuple(sorted(jobs, key=lambda job: job.queued_at)),
                    apps=apps, interruptions=interruptions, runner_configs=configs)


def runner_configs(data: Any, name: str) -> tuple[dict[str, Any], ...]:
    """`runnerConfigs`: REFERENCE §6's list, `[{"id", "matcherConfig", "environment"}, ...]`,
    checked for its shape (the functions check the variables' values); one ScenarioError
    naming every problem."""
    if not isinstance(data, list) or not data:
        raise ScenarioError(f"{name}: runnerConfigs must be a non-empty list of "
                            '{"id", "matcherConfig", "environment"} objects')
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        where = f"runnerConfigs[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        config_id = entry.get("id")
        if not isinstance(config_id, str) or not CONFIG_ID.fullmatch(config_id):
            problems.append(f"{where}: id must be 1 to 32 of a-z, 0-9 and -")
        elif config_id in seen:
            problems.append(f"{where}: id {config_id} repeated")
        else:
            seen.add(config_id)
            where = f"runnerConfigs[{index}] ({config_id})"
        problems.extend(f"{where}: {problem}" for problem in _config_problems(entry))
    if problems:
        raise ScenarioError(f"{name}: " + "; ".join(problems))
    return tuple(data)


def _config_problems(entry: dict[str, Any]) -> list[str]:
    """What is wrong with one entry of `runnerConfigs` but its id."""
    problems = [f"unknown field {key}" for key in sorted(set(entry) - CONFIG_KEYS)]
    environment = entry.get("environment", {})
    if not isinstance(environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in environment.items()):
        problems.append('environment must be an object of "VARIABLE": "string value"')
    matcher = entry.get("matcherConfig")
    if matcher is None:
        return problems
    if not isinstance(matcher, dict):
        return [*problems, "matcherConfig must be an object"]
    problems += [f"matcherConfig: unknown field {key}"
                 for key in sorted(set(matcher) - MATCHER_KEYS)]
    sets = matcher.get("labelMatchers")
    if not isinstance(sets, list) or not sets or not all(
            isinstance(s, list) and s and all(isinstance(x, str) and x for x in s)
            for s in sets):
        problems.append("matcherConfig.labelMatchers must be a non-empty list of non-empty "
                        "lists of labels")
    problems += [f"matcherConfig.{flag} must be true or false"
                 for flag in ("exactMatch", "bidirectionalLabelMatch")
                 if not isinstance(matcher.get(flag, False), bool)]
    priority = matcher.get("priority", 999)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        problems.append("matcherConfig.priority must be a whole number >= 0")
    return problems


def route(labels: tuple[str, ...] | list[str],
          configs: tuple[dict[str, Any], ...]) -> int | None:
    """The position of the configuration the webhook gives a job with `labels`, by REFERENCE §6's
    rule (the functions' own, chalicelib.rules.matching); None when none matches. A
    configuration without `matcherConfig` matches its own labels exactly."""
    from chalicelib.rules.matching import choose, default_matcher, matcher_of

    matchers = []
    for config in configs:
        matcher = config.get("matcherConfig")
        if matcher is None:
            environment = config.get("environment", {})
            own = [label for label in environment.get("RUNNER_LABELS", "").split(",") if label]
            matchers.append(default_matcher(["self-hosted",
                                             environment.get("RUNNER_OS", "linux"),
                                             environment.get("RUNNER_ARCHITECTURE", "x64"),
                                             *own]))
        else:
            matchers.append(matcher_of(matcher["labelMatchers"],
                                       exact=matcher.get("exactMatch", False),
                                       bidirectional=matcher.get("bidirectionalLabelMatch", False),
                                       priority=matcher.get("priority", 999)))
    return choose(list(labels), matchers)


def _interruptions(data: Any, name: str) -> tuple[Interruption, ...]:
    """`[{"at": seconds, "count": n}, ...]`: spot interruptions of busy runners."""
    if not isinstance(data, list):
        raise ScenarioError(f"{name}: interruptions must be a list")
    found = []
    for index, entry in enumerate(data):
        count = entry.get("count", 1) if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or set(entry) - {"at", "count"} \
                or isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ScenarioError(f"{name}: interruption {index}: expected "
                                '{"at": seconds, "count": a whole number >= 1}')
        found.append(Interruption(_seconds(entry.get("at"), "at", minimum=0.0), count))
    return tuple(sorted(found, key=lambda i: i.at))


def _parse_job(entry: Any) -> ScenarioJob:
    if not isinstance(entry, dict):
        raise ScenarioError("not an object")
    unknown = sorted(set(entry) - {"repo", "labels", "queued_at", "duration"})
    if unknown:
        raise ScenarioError(f"unknown field(s) {', '.join(unknown)}")
    repo = entry.get("repo")
    if not isinstance(repo, str) or repo.count("/") != 1 or not all(repo.split("/")):
        raise ScenarioError("repo must be 'owner/name'")
    labels = entry.get("labels", list(DEFAULT_LABELS))
    if (not isinstance(labels, list) or not labels
            or not all(isinstance(label, str) and label for label in labels)):
        raise ScenarioError("labels must be a non-empty list of strings")
    queued_at = _seconds(entry.get("queued_at"), "queued_at", minimum=0.0)
    duration = _seconds(entry.get("duration"), "duration", minimum=None)
    owner, name = repo.split("/")
    return ScenarioJob(owner, name, tuple(labels), queued_at, duration)


def _seconds(value: Any, field: str, minimum: float | None) -> float:
    # bool is an int in Python; `true` seconds is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{field} must be a number of seconds")
    if minimum is None and value <= 0:
        raise ScenarioError(f"{field} must be > 0")
    if minimum is not None and value < minimum:
        raise ScenarioError(f"{field} must be >= {minimum:g}")
    return float(value)
