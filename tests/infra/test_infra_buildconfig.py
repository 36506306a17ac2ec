"""The build configuration (infra/buildconfig.py): the module's list inputs become literal
resources of the generated templates, and a bad file fails the build naming every problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_support import ROOT

from infra import build, buildconfig

SAMPLE = ROOT / "infra" / "params" / "dev.build.sample.json"


def write(directory: Path, document: Any) -> Path:
    path = directory / "build.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def configured() -> dict[str, Any]:
    """The stack template built with the sample build configuration."""
    return build.stack_template(buildconfig.load(SAMPLE))


def test_extra_volumes_follow_the_root_volume_encrypted_by_default(
        configured: dict[str, Any]) -> None:
    data = configured["Resources"]["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    root, extra = data["BlockDeviceMappings"]
    assert root["Ebs"]["VolumeSize"] == {"Ref": "RunnerVolumeSize"}
    assert extra == {"DeviceName": "/dev/sdf", "Ebs": {
        "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True,
        "VolumeSize": 100, "Iops": 4000, "Throughput": 250}}


def test_a_volume_can_come_from_a_snapshot_with_its_own_key_and_be_kept() -> None:
    mapping = buildconfig.block_device_mapping({
        "device_name": "/dev/sdg", "volume_size": None, "volume_type": "io2", "iops": 8000,
        "throughput": None, "encrypted": True, "kms_key_id": "arn:aws:kms:eu-west-1:1:key/k",
        "delete_on_termination": False, "snapshot_id": "snap-0123"})
    assert mapping == {"DeviceName": "/dev/sdg", "Ebs": {
        "VolumeType": "io2", "Encrypted": True, "DeleteOnTermination": False, "Iops": 8000,
        "KmsKeyId": "arn:aws:kms:eu-west-1:1:key/k", "SnapshotId": "snap-0123"}}


def test_each_egress_destination_is_one_rule_of_the_managed_group(
        configured: dict[str, Any]) -> None:
    rules = {name: resource for name, resource in configured["Resources"].items()
             if resource["Type"] == "AWS::EC2::SecurityGroupEgress"
             and name.startswith("RunnerEgress") and "To" in name}
    assert {n: r["Condition"] for n, r in rules.items()} == {
        "RunnerEgress1To1": "ManagedSecurityGroup", "RunnerEgress1To2": "ManagedSecurityGroup",
        "RunnerEgress2To1": "ManagedSecurityGroup"}
    https = {"GroupId": {"Ref": "RunnerSecurityGroup"}, "IpProtocol": "tcp", "FromPort": 443,
             "ToPort": 443, "Description": "HTTPS to the internal mirror"}
    assert rules["RunnerEgress1To1"]["Properties"] == {**https, "CidrIp": "10.0.0.0/8"}
    assert rules["RunnerEgress1To2"]["Properties"] == {
        **https, "DestinationPrefixListId": "pl-0123456789abcdef0"}
    assert rules["RunnerEgress2To1"]["Properties"] == {
        "GroupId": {"Ref": "RunnerSecurityGroup"}, "IpProtocol": "-1",
        "DestinationSecurityGroupId": {"Ref": "RunnerSecurityGroup"},
        "Description": "Runners talk to each other"}


def test_each_pool_entry_is_a_schedule_in_its_time_zone_with_the_dead_letter_queue(
        configured: dict[str, Any]) -> None:
    schedule = configured["Resources"]["PoolConfig1Schedule"]
    assert schedule["Condition"] == "HasPool"
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == "cron(0 8 ? * MON-FRI *)"
    assert properties["ScheduleExpressionTimezone"] == "Europe/Amsterdam"
    target = properties["Target"]
    assert json.loads(target["Input"]) == {"poolSize": 3}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["PoolScheduleDeadLetter",
                                                                 "Arn"]}}
    assert target["RoleArn"] == {"Fn::GetAtt": ["PoolScheduleRole", "Arn"]}
    evening = configured["Resources"]["PoolConfig2Schedule"]["Properties"]["Target"]
    assert json.loads(evening["Input"]) == {"poolSize": 0}


def test_a_bad_file_fails_with_every_problem_named(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "block_device_mappings": [{"device_name": "/dev/xvda", "volume_size": 50},
                                  {"device_name": "/dev/sdf"},
                                  {"device_name": "/dev/sdg", "volume_size": "big"}],
        "egress_rules": [{"protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"]},
                         {"protocol": "-1"}, {"protocol": "-1", "cidr_blocks": [10]}],
        "pool_config": [{"schedule_expression": "0 8 * * *", "size": -1,
                         "schedule_expression_timezone": "Europe/Atlantis", "sizes": 2}],
        "tags": {},
    })

    with pytest.raises(buildconfig.BuildConfigError) as caught:
        buildconfig.load(path)

    message = str(caught.value)
    for problem in ("tags: unknown key",
                    "block_device_mappings[0].device_name: the root volume is set by RunnerVolume*",
                    "block_device_mappings[1].volume_size: required without snapshot_id",
                    "block_device_mappings[2].volume_size: expected int",
                    "egress_rules[0]: tcp needs from_port and to_port",
                    "egress_rules[1]: no destination",
                    "egress_rules[2].cidr_blocks: expected a list of strings",
                    "pool_config[0].schedule_expression: expected cron(...)",
                    "pool_config[0].size: 0 or more",
                    "pool_config[0].schedule_expression_timezone: not an IANA time zone",
                    "pool_config[0].sizes: unknown field"):
        assert problem in message


def test_a_boolean_is_not_taken_for_a_number_nor_a_number_for_a_boolean(tmp_path: Path) -> None:
    path = write(tmp_path, {"block_device_mappings": [
        {"device_name": "/dev/sdf", "volume_size": True, "encrypted": 1}]})

    with pytest.raises(buildconfig.BuildConfigError) as caught:
        buildconfig.load(path)

    assert "volume_size: expected int" in str(caught.value)
    assert "encrypted: expected bool" in str(caught.value)


def test_the_build_writes_configured_templates_only_where_it_is_told(tmp_path: Path) -> None:
    assert build.main(["--config", str(SAMPLE), "--output-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runners-stack.yaml", "template.yaml"]
    assert "PoolConfig2Schedule" in (tmp_path / "template.yaml").read_text()
    with pytest.raises(SystemExit):
        build.main(["--config", str(SAMPLE)])
    bad = write(tmp_path, {"pool_config": [{}]})
    assert build.main(["--config", str(bad), "--output-dir", str(tmp_path / "bad")]) == 1
    assert not (tmp_path / "bad").exists()


def test_the_docs_list_every_key_and_field_of_the_build_configuration() -> None:
    document = build.DEPLOY_DOC.read_text()
    for key, (_, fields) in buildconfig.FIELDS.items():
        assert f"| `{key}` |" in document
        for field in fields:
            assert f"`{field.name}`" in document
