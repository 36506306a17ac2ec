"""Several runner configurations (infra/runnerconfigs.py, infra/runnerconfig_resources.py):
one launch template, runner role, instance profile and log groups each, the SSM list of
REFERENCE §6 the functions read, and IAM that covers every configuration's runners."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RUNNER_CONFIGS_SAMPLE
from infra_support import as_list, render, statements

from infra import build, buildconfig, configure_stage, runnerconfig_resources, runnerconfigs
from infra.envmap import FUNCTION_ENVIRONMENT, stack_environment

IDS = ("linux-x64", "linux-arm64", "gpu", "windows")
NAMES = {"Prefix": "ci", "RunnerNamePrefix": "RunnerNamePrefix",
         "SsmPathRoot": "github-action-runners", "AWS::Partition": "aws",
         "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}


@pytest.fixture(scope="module")
def template(runner_configs_dir: Path) -> dict[str, Any]:
    return build.load(runner_configs_dir / "runners-stack.yaml")


@pytest.fixture(scope="module")
def merged(runner_configs_dir: Path) -> dict[str, Any]:
    return build.load(runner_configs_dir / "template.yaml")


def configurations(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSM list parameter's JSON, with Prefix `ci`."""
    value = template["Resources"]["RunnerConfigsParameter"]["Properties"]["Value"]
    return json.loads(render(value, NAMES))


def write(directory: Path, document: Any) -> Path:
    path = directory / "runners.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_each_configuration_gets_its_launch_template_role_profile_and_log_groups(
        template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for suffix in ("LinuxX64", "LinuxArm64", "Gpu", "Windows"):
        for base in ("RunnerLaunchTemplate", "RunnerRole", "RunnerInstanceProfile",
                     "RunnerUserDataLogGroup", "RunnerDiagLogGroup", "ConfigAgentMode",
                     "ConfigRunnerBinaries", "RunnerCloudwatchPolicy"):
            assert base + suffix in resources, base + suffix
    # The single configuration's resources stay: runners launched before the list keep theirs.
    assert {"RunnerLaunchTemplate", "RunnerRole", "RunnerInstanceProfile"} <= set(resources)
    gpu = resources["RunnerLaunchTemplateGpu"]["Properties"]
    assert render(gpu["LaunchTemplateName"], NAMES) == "ci-gpu-action-runner"
    data = gpu["LaunchTemplateData"]
    assert data["ImageId"] == ("resolve:ssm:/aws/service/deeplearning/ami/x86_64/"
                               "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id")
    assert data["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda", "Ebs": {
        "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True, "VolumeSize": 200}}]
    tags = {t["Key"]: render(t["Value"], NAMES) for t in data["TagSpecifications"][0]["Tags"]
            if t["Key"] != "Name"}
    assert tags == {"ghr:environment": "ci-gpu",
                    "ghr:ssm_config_path": "/github-action-runners/ci/runner-configs/gpu",
                    "ghr:runner_name_prefix": "RunnerNamePrefix"}
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["RunnerInstanceProfileGpu",
                                                                 "Arn"]}}
    log_group = resources["RunnerDiagLogGroupGpu"]["Properties"]["LogGroupName"]
    assert render(log_group, NAMES) == "/github-self-hosted-runners/ci-gpu/runner"


def test_windows_and_linux_configurations_get_their_own_start_script_and_image(
        template: dict[str, Any]) -> None:
    resources = template["Resources"]

    def script(suffix: str) -> str:
        data = resources["RunnerLaunchTemplate" + suffix]["Properties"]["LaunchTemplateData"]
        enabled, user_data, _ = data["UserData"]["Fn::If"]
        assert enabled == "UserDataEnabled"
        pieces = user_data["Fn::Base64"]["Fn::Join"][1]
        return "".join(p if isinstance(p, str) else "<ref>" for p in pieces)

    windows, gpu = script("Windows"), script("Gpu")
    assert windows.startswith("<powershell>\n") and "</powershell>" in windows
    assert gpu.startswith("#!/bin/bash\n")
    assert gpu.index('nvidia-smi || echo "no GPU driver"') < gpu.index("install_runner")
    arm = resources["RunnerLaunchTemplateLinuxArm64"]["Properties"]["LaunchTemplateData"]
    assert arm["ImageId"].endswith("al2023-ami-kernel-default-arm64")
    binaries = resources["ConfigRunnerBinariesWindows"]["Properties"]["Value"]["Fn::If"][1]
    assert render(binaries, {"RunnerBinariesBucket": "b"}) == (
        "s3://b/actions-runner-windows-x64.zip")
    windows_data = resources["RunnerLaunchTemplateWindows"]["Properties"]["LaunchTemplateData"]
    assert windows_data["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1"
    # Without its own volumes a configuration takes the stack's (and the build
    # configuration's extra ones), with its OS's root device.
    x64 = resources["RunnerLaunchTemplateLinuxX64"]["Properties"]["LaunchTemplateData"]
    assert [m["DeviceName"] for m in x64["BlockDeviceMappings"]] == [
        {"Fn::If": ["HasDeviceName", {"Ref": "RunnerVolumeDeviceName"}, "/dev/xvda"]},
        "/dev/sdf"]


def test_ephemerality_of_a_configuration_reaches_its_start_script(
        template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["ConfigAgentModeGpu"]["Properties"]["Value"] == "ephemeral"
    assert resources["ConfigJitGpu"]["Properties"]["Value"] == {
        "Fn::If": ["JitUnset", "true", {"Ref": "EnableJitConfig"}]}
    # Not set by the configuration: the stack's parameter decides, as for one configuration.
    assert resources["ConfigAgentModeWindows"]["Properties"]["Value"] == {
        "Fn::If": ["IsEphemeral", "ephemeral", "persistent"]}


def test_the_list_parameter_holds_the_json_of_contract_6(
        template: dict[str, Any], runner_configs: list[runnerconfigs.RunnerConfig]) -> None:
    entries = configurations(template)
    launch_templates = {render(r["Properties"]["LaunchTemplateName"], NAMES)
                        for r in template["Resources"].values()
                        if r["Type"] == "AWS::EC2::LaunchTemplate"}

    assert [e["id"] for e in entries] == list(IDS)
    for entry, config in zip(entries, runner_configs, strict=True):
        assert set(entry) == {"id", "matcherConfig", "environment"}
        assert re.fullmatch(r"[a-z0-9-]{1,32}", entry["id"])
        assert entry["matcherConfig"] == config.matcher_config
        environment = entry["environment"]
        assert all(isinstance(v, str) for v in environment.values())
        assert set(environment) <= set(FUNCTION_ENVIRONMENT) | {"ENVIRONMENT"}
        assert not set(environment) & set(runnerconfigs.NOT_OVERRIDABLE)
        assert environment["LAUNCH_TEMPLATE_NAME"] == f"ci-{entry['id']}-action-runner"
        assert environment["LAUNCH_TEMPLATE_NAME"] in launch_templates
    gpu = entries[2]["environment"]
    assert gpu == {
        "RUNNERS_MAXIMUM_COUNT": "4", "INSTANCE_TARGET_CAPACITY_TYPE": "on-demand",
        "ENABLE_EPHEMERAL_RUNNERS": "true", "RUNNER_LABELS": "gpu,cuda-12",
        "LAUNCH_TEMPLATE_NAME": "ci-gpu-action-runner", "RUNNER_OS": "linux",
        "RUNNER_ARCHITECTURE": "x64", "INSTANCE_TYPES": "g5.xlarge,g6.xlarge",
        "AMI_ID_SSM_PARAMETER_NAME": "/aws/service/deeplearning/ami/x86_64/"
                                     "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
        "AMI_FILTER": ""}
    assert entries[3]["environment"]["RUNNER_OS"] == "windows"
    # The deployment's image settings name another OS's image: never inherited.
    assert entries[0]["environment"]["AMI_ID_SSM_PARAMETER_NAME"] == ""


def test_a_dollar_brace_in_a_value_stays_literal() -> None:
    config = runnerconfigs.parse([{"id": "a", "environment": {"RUNNER_LABELS": "${x}"},
                                   "launchTemplate": {"instance_types": ["m5.large"]}}])
    text = runnerconfig_resources.configurations_json(config)
    assert json.loads(render({"Fn::Sub": text}, NAMES))[0]["environment"]["RUNNER_LABELS"] == (
        "${x}")


def test_every_function_gets_the_parameter_name_and_may_read_it(
        merged: dict[str, Any]) -> None:
    functions = ("APIHandler", "ScaleUp", "ScaleDown", "AdjustPool", "SyncRunnerBinaries",
                 "Ec2Events")
    for name in functions:
        variables = merged["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert render(variables["RUNNER_CONFIGS_PARAMETER_NAME"], NAMES) == (
            "/github-action-runners/ci/runners/configurations")
    policy = merged["Resources"]["RunnerConfigsReadPolicy"]["Properties"]
    assert sorted(r["Ref"] for r in policy["Roles"]) == sorted(
        runnerconfig_resources.FUNCTION_ROLES)
    [statement] = policy["PolicyDocument"]["Statement"]
    assert render(statement["Resource"], NAMES) == (
        "arn:aws:ssm:eu-west-1:123456789012:parameter/github-action-runners/ci/runners/"
        "configurations")
    assert merged["Outputs"]["RunnerConfigsParameterName"]


def test_scale_down_and_ec2_events_act_on_every_configurations_runners(
        template: dict[str, Any]) -> None:
    every = ["ci", "ci-linux-x64", "ci-linux-arm64", "ci-gpu", "ci-windows"]
    scoped = {"ScaleDownRole": ("TerminateOwnRunners", "MarkSuspectedOrphans",
                                "UnmarkSuspectedOrphans"),
              "Ec2EventsRole": ("MarkInterruptedRunners",)}
    for resource, sids in scoped.items():
        found = statements(template, resource)
        for sid in sids:
            condition = found[sid]["Condition"]["StringEquals"]
            values = condition["aws:ResourceTag/ghr:environment"]
            assert [render(v, NAMES) for v in values] == every, (resource, sid)


def test_scale_up_and_the_pool_launch_each_configuration_with_its_template_and_role(
        template: dict[str, Any]) -> None:
    # The single configuration's policy is unchanged; the configurations' go into managed
    # policies of five configurations each (a managed policy holds 6,144 characters).
    assert statements(template, "LaunchRunnersPolicy") == statements(
        build.stack_template(), "LaunchRunnersPolicy")
    policy = template["Resources"]["RunnerConfigsLaunchPolicy1"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert policy["Properties"]["Roles"] == [{"Ref": "ScaleUpRole"}, {"Ref": "PoolRole"}]
    launching = statements(template, "RunnerConfigsLaunchPolicy1")
    assert set(launching) == set(runnerconfig_resources.LAUNCH_SIDS)
    environments = ["ci-linux-x64", "ci-linux-arm64", "ci-gpu", "ci-windows"]
    for sid in ("LaunchTaggedRunnerInstances", "FleetOfTaggedRunnerInstances"):
        values = launching[sid]["Condition"]["StringEquals"]["aws:RequestTag/ghr:environment"]
        assert [render(v, NAMES) for v in values] == environments
    for sid in ("TagRunnerIdOfOwnRunners", "TerminateOwnRunners"):
        values = launching[sid]["Condition"]["StringEquals"]["aws:ResourceTag/ghr:environment"]
        assert [render(v, NAMES) for v in values] == environments
    suffixes = ("LinuxX64", "LinuxArm64", "Gpu", "Windows")
    names = {**NAMES, **{f"RunnerLaunchTemplate{s}": f"lt-{s}" for s in suffixes}}
    templates = [f"arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-{s}" for s in suffixes]
    assert [render(v, names) for v in launching["UseTheRunnerLaunchTemplate"]["Resource"]] == (
        templates)
    for sid in ("LaunchTaggedRunnerInstances", "LaunchResources"):
        pinned = launching[sid]["Condition"]["ArnLike"]["ec2:LaunchTemplate"]
        assert [render(v, names) for v in pinned] == templates
    assert [r["Fn::GetAtt"][0] for r in as_list(launching["PassOnlyTheRunnerRole"]["Resource"])
            ] == [f"RunnerRole{s}" for s in suffixes]


def resolved_length(document: Any) -> int:
    """The characters of a policy once CloudFormation resolves it, at the longest names: a
    31-character Prefix, a launch template id, a runner role ARN under the role path."""
    longest = {"Prefix": "p" * 31, "AWS::Partition": "aws-us-gov", "AWS::AccountId": "1" * 12,
               "AWS::Region": "ap-southeast-2", "AWS::URLSuffix": "amazonaws.com"}

    def value(node: Any) -> Any:
        if isinstance(node, list):
            return [value(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "Fn::Sub" in node:
            return re.sub(r"\$\{([^}!]+)\}",
                          lambda m: longest.get(m[1], "lt-0123456789abcdef0"), node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            return f"arn:aws-us-gov:iam::{'1' * 12}:role/{'p' * 31}/{'r' * 64}"
        if "Ref" in node:
            return longest.get(node["Ref"], "k" * 80)  # a key ARN, at most
        return {k: value(v) for k, v in node.items()}

    return len(json.dumps(value(document), separators=(",", ":")))


def test_many_configurations_spread_their_launch_statements_over_policies() -> None:
    configs = runnerconfigs.parse([
        {"id": f"{i:02d}" + "x" * 30, "launchTemplate": {"instance_types": ["m5.large"]}}
        for i in range(runnerconfigs.MAX_CONFIGURATIONS)])
    resources = build.stack_template(runner_configs=configs)["Resources"]
    policies = [name for name in resources if name.startswith("RunnerConfigsLaunchPolicy")]
    assert len(policies) == 5
    attached = [name for name, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"
                and {"Ref": "ScaleUpRole"} in r["Properties"]["Roles"]]
    assert len(attached) + 1 <= 10  # and AWSLambdaVPCAccessExecutionRole with a Lambda VPC
    for name in policies:  # IAM: a managed policy holds 6,144 characters
        assert resolved_length(resources[name]["Properties"]["PolicyDocument"]) < 6144
    # Inline policies: 10,240 characters per role, all of them together.
    for role in ("ScaleDownRole", "Ec2EventsRole"):
        inline = [p["PolicyDocument"] for p in resources[role]["Properties"]["Policies"]]
        inline += [r["Properties"]["PolicyDocument"] for r in resources.values()
                   if r["Type"] == "AWS::IAM::Policy"
                   and {"Ref": role} in r["Properties"]["Roles"]]
        assert sum(resolved_length(d) for d in inline) < 10240, role


def test_each_runner_role_reaches_only_its_configurations_instances_and_parameters(
        template: dict[str, Any]) -> None:
    role = statements(template, "RunnerRoleGpu")
    assert render(role["ReadRunnerConfig"]["Resource"], NAMES) == (
        "arn:aws:ssm:eu-west-1:123456789012:parameter/github-action-runners/ci/"
        "runner-configs/gpu/*")
    for sid in ("TerminateItself", "TagItsRunnerIdOnce"):
        condition = role[sid]["Condition"]["StringEquals"]
        assert render(condition["aws:ResourceTag/ghr:environment"], NAMES) == "ci-gpu"
    # The same denies as the single runner role: no App parameter, no other instance's token.
    single = statements(template, "RunnerRole")
    for sid in ("DenyGitHubApp", "DenyOtherInstancesTokens", "DenyUntaggedTokens",
                "DenyPathReadsOverTheDeployments", "ReadAndDeleteOwnToken"):
        assert role[sid] == single[sid]
    logs = statements(template, "RunnerCloudwatchPolicyGpu")["ShipRunnerLogs"]["Resource"]
    assert {render(r, NAMES).split(":log-group:")[1] for r in logs} == {
        "/github-self-hosted-runners/ci-gpu/*",
        "/github-self-hosted-runners/ci-gpu/*:log-stream:*"}
    for policy in ("RunnerDenyAppKeyDecryptPolicy", "RunnerTokenKeyDecryptPolicy"):
        roles = template["Resources"][policy]["Properties"]["Roles"]
        assert {"Ref": "RunnerRoleWindows"} in roles and {"Ref": "RunnerRole"} in roles


def test_extra_security_groups_and_policies_are_added_to_the_stacks() -> None:
    [config] = runnerconfigs.parse([{"id": "big", "launchTemplate": {
        "instance_types": ["m5.4xlarge"],
        "runner_additional_security_group_ids": ["sg-0123456789abcdef0"],
        "runner_iam_role_managed_policy_arns": ["arn:aws:iam::123456789012:policy/ci-cache"]}}])
    template = build.stack_template(runner_configs=[config])
    data = template["Resources"]["RunnerLaunchTemplateBig"]["Properties"]["LaunchTemplateData"]
    groups = data["SecurityGroupIds"]["Fn::If"][2]
    assert groups["Fn::If"][2] == {"Fn::If": [
        "ManagedSecurityGroup", [{"Ref": "RunnerSecurityGroup"}, "sg-0123456789abcdef0"],
        ["sg-0123456789abcdef0"]]}
    policies = template["Resources"]["RunnerRoleBig"]["Properties"]["ManagedPolicyArns"]
    assert "arn:aws:iam::123456789012:policy/ci-cache" in json.dumps(policies)
    assert policies["Fn::If"][2]["Fn::If"][2] == ["arn:aws:iam::123456789012:policy/ci-cache"]


def test_a_bad_file_fails_with_every_problem_named(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"id": "Linux", "launchTemplate": {"instance_types": ["m5.large"]}},
        {"id": "gpu", "matcherConfig": {"labelMatchers": "gpu", "exact": True},
         "environment": {"GHES_URL": "https://ghe", "NO_SUCH": "x", "LAUNCH_TEMPLATE_NAME": "t",
                         "SSM_TOKEN_PATH": "/x", "RUNNERS_MAXIMUM_COUNT": "many",
                         "ENABLE_EPHEMERAL_RUNNERS": "yes", "RUNNER_LABELS": {"a": 1}},
         "launchTemplate": {"runner_os": "windows", "runner_architecture": "arm64",
                            "ami_id": "ami-0123456789abcdef0",
                            "ami_id_ssm_parameter_name": "/my/ami", "disk": 100}},
        {"id": "gpu", "launchTemplate": {"instance_types": "g5.xlarge",
                                         "block_device_mappings": [{"device_name": "/dev/xvda"}]}},
        {"id": "a-1b", "launchTemplate": {"instance_types": ["m5.large"]}},
        {"id": "a1b", "launchTemplate": {"instance_types": ["m5.large"]}},
    ])

    with pytest.raises(runnerconfigs.RunnerConfigsError) as caught:
        runnerconfigs.load(path)

    message = str(caught.value)
    for problem in ("[0].id: required, [a-z0-9-]{1,32}",
                    "[1] (gpu).matcherConfig.exact: unknown key",
                    "[1] (gpu).matcherConfig.labelMatchers: expected list",
                    "[1] (gpu).environment.GHES_URL: not overridable",
                    "[1] (gpu).environment.NO_SUCH: unknown variable",
                    "[1] (gpu).environment.LAUNCH_TEMPLATE_NAME: set by the generated launch "
                    "template",
                    "[1] (gpu).environment.SSM_TOKEN_PATH: not overridable here",
                    "[1] (gpu).environment.RUNNERS_MAXIMUM_COUNT: expected a whole number",
                    "[1] (gpu).environment.ENABLE_EPHEMERAL_RUNNERS: expected true or false",
                    "[1] (gpu).environment.RUNNER_LABELS: expected a string",
                    "[1] (gpu).launchTemplate.disk: unknown field",
                    "[1] (gpu).launchTemplate.runner_architecture: Windows runners are x64 only",
                    "[1] (gpu).launchTemplate.instance_types: required",
                    "[1] (gpu).launchTemplate.ami_id: give ami_id or ami_id_ssm_parameter_name",
                    "[2] (gpu).launchTemplate.instance_types: expected list",
                    "[2] (gpu).launchTemplate.block_device_mappings[0].volume_size: required",
                    "id gpu: listed 2 times",
                    "ids a-1b and a1b: the same resource names"):
        assert problem in message, problem
    assert message.startswith(f"{path}:\n")


def test_the_build_writes_configured_templates_only_where_it_is_told(tmp_path: Path) -> None:
    args = ["--runner-configs", str(RUNNER_CONFIGS_SAMPLE)]
    assert build.main([*args, "--output-dir", str(tmp_path)]) == 0
    assert "RunnerLaunchTemplateGpu" in (tmp_path / "template.yaml").read_text()
    with pytest.raises(SystemExit):
        build.main(args)
    bad = write(tmp_path, [{"id": "x"}])
    assert build.main(["--runner-configs", str(bad), "--output-dir", str(tmp_path / "b")]) == 1
    assert not (tmp_path / "b").exists()


def test_without_a_file_the_functions_get_no_parameter_name(
        merge_template: dict[str, Any]) -> None:
    variables = merge_template["Resources"]["ScaleUp"]["Properties"]["Environment"]["Variables"]
    assert "RUNNER_CONFIGS_PARAMETER_NAME" not in variables
    assert "RunnerConfigsParameter" not in merge_template["Resources"]


def test_the_docs_list_every_field_of_the_runner_configurations() -> None:
    document = build.DEPLOY_DOC.read_text()
    for name in ("id", "matcherConfig", "environment", "launchTemplate",
                 *runnerconfigs.LAUNCH_FIELDS):
        assert f"`{name}`" in document


def test_the_sample_stack_creates_on_moto_with_the_list_the_functions_read(
        stack: Any, runner_configs_dir: Path) -> None:
    cloudformation = stack.boto("cloudformation")
    deployment = stack.deployment
    parameters = {"Prefix": "ci", "VpcId": deployment.vpc_id, "GitHubAppId": "4242",
                  "SubnetIds": ",".join(deployment.subnet_ids)}
    cloudformation.create_stack(
        StackName="ghr-multi", TemplateBody=(runner_configs_dir / "runners-stack.yaml").read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    description = cloudformation.describe_stacks(StackName="ghr-multi")["Stacks"][0]
    assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}

    ssm = stack.boto("ssm")
    value = ssm.get_parameter(Name=outputs["RunnerConfigsParameterName"])["Parameter"]["Value"]
    entries = json.loads(value)
    assert [e["id"] for e in entries] == list(IDS)
    ec2 = stack.boto("ec2")
    for entry in entries:
        name = entry["environment"]["LAUNCH_TEMPLATE_NAME"]
        [version] = ec2.describe_launch_template_versions(
            LaunchTemplateName=name)["LaunchTemplateVersions"]
        tags = {t["Key"]: t["Value"]
                for t in version["LaunchTemplateData"]["TagSpecifications"][0]["Tags"]}
        assert tags["ghr:environment"] == f"ci-{entry['id']}"
        path = tags["ghr:ssm_config_path"]
        found = {p["Name"].rsplit("/", 1)[1]: p["Value"]
                 for p in ssm.get_parameters_by_path(Path=path)["Parameters"]}
        assert found["token_path"] == "/github-action-runners/ci/runners/tokens"
        environment = entry["environment"]
        os_arch = f"{environment['RUNNER_OS']}-{environment['RUNNER_ARCHITECTURE']}"
        assert os_arch in found["runner_binaries_s3_uri"]
    assert json.loads(value)[2]["environment"]["ENABLE_EPHEMERAL_RUNNERS"] == "true"
    # The `chalice deploy` path: the stage gets the parameter's name from the stack's output.
    parameters, stack_outputs = configure_stage.describe(cloudformation, "ghr-multi")
    assert stack_environment(parameters, stack_outputs)["RUNNER_CONFIGS_PARAMETER_NAME"] == (
        "/github-action-runners/ci/runners/configurations")
    groups = stack.boto("logs").describe_log_groups(
        logGroupNamePrefix="/github-self-hosted-runners/ci-windows/")["logGroups"]
    assert sorted(g["logGroupName"].rsplit("/", 1)[1] for g in groups) == ["runner", "user_data"]


def test_a_pool_schedule_of_the_build_configuration_sizes_its_runner_configurations_pool(
        tmp_path: Path, template: dict[str, Any]) -> None:
    # The sample build configuration's schedules name no configuration: the first one's pool.
    morning = template["Resources"]["PoolConfig1Schedule"]["Properties"]["Target"]["Input"]
    assert json.loads(morning) == {"poolSize": 3}
    config = tmp_path / "build.json"
    config.write_text(json.dumps({"pool_config": [
        {"schedule_expression": "cron(0 8 ? * MON-FRI *)", "size": 1, "runner_config": "gpu"}]}))

    files = build.configured_outputs(config, tmp_path / "out", RUNNER_CONFIGS_SAMPLE)

    stack_path = tmp_path / "runners-stack.yaml"
    stack_path.write_text(files[tmp_path / "out" / "runners-stack.yaml"])
    gpu = build.load(stack_path)
    target = gpu["Resources"]["PoolConfig1Schedule"]["Properties"]["Target"]
    assert json.loads(target["Input"]) == {"poolSize": 1, "runnerConfig": "gpu"}
    with pytest.raises(buildconfig.BuildConfigError, match="gpu is not the id"):
        build.configured_outputs(config, tmp_path / "plain")


@pytest.mark.parametrize("function", ["scale_up", "scale_down", "adjust_pool", "webhook"])
def test_the_functions_accept_the_list_the_build_writes(template: dict[str, Any],
                                                        function: Any) -> None:
    """The build's list read by the functions' own parser, over the environment the stack
    gives them: every entry accepted, each with its template, OS, architecture and cap."""
    from chalicelib.runner_configs import load_top_settings, parse_runner_configs

    env = {"ENVIRONMENT": "ci", "SUBNET_IDS": "subnet-a", "LAUNCH_TEMPLATE_NAME": "ci-runner",
           "SSM_TOKEN_PATH": "/github-action-runners/ci/runners/tokens",
           "SSM_CONFIG_PATH": "/github-action-runners/ci/runners/config",
           "PARAMETER_GITHUB_APP_ID_NAME": "/id", "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": "/key",
           "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME": "/secret", "SQS_URL_WEBHOOK": "q",
           "STATE_TABLE_NAME": "ci-state", "RUNNER_OWNER": "acme",
           "RUNNER_CONFIGS_PARAMETER_NAME": "/github-action-runners/ci/runners/configurations"}
    text = json.dumps(configurations(template))
    parsed = parse_runner_configs(text, env, function, load_top_settings(env, function))

    settings = {config.id: config.settings for config in parsed.configs}
    assert list(settings) == list(IDS)
    assert {i: s.environment for i, s in settings.items()} == {i: f"ci-{i}" for i in IDS}
    assert settings["linux-arm64"].runner_architecture == "arm64"
    assert settings["windows"].runner_os == "windows"
    assert settings["gpu"].enable_jit_config and settings["gpu"].runners_maximum_count == 4
    assert settings["gpu"].ami_id_ssm_parameter_name is not None
    assert settings["linux-x64"].ami_id_ssm_parameter_name is None  # "" is unset
    assert settings["linux-x64"].launch_template_name == "ci-linux-x64-action-runner"
