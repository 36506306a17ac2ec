"""The build configuration: the runners module's list inputs, which CloudFormation cannot loop over.

A template parameter holds one value; `block_device_mappings`, `egress_rules` and `pool_config`
are lists of any length. They are given to the build instead, in a JSON file of the module's own
shapes, and become literal resources of the generated templates:

    python -m infra.build --config infra/params/dev.build.json --output-dir build/infra

Every key is optional; the template parameters (root volume, egress presets, two pool
schedules) stay the shortcuts. docs/DEPLOY.md renders FIELDS as its build configuration table.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED = object()
ROOT_DEVICES = ("/dev/xvda", "/dev/sda1")
SCHEDULE = re.compile(r"^(cron|rate|at)\(.+\)$")
PORT_PROTOCOLS = ("tcp", "udp", "6", "17")
# What AWS::Scheduler::Schedule retries before a pool event goes to its dead-letter queue: a
# pool size older than a quarter of an hour is better dropped (and alarmed) than applied late.
POOL_RETRY_POLICY = {"MaximumEventAgeInSeconds": 900, "MaximumRetryAttempts": 5}


class BuildConfigError(ValueError):
    """The build configuration file is not valid; the message names every problem."""


@dataclass(frozen=True)
class Field:
    """One field of a list entry: its JSON type(s), default (REQUIRED if none) and meaning."""

    name: str
    kinds: tuple[type, ...]
    default: Any
    doc: str


FIELDS: dict[str, tuple[str, list[Field]]] = {
    "block_device_mappings": (
        "EBS volumes added to every runner besides the root volume, which stays on the "
        "RunnerVolume* parameters (module block_device_mappings).", [
            Field("device_name", (str,), REQUIRED, "e.g. /dev/sdf; not the root device"),
            Field("volume_size", (int,), None, "GiB; required unless snapshot_id is given"),
            Field("volume_type", (str,), "gp3", "gp3, gp2, io1, io2, st1, sc1 or standard"),
            Field("iops", (int,), None, "provisioned IOPS (gp3, io1, io2)"),
            Field("throughput", (int,), None, "MiB/s (gp3)"),
            Field("encrypted", (bool,), True, "false only for an unencrypted snapshot's volume"),
            Field("kms_key_id", (str,), None, "KMS key ARN; the account's EBS default if absent"),
            Field("delete_on_termination", (bool,), True, "keep false only on purpose"),
            Field("snapshot_id", (str,), None, "create the volume from this snapshot"),
        ]),
    "egress_rules": (
        "Outbound rules of the managed security group, each destination one rule, added to the "
        "RunnerEgressRule preset (`none` for only these) (module egress_rules).", [
            Field("protocol", (str,), REQUIRED, "-1 (all), tcp, udp, icmp, icmpv6 or a number"),
            Field("from_port", (int,), None, "first port (tcp, udp)"),
            Field("to_port", (int,), None, "last port (tcp, udp)"),
            Field("cidr_blocks", (list,), [], "IPv4 CIDRs"),
            Field("ipv6_cidr_blocks", (list,), [], "IPv6 CIDRs"),
            Field("prefix_list_ids", (list,), [], "managed prefix lists (pl-...)"),
            Field("security_groups", (list,), [], "security group ids (sg-...)"),
            Field("self", (bool,), False, "the runners' own security group"),
            Field("description", (str,), "", "shown on each rule"),
        ]),
    "pool_config": (
        "EventBridge Scheduler schedules that set adjust_pool's pool size, added to "
        "PoolSchedule1/2; PoolRunnerOwner must be set (module pool_config).", [
            Field("schedule_expression", (str,), REQUIRED, "cron(...), rate(...) or at(...)"),
            Field("schedule_expression_timezone", (str,), "UTC", "IANA time zone"),
            Field("size", (int,), REQUIRED, "idle runners to keep, 0 or more"),
            Field("runner_config", (str,), None, "id of the runner configuration whose pool "
                                                 "it sizes (--runner-configs); default: the "
                                                 "first"),
        ]),
}


def load(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The file's lists with every default filled in; BuildConfigError names every problem."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BuildConfigError(f"{path}: {error}") from error
    problems: list[str] = []
    if not isinstance(document, dict):
        raise BuildConfigError(f"{path}: expected a JSON object of {', '.join(FIELDS)}")
    problems += [f"{key}: unknown key" for key in document if key not in FIELDS]
    config: dict[str, list[dict[str, Any]]] = {}
    for key, (_, fields) in FIELDS.items():
        entries = document.get(key, [])
        if not isinstance(entries, list):
            problems.append(f"{key}: expected a list")
            continue
        config[key] = [_entry(f"{key}[{i}]", e, fields, problems) for i, e in enumerate(entries)]
    problems += _check(config)
    if problems:
        raise BuildConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return config


def _entry(where: str, entry: Any, fields: list[Field], problems: list[str]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object")
        return {}
    known = {f.name for f in fields}
    problems += [f"{where}.{name}: unknown field" for name in entry if name not in known]
    values: dict[str, Any] = {}
    for field in fields:
        value = entry.get(field.name)
        if value is None:
            if field.default is REQUIRED:
                problems.append(f"{where}.{field.name}: required")
            values[field.name] = None if field.default is REQUIRED else field.default
        elif not isinstance(value, field.kinds) or (bool in field.kinds) != isinstance(value, bool):
            problems.append(f"{where}.{field.name}: expected {field.kinds[0].__name__}")
            values[field.name] = field.default
        elif isinstance(value, list) and not all(isinstance(item, str) for item in value):
            problems.append(f"{where}.{field.name}: expected a list of strings")
            values[field.name] = field.default
        else:
            values[field.name] = value
    return values


def _check(config: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [*_check_volumes(config.get("block_device_mappings", [])),
            *_check_egress(config.get("egress_rules", [])),
            *_check_pools(config.get("pool_config", []))]


def _check_volumes(volumes: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    names = [v.get("device_name") for v in volumes]
    for i, volume in enumerate(volumes):
        where = f"block_device_mappings[{i}]"
        if volume.get("device_name") in ROOT_DEVICES:
            problems.append(f"{where}.device_name: the root volume is set by RunnerVolume*")
        if names.count(volume.get("device_name")) > 1:
            problems.append(f"{where}.device_name: listed twice")
        if volume.get("volume_size") is None and volume.get("snapshot_id") is None:
            problems.append(f"{where}.volume_size: required without snapshot_id")
    return problems


def _check_egress(rules: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for i, rule in enumerate(rules):
        where = f"egress_rules[{i}]"
        if not (rule.get("cidr_blocks") or rule.get("ipv6_cidr_blocks")
                or rule.get("prefix_list_ids") or rule.get("security_groups") or rule.get("self")):
            problems.append(f"{where}: no destination")
        if rule.get("protocol") in PORT_PROTOCOLS and None in (rule["from_port"], rule["to_port"]):
            problems.append(f"{where}: {rule['protocol']} needs from_port and to_port")
    return problems


def _check_pools(pools: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for i, pool in enumerate(pools):
        where = f"pool_config[{i}]"
        if not SCHEDULE.match(pool.get("schedule_expression") or ""):
            problems.append(f"{where}.schedule_expression: expected cron(...), rate(...), at(...)")
        if isinstance(pool.get("size"), int) and pool["size"] < 0:
            problems.append(f"{where}.size: 0 or more")
        try:
            zoneinfo.ZoneInfo(pool.get("schedule_expression_timezone") or "")
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            problems.append(f"{where}.schedule_expression_timezone: not an IANA time zone")
    return problems


def block_device_mapping(volume: dict[str, Any]) -> dict[str, Any]:
    """A launch template BlockDeviceMapping of one volume."""
    ebs = {"VolumeType": volume["volume_type"], "Encrypted": volume["encrypted"],
           "DeleteOnTermination": volume["delete_on_termination"]}
    for field, key in (("volume_size", "VolumeSize"), ("iops", "Iops"),
                       ("throughput", "Throughput"), ("kms_key_id", "KmsKeyId"),
                       ("snapshot_id", "SnapshotId")):
        if volume[field] is not None:
            ebs[key] = volume[field]
    return {"DeviceName": volume["device_name"], "Ebs": ebs}


def egress_resources(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """One AWS::EC2::SecurityGroupEgress per destination of each rule, with the managed group."""
    resources: dict[str, Any] = {}
    for i, rule in enumerate(rules, start=1):
        destinations = [("CidrIp", c) for c in rule["cidr_blocks"]]
        destinations += [("CidrIpv6", c) for c in rule["ipv6_cidr_blocks"]]
        destinations += [("DestinationPrefixListId", p) for p in rule["prefix_list_ids"]]
        destinations += [("DestinationSecurityGroupId", g) for g in rule["security_groups"]]
        if rule["self"]:
            destinations.append(("DestinationSecurityGroupId", {"Ref": "RunnerSecurityGroup"}))
        for j, (key, destination) in enumerate(destinations, start=1):
            properties: dict[str, Any] = {"GroupId": {"Ref": "RunnerSecurityGroup"},
                                          "IpProtocol": rule["protocol"], key: destination}
            if rule["protocol"] != "-1" and rule["from_port"] is not None:
                properties["FromPort"], properties["ToPort"] = rule["from_port"], rule["to_port"]
            if rule["description"]:
                properties["Description"] = rule["description"]
            resources[f"RunnerEgress{i}To{j}"] = {
                "Type": "AWS::EC2::SecurityGroupEgress", "Condition": "ManagedSecurityGroup",
                "Properties": properties}
    return resources


def pool_schedule_resources(pools: list[dict[str, Any]]) -> dict[str, Any]:
    """One AWS::Scheduler::Schedule per pool entry, like PoolSchedule1Rule with its own values."""
    resources: dict[str, Any] = {}
    for i, pool in enumerate(pools, start=1):
        resources[f"PoolConfig{i}Schedule"] = {
            "Type": "AWS::Scheduler::Schedule",
            "Condition": "HasPool",
            "Properties": {
                "Description": {"Fn::Sub": f"Set the ${{Prefix}} runner pool to {pool['size']}"},
                "ScheduleExpression": pool["schedule_expression"],
                "ScheduleExpressionTimezone": pool["schedule_expression_timezone"],
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "Target": pool_target(json.dumps(pool_input(pool))),
            },
        }
    return resources


def pool_input(pool: dict[str, Any]) -> dict[str, Any]:
    """adjust_pool's event of a pool entry: the size, and the runner configuration if named."""
    payload: dict[str, Any] = {"poolSize": pool["size"]}
    if pool.get("runner_config") is not None:
        payload["runnerConfig"] = pool["runner_config"]
    return payload


def check_runner_configs(config: dict[str, list[dict[str, Any]]], ids: list[str]) -> None:
    """BuildConfigError when a pool entry names a runner configuration that is not given."""
    problems = [f"pool_config[{i}].runner_config: {pool['runner_config']} is not the id of "
                "a runner configuration (--runner-configs)"
                for i, pool in enumerate(config["pool_config"])
                if pool.get("runner_config") is not None and pool["runner_config"] not in ids]
    if problems:
        raise BuildConfigError("\n  ".join(problems))


def pool_target(payload: Any) -> dict[str, Any]:
    """The Target of a pool schedule: adjust_pool by name, with its dead-letter queue."""
    return {
        "Arn": {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}"
                           ":function:${FunctionNamePrefix}-adjust_pool"},
        "RoleArn": {"Fn::GetAtt": ["PoolScheduleRole", "Arn"]},
        "Input": payload,
        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["PoolScheduleDeadLetter", "Arn"]}},
        "RetryPolicy": dict(POOL_RETRY_POLICY),
    }


def apply(template: dict[str, Any], config: dict[str, list[dict[str, Any]]]) -> None:
    """Add the configured volumes, egress rules and pool schedules to a stack template."""
    data = template["Resources"]["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    data["BlockDeviceMappings"] += [block_device_mapping(v) for v in
                                    config["block_device_mappings"]]
    template["Resources"].update(egress_resources(config["egress_rules"]))
    template["Resources"].update(pool_schedule_resources(config["pool_config"]))


def field_table() -> str:
    """The Markdown table of every key and field, for docs/DEPLOY.md."""
    lines = ["| Key / field | Default | Meaning |", "|---|---|---|"]
    for key, (doc, fields) in FIELDS.items():
        lines.append(f"| `{key}` | `[]` | {doc} |")
        for field in fields:
            default = "*(required)*" if field.default is REQUIRED else (
                " " if field.default is None else f"`{json.dumps(field.default)}`")
            lines.append(f"| &nbsp;&nbsp;`{field.name}` | {default} | {field.doc} |")
    return "\n".join(lines)
