"""Several runner configurations in one deployment (docs/REFERENCE.md §6): the JSON list held
in the parameter `RUNNER_CONFIGS_PARAMETER_NAME` names, validated as the settings are.

Pure: text and the environment in, frozen `RunnerConfigs` out, or one `ConfigError` naming
every problem of the list. Each configuration is the environment overlaid with its
`environment`, read by `settings.load_settings` itself, so defaults, derived defaults and
required checks are the ones of one configuration. Without a list there is one configuration,
`default`, made of the environment: today's behaviour (`single`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from typing import Any

from chalicelib.errors import ConfigError
from chalicelib.rules.matching import DEFAULT_PRIORITY, Matcher, default_matcher, matcher_of
from chalicelib.settings import REQUIRED, FunctionName, Settings, load_settings

PARAMETER = "RUNNER_CONFIGS_PARAMETER_NAME"
DEFAULT_ID = "default"
CONFIG_ID = re.compile(r"[a-z0-9-]{1,32}")
# One deployment's, whatever the configuration: its App, its webhook, its queue, its table.
NOT_OVERRIDABLE = frozenset({
    "PARAMETER_GITHUB_APP_ID_NAME", "PARAMETER_GITHUB_APP_KEY_BASE64_NAME",
    "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME", "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME",
    "GHES_URL", "GHES_SSL_VERIFY", "SQS_URL_WEBHOOK", "LOG_LEVEL", "STATE_TABLE_NAME", PARAMETER,
})
ENTRY_KEYS = frozenset({"id", "matcherConfig", "environment"})
MATCHER_KEYS = frozenset({"labelMatchers", "exactMatch", "bidirectionalLabelMatch", "priority"})


@dataclass(frozen=True)
class RunnerConfig:
    """One runner configuration: its id, its settings and which jobs it takes."""

    id: str
    settings: Settings
    matcher: Matcher


@dataclass(frozen=True)
class RunnerConfigs:
    """Every configuration of the deployment, in list order, and the top-level settings."""

    top: Settings
    configs: tuple[RunnerConfig, ...]
    # The parameter's version the list was read at (0: no list).
    version: int = 0

    @property
    def first(self) -> RunnerConfig:
        """The configuration of a message without `runnerConfig`."""
        return self.configs[0]

    @property
    def from_list(self) -> bool:
        """Whether a list was read (messages then name their configuration)."""
        return self.version > 0

    def get(self, config_id: str | None) -> RunnerConfig | None:
        """The configuration `config_id` (None: the first), or None when there is none."""
        if config_id is None:
            return self.first
        return next((c for c in self.configs if c.id == config_id), None)

    @property
    def scopes(self) -> tuple[Settings, ...]:
        """What scale-down covers: each configuration, and the top-level `ENVIRONMENT` when no
        configuration has it (instances launched before the list existed)."""
        own = tuple(c.settings for c in self.configs)
        environments = {s.environment for s in own}
        extra = () if not self.top.environment or self.top.environment in environments \
            else (self.top,)
        return own + extra

    @property
    def environments(self) -> tuple[str, ...]:
        """The `ghr:environment` value of every scope."""
        return tuple(dict.fromkeys(s.environment for s in self.scopes))

    def scope_for(self, environment: str | None) -> Settings | None:
        """The settings of the scope whose instances carry `ghr:environment=environment`."""
        return next((s for s in self.scopes if s.environment == environment), None)


def single(settings: Settings) -> RunnerConfigs:
    """The one configuration of a deployment without a list: its own settings and labels."""
    return RunnerConfigs(settings, (RunnerConfig(DEFAULT_ID, settings,
                                                 default_matcher(settings.default_labels)),))


def load_top_settings(env: Mapping[str, str], function: FunctionName) -> Settings:
    """The top-level settings: with a list, a required value a configuration may set itself
    need not be set at the top (each configuration's own check names it when missing)."""
    has_list = bool((env.get(PARAMETER) or "").strip())
    relaxed = set(REQUIRED[function]) - NOT_OVERRIDABLE if has_list else set()
    return load_settings(env, function, relaxed=relaxed)


def parse_runner_configs(text: str, env: Mapping[str, str], function: FunctionName,
                         top: Settings, version: int = 1) -> RunnerConfigs:
    """The configurations in `text` over the environment `env`; one ConfigError naming every
    problem (bad JSON, duplicate ids or environments, unknown or non-overridable variables,
    bad values inside an entry)."""
    where = f"{PARAMETER} ({top.runner_configs_parameter_name})"
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{where}: invalid JSON ({error})") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where}: expected a non-empty JSON list of runner configurations")
    problems: list[str] = []
    configs = [_entry(n, entry, env, function, problems) for n, entry in enumerate(data, 1)]
    _unique("id", [e["id"] for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)],
            problems)
    _unique("ENVIRONMENT", [c.settings.environment for c in configs if c is not None], problems)
    if problems or not all(configs):
        raise ConfigError([f"{where}: {problem}" for problem in problems])
    return RunnerConfigs(top, tuple(c for c in configs if c is not None), max(1, version))


def _unique(what: str, values: list[str], problems: list[str]) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        problems.append(f"{what} must be unique, repeated: {', '.join(repeated)}")


def _entry(n: int, entry: Any, env: Mapping[str, str], function: FunctionName,
           problems: list[str]) -> RunnerConfig | None:
    """One entry of the list; its problems added to `problems`, prefixed with where it is."""
    if not isinstance(entry, dict):
        problems.append(f"entry {n}: expected an object")
        return None
    config_id = entry.get("id")
    where = f"entry {n}"
    found: list[str] = [f"unknown key {key!r}" for key in sorted(set(entry) - ENTRY_KEYS)]
    if not isinstance(config_id, str) or not CONFIG_ID.fullmatch(config_id):
        found.append(f"id: expected 1 to 32 of a-z, 0-9 and -, got {config_id!r}"[:120])
        config_id = None
    else:
        where = f"entry {n} ({config_id})"
    overrides = _overrides(entry.get("environment", {}), found)
    merged = {**env, **overrides}
    top_environment = (env.get("ENVIRONMENT") or "").strip()
    if not (overrides.get("ENVIRONMENT") or "").strip() and top_environment:
        merged["ENVIRONMENT"] = f"{top_environment}-{config_id or n}"
    settings = None
    try:
        settings = load_settings(merged, function)
    except ConfigError as error:
        found.extend(error.problems)
    matcher = _matcher(entry.get("matcherConfig"), settings, found)
    problems.extend(f"{where}: {problem}" for problem in found)
    if found or settings is None or matcher is None or config_id is None:
        return None
    return RunnerConfig(config_id, settings, matcher)


def _overrides(value: Any, problems: list[str]) -> dict[str, str]:
    """The entry's `environment`: string values of variables a configuration may set."""
    if not isinstance(value, dict):
        problems.append("environment: expected an object of VARIABLE: \"value\"")
        return {}
    known = known_variables()
    for name, item in sorted(value.items()):
        if name in NOT_OVERRIDABLE:
            problems.append(f"environment.{name}: not overridable per configuration")
        elif name not in known:
            problems.append(f"environment.{name}: unknown variable")
        elif not isinstance(item, str):
            problems.append(f"environment.{name}: expected a string, got {type(item).__name__}")
    return {name: item for name, item in value.items()
            if name in known and name not in NOT_OVERRIDABLE and isinstance(item, str)}


def _matcher(value: Any, settings: Settings | None, problems: list[str]) -> Matcher | None:
    """The entry's `matcherConfig`; absent: the configuration's own labels, exactly."""
    if value is None:
        return default_matcher(settings.default_labels) if settings else None
    if not isinstance(value, dict):
        problems.append("matcherConfig: expected an object")
        return None
    found = [f"matcherConfig: unknown key {key!r}" for key in sorted(set(value) - MATCHER_KEYS)]
    sets = value.get("labelMatchers")
    if not isinstance(sets, list) or not sets or not all(
            isinstance(s, list) and s and all(isinstance(x, str) and x.strip() for x in s)
            for s in sets):
        found.append("matcherConfig.labelMatchers: expected a non-empty list of non-empty "
                      "lists of labels")
    flags = {key: value.get(key, False) for key in ("exactMatch", "bidirectionalLabelMatch")}
    found.extend(f"matcherConfig.{key}: expected true or false" for key, flag in flags.items()
                 if not isinstance(flag, bool))
    priority = value.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        found.append(f"matcherConfig.priority: expected a non-negative integer, got {priority!r}")
    problems.extend(found)
    if found:
        return None
    return matcher_of(sets, exact=flags["exactMatch"],  # type: ignore[arg-type]
                      bidirectional=flags["bidirectionalLabelMatch"], priority=priority)


class _Reads(dict[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.names.add(key)
        return super().get(key, default)


@cache
def known_variables() -> frozenset[str]:
    """Every variable the settings read: what a configuration's `environment` may name. Taken
    from `load_settings` itself, so that the two never disagree."""
    reads = _Reads()
    with suppress(ConfigError):  # an empty environment may not be valid; the names matter
        load_settings(reads)
    return frozenset(reads.names | {name for names in REQUIRED.values() for name in names})
