"""Convert the reference multi-runner module's `multi_runner_config` into a runner-configurations
file (infra/runnerconfigs.py), and say what cannot be carried over.

    .venv/bin/python scripts/convert_multi_runner.py terraform.tfvars -o infra/params/runners.yaml
    .venv/bin/python scripts/convert_multi_runner.py vars.tfvars.json        # YAML on stdout
    ... --build-config infra/params/dev.build.json   # and the pool schedules (pool_config)

Reads a Terraform variable file, HCL (`.tfvars`, with python-hcl2, a development dependency)
or JSON (`.tfvars.json`), holding `multi_runner_config`. The mapping is docs/MIGRATION.md's
*Multi-runner* table (RUNNER_CONFIG below). Every setting not carried over is reported on
stderr with what to do instead; a Terraform expression (`var.x`, `${...}`) cannot be evaluated
here and is reported too. The written file is checked as `python -m infra.build` checks it:
exit status 1 when it needs editing (the problems are listed), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
HEREDOC = re.compile(r"^<<(-?)(\w+)\n(.*?)\n?[ \t]*\2$", re.S)
EXPRESSION = re.compile(r"(?<!\$)\$\{")
UNUSABLE = object()  # a value holding a Terraform expression

# runner_config key -> ("env", variable) | ("launch", field) | ("skip", why, what to do)
RUNNER_CONFIG: dict[str, tuple[str, ...]] = {
    "runner_os": ("launch", "runner_os"),
    "runner_architecture": ("launch", "runner_architecture"),
    "instance_types": ("launch", "instance_types"),
    "ami_id_ssm_parameter_name": ("launch", "ami_id_ssm_parameter_name"),
    "block_device_mappings": ("launch", "block_device_mappings"),
    "userdata_pre_install": ("launch", "userdata_pre_install"),
    "userdata_post_install": ("launch", "userdata_post_install"),
    "runner_additional_security_group_ids": ("launch", "runner_additional_security_group_ids"),
    "runner_iam_role_managed_policy_arns": ("launch", "runner_iam_role_managed_policy_arns"),
    "runner_run_as": ("launch", "runner_run_as"),
    "ami_filter": ("env", "AMI_FILTER"),
    "ami_owners": ("env", "AMI_OWNERS"),
    "runners_maximum_count": ("env", "RUNNERS_MAXIMUM_COUNT"),
    "enable_ephemeral_runners": ("env", "ENABLE_EPHEMERAL_RUNNERS"),
    "enable_jit_config": ("env", "ENABLE_JIT_CONFIG"),
    "enable_job_queued_check": ("env", "ENABLE_JOB_QUEUED_CHECK"),
    "enable_organization_runners": ("env", "ENABLE_ORGANIZATION_RUNNERS"),
    "disable_runner_autoupdate": ("env", "DISABLE_RUNNER_AUTOUPDATE"),
    "runner_extra_labels": ("env", "RUNNER_LABELS"),
    "runner_group_name": ("env", "RUNNER_GROUP_NAME"),
    "runner_name_prefix": ("env", "RUNNER_NAME_PREFIX"),
    "instance_target_capacity_type": ("env", "INSTANCE_TARGET_CAPACITY_TYPE"),
    "instance_allocation_strategy": ("env", "INSTANCE_ALLOCATION_STRATEGY"),
    "instance_max_spot_price": ("env", "INSTANCE_MAX_SPOT_PRICE"),
    "enable_on_demand_failover_for_errors": ("env", "ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS"),
    "minimum_running_time_in_minutes": ("env", "MINIMUM_RUNNING_TIME_IN_MINUTES"),
    "runner_boot_time_in_minutes": ("env", "RUNNER_BOOT_TIME_IN_MINUTES"),
    "idle_config": ("env", "SCALE_DOWN_CONFIG"),
    "runner_ec2_tags": ("env", "RUNNER_EC2_TAGS"),
    "subnet_ids": ("env", "SUBNET_IDS"),
    "pool_runner_owner": ("env", "RUNNER_OWNER"),
    "job_retry": ("env", "JOB_RETRY_CONFIG"),
    "ami": ("ami",),
    # One value for the deployment here: a template parameter.
    "vpc_id": ("skip", "one VPC per deployment", "set the parameter VpcId"),
    "enable_ssm_on_runners": ("skip", "deployment-wide", "set the parameter EnableSsmOnRunners"),
    "enable_userdata": ("skip", "deployment-wide", "set the parameter EnableUserData"),
    "userdata_template": ("skip", "no per-configuration user data template",
                          "use userdata_pre_install/userdata_post_install"),
    "userdata_content": ("skip", "no per-configuration user data override",
                         "use userdata_pre_install/userdata_post_install"),
    "enable_cloudwatch_agent": ("skip", "deployment-wide",
                                "set the parameter EnableCloudwatchAgent"),
    "cloudwatch_config": ("skip", "deployment-wide", "set the parameter CloudwatchConfig"),
    "runner_log_files": ("skip", "deployment-wide", "set the parameter RunnerLogFiles"),
    "create_service_linked_role_spot": ("skip", "deployment-wide",
                                        "set the parameter CreateServiceLinkedRoleSpot"),
    "scale_down_schedule_expression": ("skip", "one scale-down covers every configuration",
                                       "set the parameter ScaleDownScheduleExpression"),
    "scale_up_reserved_concurrent_executions": ("skip", "one scale-up function",
                                                "set the parameter ScaleUpReservedConcurrency"),
    "enable_runner_binaries_syncer": ("skip", "one syncer",
                                      "set the parameter EnableRunnerBinariesSyncer"),
    "runner_as_root": ("skip", "deployment-wide", "set the parameter RunnerAsRoot"),
    "enable_runner_detailed_monitoring": ("skip", "deployment-wide",
                                          "set the parameter EnableRunnerDetailedMonitoring"),
    "runner_metadata_options": ("skip", "deployment-wide", "set the parameters Metadata*"),
    "job_queue_retention_in_seconds": ("skip", "one build queue",
                                       "set the parameter JobQueueRetentionInSeconds"),
    "delay_webhook_event": ("skip", "one build queue", "set the parameter DelayWebhookEvent"),
    "pool_config": ("pool",),
    "ebs_optimized": ("skip", "not supported", "nothing to do: on for every current instance type"),
    "credit_specification": ("skip", "not supported", "nothing to do: the type's default applies"),
    "ami_kms_key_arn": ("skip", "not supported",
                        "grant the scale-up and pool roles the key yourself"),
    "runner_hook_job_started": ("skip", "not supported", "make it a step of your jobs"),
    "runner_hook_job_completed": ("skip", "not supported", "make it a step of your jobs"),
    "runner_disable_default_labels": ("skip", "not supported",
                                      "nothing to do: self-hosted, the OS and architecture "
                                      "are always labels"),
}
# Keys of an entry besides runner_config and matcherConfig.
ENTRY_SKIPS = {
    "fifo": ("one standard build queue", "jobs are not handled in order (scale-up's retries "
             "reorder them anyway)"),
    "redrive_build_queue": ("always on", "nothing to do: five receives, then the dead-letter "
                            "queue with its alarm"),
    "delay_webhook_event": ("one build queue", "set the parameter DelayWebhookEvent"),
}
MATCHER_KEYS = ("labelMatchers", "exactMatch", "priority")
JOB_RETRY_KEYS = {"enable": "enable", "max_attempts": "maxAttempts",
                  "delay_in_seconds": "delayInSeconds", "delay_backoff": "delayBackoff"}


@dataclass
class Conversion:
    """The converted configurations and the report of what was not carried over."""

    configs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Entries of the build configuration's pool_config (infra/buildconfig.py).
    pools: list[dict[str, Any]] = field(default_factory=list)


def read_variables(path: Path) -> dict[str, Any]:
    """The variables of a .tfvars (HCL) or .tfvars.json file."""
    text = path.read_text()
    if path.name.endswith(".json"):
        variables = json.loads(text)
    else:
        import hcl2

        options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)
        variables = hcl2.loads(text, serialization_options=options)
    if not isinstance(variables, dict):
        raise ValueError(f"{path}: expected a file of variables")
    return variables


def convert(variables: dict[str, Any], hcl: bool = True) -> Conversion:
    """Our configurations from the module's `multi_runner_config`. From HCL, `${...}` is a
    Terraform expression and `$${` a literal `${`; a JSON variable file's strings are literal."""
    entries = variables.get("multi_runner_config")
    if not isinstance(entries, dict) or not entries:
        raise ValueError("no multi_runner_config map in the file")
    result = Conversion()
    for key, entry in entries.items():
        config_id = _id(key, result)
        if not isinstance(entry, dict):
            result.notes.append(f"{config_id}: not an object, skipped")
            continue
        result.configs.append(_entry(config_id, entry, result.notes, hcl))
        result.pools += _pools(config_id, entry.get("runner_config") or {}, result.notes, hcl)
    return result


def _pools(config_id: str, runner: dict[str, Any], notes: list[str],
           hcl: bool) -> list[dict[str, Any]]:
    """The configuration's pool_config, as the build configuration's entries naming it."""
    where = f"{config_id}.runner_config.pool_config"
    pools = _plain(where, runner.get("pool_config") or [], notes) if hcl else runner.get(
        "pool_config") or []
    if pools is UNUSABLE:
        return []
    keys = ("schedule_expression", "schedule_expression_timezone", "size")
    return [{**{k: pool[k] for k in keys if pool.get(k) is not None},
             "runner_config": config_id} for pool in pools if isinstance(pool, dict)]


def _id(key: str, result: Conversion) -> str:
    config_id = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")[:32] or "runner"
    if config_id != key:
        result.notes.append(f"{key}: renamed {config_id} (ids are [a-z0-9-]{{1,32}}); its "
                            f"runners are tagged ghr:environment=<Prefix>-{config_id}")
    return config_id


def _entry(config_id: str, entry: dict[str, Any], notes: list[str],
           hcl: bool) -> dict[str, Any]:
    environment: dict[str, Any] = {}
    launch: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ENTRY_SKIPS:
            why, instead = ENTRY_SKIPS[key]
            notes.append(f"{config_id}.{key} = {json.dumps(value)}: not carried over ({why}); "
                         f"{instead}")
        elif key not in ("runner_config", "matcherConfig"):
            notes.append(f"{config_id}.{key}: unknown, not carried over")
    _runner_config(config_id, entry.get("runner_config") or {}, environment, launch, notes, hcl)
    config: dict[str, Any] = {"id": config_id}
    matcher = entry.get("matcherConfig")
    if isinstance(matcher, dict):
        config["matcherConfig"] = {k: matcher[k] for k in MATCHER_KEYS if k in matcher}
        notes += [f"{config_id}.matcherConfig.{k}: unknown, not carried over"
                  for k in matcher if k not in MATCHER_KEYS]
    else:
        notes.append(f"{config_id}.matcherConfig: missing; the runner labels are matched exactly")
    config["environment"] = {k: v for k, v in environment.items() if v is not None}
    if "instance_types" not in launch:
        launch["instance_types"] = ["m5.large", "c5.large"]
        notes.append(f"{config_id}.runner_config.instance_types: missing, the module's default "
                     "m5.large, c5.large written")
    config["launchTemplate"] = launch
    return config


def _runner_config(config_id: str, runner: dict[str, Any], environment: dict[str, Any],
                   launch: dict[str, Any], notes: list[str], hcl: bool) -> None:
    """Each runner_config key into `environment` or `launch`, or a note."""
    for key, value in runner.items():
        where = f"{config_id}.runner_config.{key}"
        value = _plain(where, value, notes) if hcl else value
        if value is UNUSABLE or value is None:
            continue
        rule = RUNNER_CONFIG.get(key)
        if rule is None:
            notes.append(f"{where}: unknown, not carried over")
        elif rule[0] == "skip":
            notes.append(f"{where} = {json.dumps(value)[:60]}: not carried over ({rule[1]}); "
                         f"{rule[2]}")
        elif rule[0] == "pool":
            continue  # into the build configuration (_pools)
        elif rule[0] == "ami":
            _ami(where, value, launch, environment, notes)
        elif rule[0] == "launch":
            launch[rule[1]] = _launch_value(rule[1], value)
        else:
            environment[rule[1]] = _env_value(where, rule[1], value, notes)


def _plain(where: str, value: Any, notes: list[str]) -> Any:
    """`value` with heredocs turned into text; UNUSABLE (and a note) for a Terraform
    expression."""
    if isinstance(value, str):
        heredoc = HEREDOC.match(value)
        if heredoc:
            body = heredoc[3]
            value = _dedent(body) + "\n" if heredoc[1] else body + "\n"
        if EXPRESSION.search(value):
            notes.append(f"{where}: a Terraform expression ({value.strip()[:60]}), not carried "
                         "over; write its value in by hand")
            return UNUSABLE
        return value.replace("$${", "${")
    if isinstance(value, list):
        items = [_plain(where, v, notes) for v in value]
        return UNUSABLE if any(i is UNUSABLE for i in items) else items
    if isinstance(value, dict):
        pairs = {k: _plain(where, v, notes) for k, v in value.items()}
        return UNUSABLE if any(v is UNUSABLE for v in pairs.values()) else pairs
    return value


def _dedent(text: str) -> str:
    lines = text.split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines)


def _launch_value(name: str, value: Any) -> Any:
    if name == "block_device_mappings":
        # The module's entries carry every field, null where unset; its device is /dev/xvda.
        volumes = []
        for volume in value:
            kept = {k: v for k, v in volume.items() if v is not None}
            kept.setdefault("device_name", "/dev/xvda")
            volumes.append(kept)
        return volumes
    return value


def _env_value(where: str, name: str, value: Any, notes: list[str]) -> Any:
    if name == "JOB_RETRY_CONFIG" and isinstance(value, dict):
        dropped = sorted(k for k in value if k not in JOB_RETRY_KEYS)
        if dropped:
            notes.append(f"{where}: {', '.join(dropped)} not carried over (scale-up checks "
                         "retried jobs itself, no function of its own)")
        return {JOB_RETRY_KEYS[k]: v for k, v in value.items() if k in JOB_RETRY_KEYS
                and v is not None}
    if name == "AMI_FILTER" and isinstance(value, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
    if value == [] or value == {}:
        return None
    return value


def _ami(where: str, value: Any, launch: dict[str, Any], environment: dict[str, Any],
         notes: list[str]) -> None:
    """The module's newer `ami` object: filter, owners, id_ssm_parameter_arn, kms_key_arn."""
    if not isinstance(value, dict):
        return
    if value.get("filter"):
        environment["AMI_FILTER"] = _env_value(where, "AMI_FILTER", value["filter"], notes)
    if value.get("owners"):
        environment["AMI_OWNERS"] = value["owners"]
    arn = value.get("id_ssm_parameter_arn")
    if arn:
        launch["ami_id_ssm_parameter_name"] = arn.split(":parameter", 1)[-1]
    if value.get("kms_key_arn"):
        notes.append(f"{where}.kms_key_arn: not carried over (not supported); grant the "
                     "scale-up and pool roles the key yourself")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (user data) as literal blocks."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))

HEADER = ("# Runner configurations converted by scripts/convert_multi_runner.py from the\n"
          "# multi-runner module's multi_runner_config (docs/MIGRATION.md, Multi-runner).\n")


def to_yaml(configs: list[dict[str, Any]]) -> str:
    """The runner-configurations file."""
    return HEADER + yaml.dump(configs, Dumper=_Dumper, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    """Convert, write, report; 1 when the result needs editing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tfvars", type=Path, help=".tfvars (HCL) or .tfvars.json")
    parser.add_argument("-o", "--output", type=Path, help="default: stdout")
    parser.add_argument("--build-config", type=Path,
                        help="write the configurations' pool_config here (a build "
                             "configuration, JSON; docs/DEPLOY.md section 7)")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from infra import runnerconfigs

    try:
        conversion = convert(read_variables(args.tfvars),
                             hcl=not args.tfvars.name.endswith(".json"))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    text = to_yaml(conversion.configs)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    if conversion.pools and args.build_config is not None:
        args.build_config.write_text(json.dumps({"pool_config": conversion.pools}, indent=2)
                                     + "\n")
    elif conversion.pools:
        conversion.notes.append(
            f"pool_config of {', '.join(sorted({p['runner_config'] for p in conversion.pools}))}"
            ": not written; rerun with --build-config to write them as a build configuration")
    for note in conversion.notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        runnerconfigs.parse(yaml.safe_load(text))
    except runnerconfigs.RunnerConfigsError as error:
        print(f"the result needs editing:\n  {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
