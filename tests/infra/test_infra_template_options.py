"""Template options of the runners module's inputs (issue 18) and the stack's own safety nets
(issue 13): encryption of queues and logs, tracing, webhook throttling, pool dead letters, public
addresses, egress presets and the functions' new variables."""

from __future__ import annotations

import re
from typing import Any

import pytest
from infra_support import statements

from infra.envmap import FUNCTION_ENVIRONMENT, Param

FUNCTIONS = ("APIHandler", "ScaleUp", "ScaleDown", "AdjustPool", "SyncRunnerBinaries",
             "Ec2Events")
ROLES = ("ScaleUpRole", "ScaleDownRole", "PoolRole", "SyncerRole", "WebhookRole",
         "Ec2EventsRole")
# The parameters that give a home to runners-module inputs; each names the input it replaces.
MODULE_INPUTS = {
    "AssociatePublicIpAddress": "associate_public_ipv4_address",
    "RunnerEc2Tags": "runner_ec2_tags",
    "EnableXrayTracing": "tracing_config",
    "LoggingKmsKeyId": "logging_kms_key_id",
    "KmsKeyArn": "kms_key_arn",
    "RunnerTokenKmsKeyArn": "kms_key_arn",
    "RunnerEgressRule": "egress_rules",
    "PoolSchedule1": "pool_config",
}


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def test_every_new_parameter_names_the_module_input_it_replaces(
        stack_template: dict[str, Any]) -> None:
    for name, module_input in MODULE_INPUTS.items():
        assert f"module {module_input}" in stack_template["Parameters"][name]["Description"], name


def test_the_build_queue_and_every_dead_letter_queue_use_kms_key_arn_when_set(
        stack_template: dict[str, Any]) -> None:
    queues = resources_of(stack_template, "AWS::SQS::Queue")
    assert set(queues) == {"BuildQueue", "BuildQueueDeadLetter", "PoolScheduleDeadLetter"}
    for properties in (q["Properties"] for q in queues.values()):
        assert properties["KmsMasterKeyId"] == {
            "Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
        assert properties["SqsManagedSseEnabled"] == {"Fn::If": ["HasKmsKey", False, True]}
    [send] = statements(stack_template, "QueueKeyPolicy").values()
    assert send["Action"] == "kms:GenerateDataKey" and send["Resource"] == {"Ref": "KmsKeyArn"}
    assert stack_template["Resources"]["QueueKeyPolicy"]["Properties"]["Roles"] == [
        {"Ref": "WebhookRole"}, {"Ref": "ScaleUpRole"}]


def test_every_log_group_is_encrypted_with_the_logging_key_when_set(
        stack_template: dict[str, Any]) -> None:
    groups = resources_of(stack_template, "AWS::Logs::LogGroup")
    assert len(groups) == 8
    logging_key = {"Fn::If": ["HasLoggingKmsKey", {"Ref": "LoggingKmsKeyId"},
                              {"Ref": "AWS::NoValue"}]}
    for name, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == logging_key, name


def test_every_pool_schedule_sends_what_it_could_not_deliver_to_the_dead_letter_queue(
        stack_template: dict[str, Any]) -> None:
    schedules = resources_of(stack_template, "AWS::Scheduler::Schedule")
    assert set(schedules) == {"PoolSchedule1Rule", "PoolSchedule2Rule"}
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["PoolScheduleDeadLetter",
                                                                     "Arn"]}}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 900,
                                         "MaximumRetryAttempts": 5}
    send = statements(stack_template, "PoolScheduleRole")["DeadLetterFailedPoolEvents"]
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == {"Fn::GetAtt": ["PoolScheduleDeadLetter", "Arn"]}
    alarm = stack_template["Resources"]["PoolScheduleDeadLetterAlarm"]
    assert alarm["Properties"]["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["PoolScheduleDeadLetter", "QueueName"]}
    assert {stack_template["Resources"][n]["Condition"] for n in (
        "PoolScheduleDeadLetter", "PoolScheduleDeadLetterAlarm", "PoolScheduleRole")} == {
        "HasPool"}


def test_tracing_is_an_option_off_by_default_for_every_function_and_the_api(
        stack_template: dict[str, Any], merge_template: dict[str, Any]) -> None:
    assert stack_template["Parameters"]["EnableXrayTracing"]["Default"] == "false"
    for name in FUNCTIONS:
        assert merge_template["Resources"][name]["Properties"]["Tracing"] == {
            "Fn::If": ["XrayTracingEnabled", "Active", "PassThrough"]}, name
    api = merge_template["Resources"]["RestAPI"]["Properties"]
    assert api["TracingEnabled"] == {"Fn::If": ["XrayTracingEnabled", True, False]}
    policy = stack_template["Resources"]["XrayTracingPolicy"]
    assert policy["Condition"] == "XrayTracingEnabled"
    assert policy["Properties"]["Roles"] == [{"Ref": role} for role in ROLES]


def test_the_webhook_stage_is_throttled_by_template_parameters(
        merge_template: dict[str, Any]) -> None:
    [setting] = merge_template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert setting == {"ResourcePath": "/*", "HttpMethod": "*",
                       "ThrottlingRateLimit": {"Ref": "WebhookThrottlingRateLimit"},
                       "ThrottlingBurstLimit": {"Ref": "WebhookThrottlingBurstLimit"}}
    parameters = merge_template["Parameters"]
    assert (parameters["WebhookThrottlingRateLimit"]["Default"],
            parameters["WebhookThrottlingBurstLimit"]["Default"]) == (100, 500)


def test_a_public_ip_choice_moves_the_security_groups_into_the_network_interface(
        stack_template: dict[str, Any]) -> None:
    data = stack_template["Resources"]["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    condition, [interface], absent = data["NetworkInterfaces"]["Fn::If"]
    assert condition == "HasPublicIpChoice" and absent == {"Ref": "AWS::NoValue"}
    assert interface["AssociatePublicIpAddress"] == {"Ref": "AssociatePublicIpAddress"}
    assert interface["DeviceIndex"] == 0 and interface["DeleteOnTermination"] is True
    condition, absent, groups = data["SecurityGroupIds"]["Fn::If"]
    assert condition == "HasPublicIpChoice" and absent == {"Ref": "AWS::NoValue"}
    assert interface["Groups"] == groups
    assert stack_template["Parameters"]["AssociatePublicIpAddress"]["Default"] == ""


def test_the_none_egress_preset_leaves_no_rule_open(stack_template: dict[str, Any]) -> None:
    group = stack_template["Resources"]["RunnerSecurityGroup"]["Properties"]
    condition, [rule], _ = group["SecurityGroupEgress"]["Fn::If"]
    assert condition == "EgressNone"
    assert rule["CidrIp"] == "255.255.255.255/32" and rule["IpProtocol"] == "icmp"
    ipv6 = stack_template["Conditions"]["HasEgressIpv6"]["Fn::And"]
    assert {"Fn::Not": [{"Condition": "EgressNone"}]} in ipv6


def test_the_functions_get_the_runner_tags_and_the_token_key(
        stack_template: dict[str, Any]) -> None:
    assert FUNCTION_ENVIRONMENT["RUNNER_EC2_TAGS"] == Param("RunnerEc2Tags")
    assert FUNCTION_ENVIRONMENT["RUNNER_TOKEN_KMS_KEY_ID"] == Param("RunnerTokenKmsKeyArn")
    tags = stack_template["Parameters"]["RunnerEc2Tags"]
    assert tags["Default"] == "{}"


@pytest.mark.parametrize(("value", "accepted"), [
    ("{}", True), ('{"Team": "ci", "CostCenter": "42"}', True), ("Team=ci,CostCenter=42", True),
    ("", True), ('["Team"]', False), ('{"Team": "ci"', False)])
def test_runner_tags_are_a_json_object_or_a_key_value_list(stack_template: dict[str, Any],
                                                            value: str, accepted: bool) -> None:
    """What the template can tell at deploy time; the functions check the rest (rules/tags.py)."""
    pattern = stack_template["Parameters"]["RunnerEc2Tags"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted
