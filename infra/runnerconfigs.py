"""The runner-configurations file: several runner configurations in one deployment (multi-runner).

    python -m infra.build --runner-configs infra/params/runners.yaml --output-dir build/infra

A YAML list, one entry per configuration (docs/DEPLOY.md, *Several runner configurations*):

    - id: linux-arm64                       # [a-z0-9-]{1,32}, unique
      matcherConfig: {labelMatchers: [[self-hosted, linux, arm64]], exactMatch: true}
      environment: {RUNNERS_MAXIMUM_COUNT: 20}   # overrides of the functions' variables
      launchTemplate: {runner_architecture: arm64, instance_types: [m7g.large]}

`id`, `matcherConfig` and `environment` become the JSON list of docs/REFERENCE.md §6
that the functions read from the SSM parameter named by RUNNER_CONFIGS_PARAMETER_NAME;
`launchTemplate` becomes the configuration's own launch template, runner role and instance
profile, start-script parameters and log groups (infra/runnerconfig_resources.py). Loading
checks everything at once and names every problem in one error, as the functions' settings do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra import buildconfig
from infra.envmap import FUNCTION_ENVIRONMENT

ID = re.compile(r"^[a-z0-9-]{1,32}$")
# CloudFormation allows 500 resources per stack, each configuration adds about 14; IAM attaches
# 10 managed policies to a role, scale-up's has 3 plus one per 5 configurations.
MAX_CONFIGURATIONS = 25
# REFERENCE §6: the functions refuse these in a configuration's environment.
NOT_OVERRIDABLE = (
    "PARAMETER_GITHUB_APP_ID_NAME", "PARAMETER_GITHUB_APP_KEY_BASE64_NAME",
    "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME", "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME",
    "GHES_URL", "GHES_SSL_VERIFY", "SQS_URL_WEBHOOK", "LOG_LEVEL", "STATE_TABLE_NAME",
    "RUNNER_CONFIGS_PARAMETER_NAME",
)
# The deployment's resources that the roles are scoped to: a configuration pointing elsewhere
# would be denied at run time, so the build refuses it.
DEPLOYMENT_WIDE = ("SSM_TOKEN_PATH", "SSM_CONFIG_PATH", "RUNNER_BINARIES_BUCKET",
                   "BUILD_QUEUE_NAME", "RUNNER_TOKEN_KMS_KEY_ID")
# Written by the build from `launchTemplate`, so that the values and the template agree.
GENERATED = {
    "LAUNCH_TEMPLATE_NAME": "the generated launch template",
    "RUNNER_OS": "launchTemplate.runner_os",
    "RUNNER_ARCHITECTURE": "launchTemplate.runner_architecture",
    "INSTANCE_TYPES": "launchTemplate.instance_types",
    "AMI_ID_SSM_PARAMETER_NAME": "launchTemplate.ami_id_ssm_parameter_name",
}
OVERRIDABLE = (set(FUNCTION_ENVIRONMENT) | {"ENVIRONMENT"}) - set(NOT_OVERRIDABLE) - set(
    DEPLOYMENT_WIDE) - set(GENERATED)
# Variables whose value is JSON: a YAML list or mapping given for them is written as JSON.
JSON_VARIABLES = ("SCALE_DOWN_CONFIG", "ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS", "AMI_FILTER",
                  "JOB_RETRY_CONFIG", "RUNNER_EC2_TAGS", "REPOSITORY_ALLOW_LIST")
BOOLEAN_VARIABLES = ("ENABLE_ORGANIZATION_RUNNERS", "ENABLE_EPHEMERAL_RUNNERS",
                     "ENABLE_JIT_CONFIG", "ENABLE_JOB_QUEUED_CHECK", "DISABLE_RUNNER_AUTOUPDATE")
CHOICES = {"INSTANCE_TARGET_CAPACITY_TYPE": ("spot", "on-demand")}
MATCHER_KEYS = {"labelMatchers": list, "exactMatch": bool, "bidirectionalLabelMatch": bool,
                "priority": int}
ENTRY_KEYS = ("id", "matcherConfig", "environment", "launchTemplate")
OSES = ("linux", "windows")
ARCHITECTURES = ("x64", "arm64")
# EC2 takes at most 16 KiB of user data; the start script leaves this much for the hooks.
USER_DATA_LIMIT = 16 * 1024


class RunnerConfigsError(ValueError):
    """The runner-configurations file is not valid; the message names every problem."""


@dataclass(frozen=True)
class LaunchSettings:
    """What a configuration's launch template, role and start script are built from."""

    runner_os: str = "linux"
    runner_architecture: str = "x64"
    instance_types: tuple[str, ...] = ()
    ami_id: str | None = None
    ami_id_ssm_parameter_name: str | None = None
    block_device_mappings: tuple[dict[str, Any], ...] = ()
    userdata_pre_install: str = ""
    userdata_post_install: str = ""
    runner_additional_security_group_ids: tuple[str, ...] = ()
    runner_iam_role_managed_policy_arns: tuple[str, ...] = ()
    runner_run_as: str | None = None


@dataclass(frozen=True)
class RunnerConfig:
    """One configuration: its id, matcher, environment overrides (strings) and launch settings."""

    id: str
    matcher_config: dict[str, Any] | None
    environment: dict[str, str]
    launch: LaunchSettings

    @property
    def logical_suffix(self) -> str:
        """The id as a CloudFormation logical-id suffix: `linux-x64` -> `LinuxX64`."""
        return "".join(part[:1].upper() + part[1:] for part in self.id.split("-"))


# launchTemplate field -> (kinds, doc); a list field takes a list of strings.
LAUNCH_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "runner_os": ((str,), "`linux` (default) or `windows` (x64 only); picks the start script"),
    "runner_architecture": ((str,), "`x64` (default) or `arm64`"),
    "instance_types": ((list,), "required: the fleet's instance types, in order"),
    "ami_id": ((str,), "an AMI id (`ami-...`)"),
    "ami_id_ssm_parameter_name": ((str,), "SSM parameter holding the AMI id, resolved at each "
                                          "launch; default: AWS's latest Amazon Linux 2023 or "
                                          "Windows Server 2022 of the OS and architecture"),
    "block_device_mappings": ((list,), "every volume, root included, in the build "
                                       "configuration's shape; default: the stack's (the "
                                       "RunnerVolume* root volume and the build "
                                       "configuration's volumes)"),
    "userdata_pre_install": ((str,), "script run before the runner is installed"),
    "userdata_post_install": ((str,), "script run after it is installed"),
    "runner_additional_security_group_ids": ((list,), "security groups added to the stack's"),
    "runner_iam_role_managed_policy_arns": ((list,), "managed policies added to this "
                                                     "configuration's runner role"),
    "runner_run_as": ((str,), "OS user of the runner (linux); default: RunnerRunAs"),
}


def load(path: Path) -> list[RunnerConfig]:
    """The configurations of the file at `path`; RunnerConfigsError names every problem."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RunnerConfigsError(f"{path}: {error}") from error
    try:
        return parse(document)
    except RunnerConfigsError as error:
        raise RunnerConfigsError(f"{path}:\n  {error}") from None


def parse(document: Any) -> list[RunnerConfig]:
    """The configurations of a loaded document; RunnerConfigsError names every problem."""
    problems: list[str] = []
    if not isinstance(document, list) or not document:
        raise RunnerConfigsError("expected a non-empty list of runner configurations")
    if len(document) > MAX_CONFIGURATIONS:
        problems.append(f"{len(document)} configurations, at most {MAX_CONFIGURATIONS} "
                        "(CloudFormation's 500 resources per stack)")
    configs = [_config(f"[{i}]", entry, problems) for i, entry in enumerate(document)]
    problems += _across(configs)
    if problems:
        raise RunnerConfigsError("\n  ".join(problems))
    return [c for c in configs if c is not None]


def _config(where: str, entry: Any, problems: list[str]) -> RunnerConfig | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping of {', '.join(ENTRY_KEYS)}")
        return None
    config_id = entry.get("id")
    if isinstance(config_id, str) and ID.match(config_id):
        where = f"{where} ({config_id})"
    else:
        problems.append(f"{where}.id: required, [a-z0-9-]{{1,32}}")
        config_id = f"invalid-{where.strip('[]')}"
    problems += [f"{where}.{key}: unknown key" for key in entry if key not in ENTRY_KEYS]
    matcher = _matcher(f"{where}.matcherConfig", entry.get("matcherConfig"), problems)
    environment = _environment(f"{where}.environment", entry.get("environment") or {}, problems)
    launch = _launch(f"{where}.launchTemplate", entry.get("launchTemplate"), problems)
    return RunnerConfig(config_id, matcher, environment, launch)


def _matcher(where: str, matcher: Any, problems: list[str]) -> dict[str, Any] | None:
    if matcher is None:
        return None
    if not isinstance(matcher, dict):
        problems.append(f"{where}: expected a mapping")
        return None
    for key, value in matcher.items():
        kind = MATCHER_KEYS.get(key)
        if kind is None:
            problems.append(f"{where}.{key}: unknown key")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{where}.{key}: expected {kind.__name__}")
    sets = matcher.get("labelMatchers")
    if not isinstance(sets, list) or not sets or not all(
            isinstance(s, list) and s and all(isinstance(label, str) and label for label in s)
            for s in sets):
        problems.append(f"{where}.labelMatchers: required, a list of non-empty lists of labels")
    if isinstance(matcher.get("priority"), int) and matcher["priority"] < 0:
        problems.append(f"{where}.priority: 0 or more")
    return dict(matcher)


def _environment(where: str, environment: Any, problems: list[str]) -> dict[str, str]:
    if not isinstance(environment, dict):
        problems.append(f"{where}: expected a mapping of variables")
        return {}
    values: dict[str, str] = {}
    for name, value in environment.items():
        at = f"{where}.{name}"
        if name in NOT_OVERRIDABLE:
            problems.append(f"{at}: not overridable (one value for the whole deployment)")
        elif name in DEPLOYMENT_WIDE:
            problems.append(f"{at}: not overridable here (the roles are scoped to the "
                            "deployment's own)")
        elif name in GENERATED:
            problems.append(f"{at}: set by {GENERATED[name]}")
        elif name not in OVERRIDABLE:
            problems.append(f"{at}: unknown variable")
        else:
            text = _text(at, name, value, problems)
            if text is not None:
                values[name] = text
    return values


def _text(at: str, name: str, value: Any, problems: list[str]) -> str | None:
    """A variable's value as the string the functions read, or None with a problem."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, str)):
        text = str(value)
    elif isinstance(value, (list, dict)) and name in JSON_VARIABLES:
        text = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    else:
        problems.append(f"{at}: expected a string, number, boolean or list of strings")
        return None
    problem = _value_problem(name, text)
    if problem:
        problems.append(f"{at}: {problem}")
    return text


def _value_problem(name: str, text: str) -> str | None:
    """What is wrong with a variable's value, for the variables whose form is simple to tell."""
    if name in BOOLEAN_VARIABLES and text not in ("true", "false"):
        return "expected true or false"
    if name == "RUNNERS_MAXIMUM_COUNT" and not re.fullmatch(r"-1|\d+", text):
        return "expected a whole number, or -1 for no cap"
    if name in CHOICES and text not in CHOICES[name]:
        return f"one of {', '.join(CHOICES[name])}"
    if name in JSON_VARIABLES and text:
        try:
            json.loads(text)
        except ValueError:
            return "not JSON"
    if name == "ENVIRONMENT" and not re.fullmatch(r"[A-Za-z0-9+\-=._:@/]{1,128}", text):
        return "not a valid tag value"
    return None


def _launch(where: str, launch: Any, problems: list[str]) -> LaunchSettings:
    if not isinstance(launch, dict):
        problems.append(f"{where}: required, a mapping with at least instance_types")
        return LaunchSettings()
    values: dict[str, Any] = {}
    for name, value in launch.items():
        spec = LAUNCH_FIELDS.get(name)
        if spec is None:
            problems.append(f"{where}.{name}: unknown field")
        elif not isinstance(value, spec[0]):
            problems.append(f"{where}.{name}: expected {spec[0][0].__name__}")
        elif name == "block_device_mappings" and isinstance(value, list):
            values[name] = tuple(_volumes(f"{where}.{name}", value, problems))
        elif isinstance(value, list):
            if all(isinstance(v, str) and v for v in value):
                values[name] = tuple(value)
            else:
                problems.append(f"{where}.{name}: expected a list of strings")
        else:
            values[name] = value
    settings = LaunchSettings(**values)
    problems += [f"{where}.{p}" for p in _launch_problems(settings)]
    return settings


def _volumes(where: str, volumes: list[Any], problems: list[str]) -> list[dict[str, Any]]:
    _, fields = buildconfig.FIELDS["block_device_mappings"]
    entries = [buildconfig._entry(f"{where}[{i}]", v, fields, problems)
               for i, v in enumerate(volumes)]
    names = [e.get("device_name") for e in entries]
    for i, entry in enumerate(entries):
        if names.count(entry.get("device_name")) > 1:
            problems.append(f"{where}[{i}].device_name: listed twice")
        if entry and entry.get("volume_size") is None and entry.get("snapshot_id") is None:
            problems.append(f"{where}[{i}].volume_size: required without snapshot_id")
    return entries


def _launch_problems(settings: LaunchSettings) -> list[str]:
    problems: list[str] = []
    if settings.runner_os not in OSES:
        problems.append(f"runner_os: one of {', '.join(OSES)}")
    if settings.runner_architecture not in ARCHITECTURES:
        problems.append(f"runner_architecture: one of {', '.join(ARCHITECTURES)}")
    if settings.runner_os == "windows" and settings.runner_architecture != "x64":
        problems.append("runner_architecture: Windows runners are x64 only")
    if not settings.instance_types:
        problems.append("instance_types: required")
    if settings.ami_id is not None and settings.ami_id_ssm_parameter_name is not None:
        problems.append("ami_id: give ami_id or ami_id_ssm_parameter_name, not both")
    if settings.ami_id is not None and not re.fullmatch(r"ami-[0-9a-f]{8,17}", settings.ami_id):
        problems.append("ami_id: expected ami-<hex>")
    name = settings.ami_id_ssm_parameter_name
    if name is not None and not re.fullmatch(r"/[A-Za-z0-9_.\-/]+", name):
        problems.append("ami_id_ssm_parameter_name: expected a parameter name starting with /")
    problems += [f"runner_additional_security_group_ids: {g} is not sg-<hex>"
                 for g in settings.runner_additional_security_group_ids
                 if not re.fullmatch(r"sg-[0-9a-f]{8,17}", g)]
    problems += [f"runner_iam_role_managed_policy_arns: {a} is not a policy ARN"
                 for a in settings.runner_iam_role_managed_policy_arns
                 if not re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/\S+", a)]
    script = "start-runner.ps1" if settings.runner_os == "windows" else "start-runner.sh"
    size = (len((Path(__file__).parent / "src" / script).read_bytes())
            + len(settings.userdata_pre_install.encode())
            + len(settings.userdata_post_install.encode()))
    if size > USER_DATA_LIMIT - 512:
        problems.append(f"userdata_pre_install: with the start script the user data is {size} "
                        f"bytes, EC2 takes {USER_DATA_LIMIT}")
    return problems


def _across(configs: list[RunnerConfig | None]) -> list[str]:
    """Problems between entries: duplicate ids, logical ids and environments."""
    problems: list[str] = []
    present = [c for c in configs if c is not None and not c.id.startswith("invalid-")]
    ids = [c.id for c in present]
    problems += [f"id {i}: listed {ids.count(i)} times" for i in sorted(set(ids))
                 if ids.count(i) > 1]
    suffixes: dict[str, str] = {}
    for config in present:
        other = suffixes.setdefault(config.logical_suffix.lower(), config.id)
        if other != config.id:
            problems.append(f"ids {other} and {config.id}: the same resource names "
                            f"({config.logical_suffix}); rename one")
    environments = [c.environment["ENVIRONMENT"] for c in present if "ENVIRONMENT" in c.environment]
    problems += [f"ENVIRONMENT {e}: given to {environments.count(e)} configurations"
                 for e in sorted(set(environments)) if environments.count(e) > 1]
    return problems


def field_table() -> str:
    """The Markdown table of the entry keys and launchTemplate fields, for docs/DEPLOY.md."""
    lines = ["| Key / field | Meaning |", "|---|---|",
             "| `id` | required, `[a-z0-9-]{1,32}`, unique; names the resources and the "
             "runners' `ghr:environment` (`<Prefix>-<id>` unless `environment` sets "
             "`ENVIRONMENT`) |",
             "| `matcherConfig` | `labelMatchers` (list of label lists), `exactMatch`, "
             "`bidirectionalLabelMatch`, `priority` (default 999); default: the runner labels, "
             "exact |",
             "| `environment` | overrides of the functions' variables (docs/REFERENCE.md §2); "
             "numbers, booleans and lists are written as the strings the functions read |",
             "| `launchTemplate` | required; the fields below |"]
    for name, (_, doc) in LAUNCH_FIELDS.items():
        lines.append(f"| &nbsp;&nbsp;`{name}` | {doc} |")
    return "\n".join(lines)
