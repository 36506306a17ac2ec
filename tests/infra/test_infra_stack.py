"""The `chalice deploy` path against devstack: infra/runners-stack.yaml created by moto's
CloudFormation, a chalice stage configured from it, and the ReportBatchItemFailures follow-up.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from infra_support import ROOT, tool

from infra import build, configure_stage
from infra.envmap import FUNCTION_ENVIRONMENT

STACK_NAME = "ghr-dev"
PREFIX = "dev"


def _cloudformation_lists(describe: Any) -> Any:
    """describe() with list parameters as CloudFormation renders them ("a,b"); moto gives
    Python's repr of the list (['a', 'b'])."""

    def wrapped(client: Any, name: str) -> tuple[dict[str, str], dict[str, str]]:
        parameters, outputs = describe(client, name)
        for key, value in parameters.items():
            if value.startswith("["):
                parameters[key] = ",".join(ast.literal_eval(value))
        return parameters, outputs

    return wrapped


@pytest.fixture
def infra_stack(env: dict[str, str], stack: Any,
                monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The standalone runner stack, created in devstack's moto with the sample stage's names."""
    cloudformation = stack.boto("cloudformation")
    deployment = stack.deployment
    parameters = {"Prefix": PREFIX, "VpcId": deployment.vpc_id,
                  "SubnetIds": ",".join(deployment.subnet_ids), "GitHubAppId": "4242"}
    cloudformation.create_stack(
        StackName=STACK_NAME, TemplateBody=build.STACK.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    monkeypatch.setattr(configure_stage, "describe",
                        _cloudformation_lists(configure_stage.describe))
    description = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}


def test_the_stack_creates_an_imdsv2_launch_template_with_an_encrypted_root_volume(
        infra_stack: dict[str, Any], stack: Any) -> None:
    ec2 = stack.boto("ec2")
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateName=infra_stack["LaunchTemplateName"])["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]

    assert infra_stack["LaunchTemplateName"] == "dev-action-runner"
    assert data["MetadataOptions"] == {"HttpEndpoint": "enabled", "HttpTokens": "required",
                                       "HttpPutResponseHopLimit": 1,
                                       "InstanceMetadataTags": "enabled"}
    [volume] = data["BlockDeviceMappings"]
    assert volume["DeviceName"] == "/dev/xvda"
    assert {k: volume["Ebs"][k] for k in ("VolumeSize", "VolumeType", "Encrypted")} == {
        "VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True}
    assert data["IamInstanceProfile"]["Arn"] == infra_stack["RunnerInstanceProfileArn"]
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    tags = {t["Key"]: t["Value"] for t in data["TagSpecifications"][0]["Tags"]}
    assert tags["ghr:environment"] == PREFIX
    assert tags["ghr:ssm_config_path"] == infra_stack["SsmConfigPath"]
    assert data["SecurityGroupIds"] == [infra_stack["RunnerSecurityGroupId"]]


def test_a_configured_stack_creates_extra_volumes_public_addresses_and_the_pool_dead_letters(
        stack: Any, configured_stack: Path) -> None:
    cloudformation = stack.boto("cloudformation")
    deployment = stack.deployment
    parameters = {"Prefix": "cfg", "VpcId": deployment.vpc_id, "GitHubAppId": "4242",
                  "SubnetIds": ",".join(deployment.subnet_ids), "PoolRunnerOwner": "acme",
                  "AssociatePublicIpAddress": "true"}
    cloudformation.create_stack(
        StackName="ghr-configured", TemplateBody=configured_stack.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    description = cloudformation.describe_stacks(StackName="ghr-configured")["Stacks"][0]
    assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")

    [version] = stack.boto("ec2").describe_launch_template_versions(
        LaunchTemplateName="cfg-action-runner")["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert [m["DeviceName"] for m in data["BlockDeviceMappings"]] == ["/dev/xvda", "/dev/sdf"]
    assert data["BlockDeviceMappings"][1]["Ebs"]["Encrypted"] is True
    [interface] = data["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is True and "SecurityGroupIds" not in data
    sqs = stack.boto("sqs")
    dead_letters = sqs.get_queue_url(QueueName="cfg-pool-schedules-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["All"])
    assert attributes["Attributes"]["SqsManagedSseEnabled"] == "true"


def test_the_stack_creates_the_build_queue_with_its_dead_letter_queue(
        infra_stack: dict[str, Any], stack: Any) -> None:
    sqs = stack.boto("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=infra_stack["BuildQueueUrl"],
                                          AttributeNames=["All"])["Attributes"]
    dead_letter = sqs.get_queue_attributes(QueueUrl=infra_stack["DeadLetterQueueUrl"],
                                           AttributeNames=["QueueArn"])["Attributes"]

    assert infra_stack["BuildQueueName"] == "dev-queued-builds"
    assert attributes["VisibilityTimeout"] == "180"  # six times the 30 s scale-up timeout
    assert attributes["DelaySeconds"] == "30"
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter["QueueArn"], "maxReceiveCount": 5}


def test_the_stack_writes_the_configuration_the_start_script_reads(
        infra_stack: dict[str, Any], stack: Any) -> None:
    ssm = stack.boto("ssm")
    path = infra_stack["SsmConfigPath"]
    found = {p["Name"].rsplit("/", 1)[1]: p["Value"]
             for p in ssm.get_parameters_by_path(Path=path)["Parameters"]}

    assert found == {
        "run_as": "ec2-user", "agent_mode": "persistent", "enable_jit_config": "false",
        "enable_cloudwatch": "true", "token_path": infra_stack["SsmTokenPath"],
        "runner_binaries_s3_uri":
            f"s3://{infra_stack['RunnerBinariesBucketName']}/actions-runner-linux-x64.tar.gz",
        "cloudwatch_agent_config_runner": found["cloudwatch_agent_config_runner"],
    }
    agent = json.loads(found["cloudwatch_agent_config_runner"])
    files = agent["logs"]["logs_collected"]["files"]["collect_list"]
    assert {f["file_path"] for f in files} >= {"/var/log/user-data.log"}


def test_configure_stage_points_the_chalice_stage_at_the_stack(
        infra_stack: dict[str, Any], stack: Any, tmp_path: Path) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text((ROOT / ".chalice" / "config.json").read_text())
    env_path = tmp_path / "dev.env"

    code = configure_stage.main(["--stack-name", STACK_NAME, "--stage", "dev",
                                 "--config", str(config_path), "--env-file", str(env_path)])

    assert code == 0
    dev = json.loads(config_path.read_text())["stages"]["dev"]
    variables = dev["environment_variables"]
    assert set(FUNCTION_ENVIRONMENT) <= set(variables)
    assert variables["SQS_URL_WEBHOOK"] == infra_stack["BuildQueueUrl"]
    assert variables["LAUNCH_TEMPLATE_NAME"] == "dev-action-runner"
    assert variables["SUBNET_IDS"] == ",".join(stack.deployment.subnet_ids)
    assert variables["ENVIRONMENT"] == PREFIX
    assert dev["manage_iam_role"] is False
    assert dev["xray"] is False  # EnableXrayTracing's default
    functions = dev["lambda_functions"]
    assert functions["scale_up"]["iam_role_arn"] == infra_stack["ScaleUpRoleArn"]
    assert functions["api_handler"]["iam_role_arn"] == infra_stack["WebhookRoleArn"]
    assert functions["scale_up"]["lambda_timeout"] == 30
    assert functions["scale_up"]["reserved_concurrency"] == 10
    assert functions["scale_down"]["reserved_concurrency"] == 1
    assert "BUILD_QUEUE_NAME=dev-queued-builds" in env_path.read_text()


def test_configure_stage_refuses_a_stack_named_for_another_stage(
        infra_stack: dict[str, Any], stack: Any) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    parameters, outputs = configure_stage.describe(stack.boto("cloudformation"), STACK_NAME)

    with pytest.raises(configure_stage.StageError, match="github-runners-prod"):
        configure_stage.configure(config, "prod", parameters, outputs)


def _function(stack: Any, infra_stack: dict[str, Any], name: str) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def scale_up(event, context):\n    return {}\n")
    return str(stack.boto("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Handler="app.scale_up",
        Role=infra_stack["ScaleUpRoleArn"], Code={"ZipFile": archive.getvalue()},
    )["FunctionName"])


def _enable_batch_failures(env: dict[str, str], function: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "enable-batch-failures.sh"), function],
        env={**env, "PATH": str(Path(tool("aws")).parent) + ":/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_enable_batch_failures_turns_the_setting_on_for_a_chalice_deployed_mapping(
        infra_stack: dict[str, Any], stack: Any, env: dict[str, str]) -> None:
    function = _function(stack, infra_stack, "github-runners-dev-scale_up")
    awslambda = stack.boto("lambda")
    awslambda.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=10)
    # What `chalice deploy` creates: no FunctionResponseTypes.
    uuid = awslambda.create_event_source_mapping(
        EventSourceArn=infra_stack["BuildQueueArn"], FunctionName=function, BatchSize=10,
    )["UUID"]

    result = _enable_batch_failures(env, function)

    assert result.returncode == 0, result.stderr
    mapping = awslambda.get_event_source_mapping(UUID=uuid)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # As many pollers as the function's containers.
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 10}


def test_enable_batch_failures_fails_when_there_is_no_mapping_to_fix(
        infra_stack: dict[str, Any], stack: Any, env: dict[str, str]) -> None:
    function = _function(stack, infra_stack, "github-runners-dev-scale_up")

    result = _enable_batch_failures(env, function)

    assert result.returncode == 1
    assert "no SQS event source mapping" in result.stderr


def test_more_github_apps_are_listed_for_the_functions_and_readable_by_their_roles(
        stack: Any) -> None:
    # docs/REFERENCE.md §10: AdditionalGitHubAppCount=2 -> three Apps, the first one first.
    cloudformation = stack.boto("cloudformation")
    deployment = stack.deployment
    parameters = {"Prefix": "apps", "VpcId": deployment.vpc_id, "GitHubAppId": "4242",
                  "SubnetIds": ",".join(deployment.subnet_ids), "AdditionalGitHubAppCount": "2"}
    cloudformation.create_stack(
        StackName="ghr-apps", TemplateBody=build.STACK.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    description = cloudformation.describe_stacks(StackName="ghr-apps")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}

    root = "/github-action-runners/apps/app"
    assert outputs["GitHubAppIdParameterName"].split(",") == [
        f"{root}/github_app_id", f"{root}/github_app_2_id", f"{root}/github_app_3_id"]
    assert outputs["GitHubAppKeyParameterName"].split(",") == [
        f"{root}/github_app_key_base64", f"{root}/github_app_2_key_base64",
        f"{root}/github_app_3_key_base64"]
    iam = stack.boto("iam")
    [policy] = [p for p in iam.list_policies(Scope="Local")["Policies"]
                if p["PolicyName"].startswith("ghr-apps-GitHubAppReadPolicy")]
    document = iam.get_policy_version(PolicyArn=policy["Arn"],
                                      VersionId=policy["DefaultVersionId"])
    text = json.dumps(document["PolicyVersion"]["Document"])
    assert "github_app_3_key_base64" in text and "github_app_4_id" not in text
