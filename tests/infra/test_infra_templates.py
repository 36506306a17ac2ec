"""The templates built from infra/src, read as specifications of what gets deployed."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from infra_support import walk

from chalicelib.settings import REQUIRED
from infra import build
from infra.envmap import FUNCTION_ENVIRONMENT, Output, Param

# The reference module's runner inputs that apply here, with its defaults (issue 6, item 1).
REFERENCE_DEFAULTS = {
    "Prefix": "github-actions",
    "EnableOrganizationRunners": "false",
    "InstanceTypes": "m5.large,c5.large",
    "InstanceTargetCapacityType": "spot",
    "InstanceAllocationStrategy": "lowest-price",
    "InstanceMaxSpotPrice": "",
    "RunnersMaximumCount": 3,
    "AmiId": "",
    "AmiSsmParameterName": "",
    "KeyName": "",
    "EnableRunnerDetailedMonitoring": "false",
    "CreateServiceLinkedRoleSpot": "false",
    "RunnerVolumeSize": 30,
    "RunnerVolumeType": "gp3",
    "MetadataHttpTokens": "required",
    "MetadataHttpPutResponseHopLimit": 1,
    "MetadataInstanceTags": "enabled",
    "RunnerOs": "linux",
    "RunnerArchitecture": "x64",
    "RunnerRunAs": "ec2-user",
    "RunnerAsRoot": "false",
    "RunnerExtraLabels": "",
    "RunnerGroupName": "Default",
    "RunnerNamePrefix": "",
    "EnableEphemeralRunners": "false",
    "EnableJitConfig": "",
    "EnableJobQueuedCheck": "",
    "DisableRunnerAutoupdate": "false",
    "MinimumRunningTimeInMinutes": "5",
    "RunnerBootTimeInMinutes": "5",
    "ScaleDownScheduleExpression": "cron(*/5 * * * ? *)",
    "IdleConfig": "[]",
    "PoolRunnerOwner": "",
    "UserDataPreInstall": "",
    "UserDataPostInstall": "",
    "UserDataOverride": "",
    "EnableUserData": "true",
    "EnableUserDataDebugLogging": "false",
    "EnableCloudwatchAgent": "true",
    "CloudwatchConfig": "",
    "EnableSsmOnRunners": "false",
    "RunnerIamRoleManagedPolicyArns": "",
    "RunnerAdditionalSecurityGroupIds": "",
    "EnableManagedRunnerSecurityGroup": "true",
    "RunnerEgressRule": "all-traffic",
    "RolePath": "",
    "RolePermissionsBoundary": "",
    "LoggingRetentionInDays": 180,
    "LoggingKmsKeyId": "",
    "KmsKeyArn": "",
    "ScaleUpTimeout": "30",
    "ScaleDownTimeout": 60,
    "PoolTimeout": 60,
    "WebhookTimeout": 10,
    "RunnerBinariesSyncerTimeout": 300,
    "ScaleUpReservedConcurrency": 10,
    "PoolReservedConcurrency": 1,
    "LambdaSubnetIds": "",
    "LambdaSecurityGroupIds": "",
    "NameRunnerOverride": "",
    "NameSgOverride": "",
    "GhesUrl": "",
    "GhesSslVerify": "true",
    "DelayWebhookEvent": 30,
    "JobQueueRetentionInSeconds": 86400,
    "RunnerEc2Tags": "{}",
    "EnableXrayTracing": "false",
}
REQUIRED_PARAMETERS = {"VpcId", "SubnetIds", "GitHubAppId"}


def test_generated_templates_and_parameter_table_are_current() -> None:
    assert build.main(["--check"]) == 0, "run `python -m infra.build`"


def test_parameters_keep_the_reference_defaults(stack_template: dict[str, Any]) -> None:
    parameters = stack_template["Parameters"]
    defaults = {name: parameters[name].get("Default") for name in REFERENCE_DEFAULTS}
    assert defaults == REFERENCE_DEFAULTS
    assert {n for n, p in parameters.items() if "Default" not in p} == REQUIRED_PARAMETERS


def test_every_parameter_is_described_and_grouped(stack_template: dict[str, Any]) -> None:
    parameters = stack_template["Parameters"]
    grouped = [name for _, names in build.parameter_sections() for name in names]
    assert sorted(grouped) == sorted(parameters)
    assert [n for n, p in parameters.items() if not p.get("Description")] == []


def test_launch_template_requires_imdsv2_with_hop_limit_one(
        stack_template: dict[str, Any]) -> None:
    data = stack_template["Resources"]["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    options = data["MetadataOptions"]
    assert options["HttpTokens"] == {"Ref": "MetadataHttpTokens"}
    assert options["HttpPutResponseHopLimit"] == {"Ref": "MetadataHttpPutResponseHopLimit"}
    assert options["InstanceMetadataTags"] == {"Ref": "MetadataInstanceTags"}
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"


def test_root_volume_is_always_encrypted(stack_template: dict[str, Any]) -> None:
    data = stack_template["Resources"]["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    [mapping] = data["BlockDeviceMappings"]
    assert mapping["Ebs"]["Encrypted"] is True
    assert mapping["Ebs"]["VolumeType"] == {"Ref": "RunnerVolumeType"}
    assert mapping["Ebs"]["VolumeSize"] == {"Ref": "RunnerVolumeSize"}


def test_instances_and_volumes_carry_the_environment_and_config_path(
        stack_template: dict[str, Any]) -> None:
    data = stack_template["Resources"]["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    for specification in data["TagSpecifications"]:
        keys = {tag["Key"] for tag in specification["Tags"]}
        assert {"ghr:environment", "ghr:ssm_config_path", "Name"} <= keys


def test_build_queue_visibility_is_six_times_every_allowed_scale_up_timeout(
        stack_template: dict[str, Any]) -> None:
    queue = stack_template["Resources"]["BuildQueue"]["Properties"]
    mapping_name, key, attribute = queue["VisibilityTimeout"]["Fn::FindInMap"]
    assert key == {"Ref": "ScaleUpTimeout"}
    mapping = stack_template["Mappings"][mapping_name]
    allowed = stack_template["Parameters"]["ScaleUpTimeout"]["AllowedValues"]
    assert sorted(mapping) == sorted(allowed)
    for timeout in allowed:
        assert mapping[timeout][attribute] >= 6 * int(timeout)


def test_build_queue_sends_a_job_to_the_dead_letter_queue_after_five_receives(
        stack_template: dict[str, Any]) -> None:
    redrive = stack_template["Resources"]["BuildQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["BuildQueueDeadLetter", "Arn"]},
                       "maxReceiveCount": 5}
    alarm = stack_template["Resources"]["BuildQueueDeadLetterAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_every_arn_is_built_with_the_partition(merge_template: dict[str, Any]) -> None:
    literals = [v for v in walk(merge_template)
                if isinstance(v, str) and ("arn:aws:" in v or "arn:aws-" in v)]
    assert literals == []
    subs = [v["Fn::Sub"] for v in walk(merge_template) if isinstance(v, dict) and "Fn::Sub" in v]
    arns = [s if isinstance(s, str) else s[0] for s in subs]
    assert [a for a in arns if a.startswith("arn:") and "${AWS::Partition}" not in a] == []


def test_no_secret_is_a_template_parameter_or_a_cloudformation_parameter(
        stack_template: dict[str, Any]) -> None:
    types = [r["Properties"]["Type"] for r in stack_template["Resources"].values()
             if r["Type"] == "AWS::SSM::Parameter"]
    assert set(types) == {"String"}
    names = {name.lower() for name in stack_template["Parameters"]}
    assert not [n for n in names if "secret" in n or "privatekey" in n or "pem" in n]


def test_scale_up_event_reports_batch_item_failures_from_the_stack_queue(
        merge_template: dict[str, Any]) -> None:
    scale_up = merge_template["Resources"]["ScaleUp"]
    event = scale_up["Properties"]["Events"]["ScaleUpSqsEventSource"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # The same key as chalice's own Fn::Sub: the deep merge replaces the queue name.
    assert event["Queue"] == {"Fn::Sub": "${BuildQueue.Arn}"}


def test_each_function_runs_with_its_own_stack_role(merge_template: dict[str, Any]) -> None:
    roles = {name: resource["Properties"]["Role"]
             for name, resource in merge_template["Resources"].items()
             if name in ("APIHandler", "ScaleUp", "ScaleDown", "AdjustPool",
                         "SyncRunnerBinaries", "Ec2Events")}
    assert roles == {
        "APIHandler": {"Fn::GetAtt": ["WebhookRole", "Arn"]},
        "ScaleUp": {"Fn::GetAtt": ["ScaleUpRole", "Arn"]},
        "ScaleDown": {"Fn::GetAtt": ["ScaleDownRole", "Arn"]},
        "AdjustPool": {"Fn::GetAtt": ["PoolRole", "Arn"]},
        "SyncRunnerBinaries": {"Fn::GetAtt": ["SyncerRole", "Arn"]},
        "Ec2Events": {"Fn::GetAtt": ["Ec2EventsRole", "Arn"]},
    }


def test_user_data_is_the_start_script_with_debug_logging_off(
        stack_template: dict[str, Any]) -> None:
    parameters = stack_template["Parameters"]
    debug = parameters["EnableUserDataDebugLogging"]
    assert debug["Default"] == "false"
    assert "LOGS SECRETS" in debug["Description"]
    user_data = stack_template["Resources"]["RunnerLaunchTemplate"]["Properties"][
        "LaunchTemplateData"]["UserData"]
    enabled, chosen, _ = user_data["Fn::If"]
    assert enabled == "UserDataEnabled"
    _, override, by_os = chosen["Fn::If"]
    assert override == {"Fn::Base64": {"Ref": "UserDataOverride"}}
    _, windows, linux = by_os["Fn::If"]
    text = render(linux["Fn::Base64"]["Fn::Join"][1], {
        "EnableUserDataDebugLogging": "false", "UserDataPreInstall": "echo pre",
        "UserDataPostInstall": "echo post"})
    script = (build.SRC / "start-runner.sh").read_text()
    assert text.startswith("#!/bin/bash\n")
    assert "GHR_USER_DATA_DEBUG='false'\n" in text
    assert text.index("echo pre") < text.index("echo post")
    assert text.replace("GHR_USER_DATA_DEBUG='false'", "# @@SETTINGS@@").replace(
        "echo pre", "# @@PRE_INSTALL@@").replace("echo post", "# @@POST_INSTALL@@") == script
    # EC2 takes at most 16 KiB of user data (before base64).
    assert len(base64.b64encode(text.encode())) < 16 * 1024 * 4 / 3
    windows_text = render(windows["Fn::Base64"]["Fn::Join"][1], {
        "EnableUserDataDebugLogging": "false", "UserDataPreInstall": "",
        "UserDataPostInstall": ""})
    assert windows_text.startswith("<powershell>\n") and "</powershell>" in windows_text


def render(pieces: list[Any], values: dict[str, str]) -> str:
    """The text of an Fn::Join of strings and parameter Refs."""
    return "".join(p if isinstance(p, str) else values[p["Ref"]] for p in pieces)


@pytest.mark.parametrize("function", sorted(REQUIRED))
def test_every_function_gets_every_variable_it_requires(function: str) -> None:
    missing = [name for name in REQUIRED[function] if name not in FUNCTION_ENVIRONMENT]
    assert missing == []


def test_function_environment_comes_from_parameters_and_outputs(
        stack_template: dict[str, Any]) -> None:
    for source in FUNCTION_ENVIRONMENT.values():
        if isinstance(source, Param):
            assert source.name in stack_template["Parameters"]
        else:
            assert isinstance(source, Output) and source.name in stack_template["Outputs"]


def test_outputs_name_the_functions_launch_template_and_roles(
        merge_template: dict[str, Any]) -> None:
    expected = {"ScaleUpFunctionArn", "ScaleDownFunctionArn", "AdjustPoolFunctionArn",
                "SyncRunnerBinariesFunctionArn", "WebhookFunctionArn", "WebhookUrl",
                "LaunchTemplateName", "LaunchTemplateId", "RunnerRoleArn", "ScaleUpRoleArn",
                "ScaleDownRoleArn", "PoolRoleArn", "WebhookRoleArn", "SyncerRoleArn",
                "BuildQueueUrl", "DeadLetterQueueUrl"}
    assert expected <= set(merge_template["Outputs"])
