"""The resources of several runner configurations (infra/runnerconfigs.py), added to a stack.

Per configuration `<id>` (logical ids end in its CamelCase, `linux-x64` -> `LinuxX64`):
a launch template `<Prefix>-<id>-action-runner` with the start script of its OS, a runner role
and instance profile (the runner role's least-privilege statements, scoped to the
configuration's `ghr:environment` and SSM path), the start script's parameters under
`/<SsmPathRoot>/<Prefix>/runner-configs/<id>/`, and its log groups
`/github-self-hosted-runners/<environment>/...`. For the deployment: the SSM parameter
`/<SsmPathRoot>/<Prefix>/runners/configurations` holding the JSON list the functions read
(RUNNER_CONFIGS_PARAMETER_NAME), read access to it for every function, and the launching,
scale-down and ec2_events statements widened from the one environment to every
configuration's (the single configuration's resources stay: runners launched before the list
existed keep their role, and scale-down still covers them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from infra.buildconfig import block_device_mapping
from infra.runnerconfigs import RunnerConfig, RunnerConfigsError

LIST_PARAMETER = "RunnerConfigsParameter"
LIST_NAME = "/${SsmPathRoot}/${Prefix}/runners/configurations"
OUTPUT = "RunnerConfigsParameterName"
FUNCTION_ROLES = ("WebhookRole", "ScaleUpRole", "ScaleDownRole", "PoolRole", "SyncerRole",
                  "Ec2EventsRole")
# Roles whose statements name "this environment's runners" by tag (inline policies: 10,240
# characters per role, room for every configuration).
TAG_SCOPED = ("ScaleDownRole", "Ec2EventsRole")
# LaunchRunnersPolicy's statements that name the environment, the launch template or the runner
# role. A managed policy holds 6,144 characters, a role 10 managed policies by default: the
# configurations' copies go into one more managed policy per LAUNCH_CHUNK configurations (at
# the longest names, about 800 characters each besides 1,500 of statements).
LAUNCH_SIDS = ("LaunchTaggedRunnerInstances", "FleetOfTaggedRunnerInstances",
               "UseTheRunnerLaunchTemplate", "LaunchResources", "TagRunnerIdOfOwnRunners",
               "TerminateOwnRunners", "PassOnlyTheRunnerRole")
LAUNCH_CHUNK = 5
# SSM: a Standard parameter holds 4 KB, an Advanced one 8 KB. Sized with the longest Prefix.
STANDARD_LIMIT, ADVANCED_LIMIT = 4096, 8192
LONGEST_PREFIX = "p" * 31
# The start script's parameters, copied from the single configuration's.
CONFIG_PARAMETERS = ("ConfigRunAs", "ConfigAgentMode", "ConfigJit", "ConfigCloudwatch",
                     "ConfigCloudwatchAgent", "ConfigTokenPath", "ConfigRunnerBinaries")
ARCHIVES = {"linux": "tar.gz", "windows": "zip"}
ROOT_DEVICES = {"linux": "/dev/xvda", "windows": "/dev/sda1"}

UserData = Callable[[str, Any, Any], dict[str, Any]]


def sub_literal(text: str) -> str:
    """`text` inside an Fn::Sub string, taken literally."""
    return text.replace("${", "${!")


def environment_sub(config: RunnerConfig) -> str:
    """The configuration's ENVIRONMENT (its `ghr:environment` tag) as an Fn::Sub string."""
    given = config.environment.get("ENVIRONMENT")
    return sub_literal(given) if given is not None else f"${{Prefix}}-{config.id}"


def template_name(config: RunnerConfig) -> str:
    """The launch template's name, as an Fn::Sub string."""
    return f"${{Prefix}}-{config.id}-action-runner"


def config_path(config: RunnerConfig) -> str:
    """The SSM path of the start script's parameters, as an Fn::Sub string."""
    return f"/${{SsmPathRoot}}/${{Prefix}}/runner-configs/{config.id}"


def configurations_json(configs: list[RunnerConfig]) -> str:
    """The JSON list of REFERENCE §6, as an Fn::Sub string (`${Prefix}` in the names)."""
    entries = []
    for config in configs:
        launch = config.launch
        environment = {name: sub_literal(value) for name, value in config.environment.items()}
        environment.update({
            "LAUNCH_TEMPLATE_NAME": template_name(config),
            "RUNNER_OS": launch.runner_os,
            "RUNNER_ARCHITECTURE": launch.runner_architecture,
            "INSTANCE_TYPES": ",".join(launch.instance_types),
            # Empty (unset) rather than the deployment's, which names another OS's image.
            "AMI_ID_SSM_PARAMETER_NAME": sub_literal(launch.ami_id_ssm_parameter_name or ""),
        })
        environment.setdefault("AMI_FILTER", "")
        entry: dict[str, Any] = {"id": config.id}
        if config.matcher_config is not None:
            entry["matcherConfig"] = json.loads(sub_literal(json.dumps(config.matcher_config)))
        entry["environment"] = environment
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":"))


def apply(template: dict[str, Any], configs: list[RunnerConfig], user_data: UserData) -> None:
    """Add every configuration's resources, the list parameter and the IAM it needs."""
    resources = template["Resources"]
    # PyYAML shares the objects of anchors and aliases (&own-runners): copy before changing.
    resources.update(json.loads(json.dumps(resources)))
    for config in configs:
        resources.update(_configuration(resources, config, user_data))
        for policy in ("RunnerDenyAppKeyDecryptPolicy", "RunnerTokenKeyDecryptPolicy"):
            resources[policy]["Properties"]["Roles"].append({"Ref": _id("RunnerRole", config)})
    _widen(resources, configs)
    value = configurations_json(configs)
    size = len(value.replace("${Prefix}", LONGEST_PREFIX))
    if size > ADVANCED_LIMIT:
        raise RunnerConfigsError(f"the configurations' JSON takes up to {size} bytes, an SSM "
                                 f"parameter at most {ADVANCED_LIMIT}")
    resources[LIST_PARAMETER] = {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": {"Fn::Sub": LIST_NAME},
        "Description": "Runner configurations (RUNNER_CONFIGS_PARAMETER_NAME), generated by "
                       "python -m infra.build --runner-configs",
        "Type": "String",
        "Tier": "Standard" if size <= STANDARD_LIMIT else "Advanced",
        "Value": {"Fn::Sub": value}}}
    resources["RunnerConfigsReadPolicy"] = {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyName": "read-runner-configurations",
        "Roles": [{"Ref": role} for role in FUNCTION_ROLES],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Sid": "ReadRunnerConfigurations", "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": {"Fn::Sub": _parameter_arn(LIST_NAME)}}]}}}
    amis = [c.launch.ami_id_ssm_parameter_name for c in configs
            if c.launch.ami_id_ssm_parameter_name
            and not c.launch.ami_id_ssm_parameter_name.startswith("/aws/service/")]
    if amis:
        resources["RunnerConfigsAmiParameterPolicy"] = {
            "Type": "AWS::IAM::Policy", "Properties": {
                "PolicyName": "resolve-runner-configuration-ami-parameters",
                "Roles": [{"Ref": "ScaleUpRole"}, {"Ref": "PoolRole"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Sid": "ResolveConfigurationAmiParameters", "Effect": "Allow",
                    "Action": ["ssm:GetParameter", "ssm:GetParameters"],
                    "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:"
                                             "${AWS::AccountId}:parameter" + sub_literal(name)}
                                 for name in sorted(set(amis))]}]}}}
    template["Outputs"][OUTPUT] = {
        "Description": "SSM parameter of the runner configurations "
                       "(RUNNER_CONFIGS_PARAMETER_NAME).",
        "Value": {"Fn::Sub": LIST_NAME}}


def _id(base: str, config: RunnerConfig) -> str:
    return base + config.logical_suffix


def _parameter_arn(name_sub: str) -> str:
    return "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter" + name_sub


def _configuration(resources: dict[str, Any], config: RunnerConfig,
                   user_data: UserData) -> dict[str, Any]:
    """The resources of one configuration."""
    role, profile = _id("RunnerRole", config), _id("RunnerInstanceProfile", config)
    added = {
        _id("RunnerLaunchTemplate", config): _launch_template(resources, config, profile,
                                                              user_data),
        role: _role(resources["RunnerRole"], config),
        profile: {"Type": "AWS::IAM::InstanceProfile", "Properties": {
            "InstanceProfileName": {"Fn::Sub": f"${{Prefix}}-{config.id}-runner-profile"},
            "Path": copy.deepcopy(resources["RunnerInstanceProfile"]["Properties"]["Path"]),
            "Roles": [{"Ref": role}]}},
    }
    cloudwatch = copy.deepcopy(resources["RunnerCloudwatchPolicy"])
    cloudwatch["Properties"]["Roles"] = [{"Ref": role}]
    statement = cloudwatch["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Resource"] = [{"Fn::Sub": _log_groups(r["Fn::Sub"], config)}
                             for r in statement["Resource"]]
    added[_id("RunnerCloudwatchPolicy", config)] = cloudwatch
    for name in CONFIG_PARAMETERS:
        added[name + config.logical_suffix] = _config_parameter(resources[name], name, config)
    for name in ("RunnerUserDataLogGroup", "RunnerDiagLogGroup"):
        group = copy.deepcopy(resources[name])
        properties = group["Properties"]
        properties["LogGroupName"] = {"Fn::Sub": _log_groups(properties["LogGroupName"]["Fn::Sub"],
                                                             config)}
        added[_id(name, config)] = group
    return added


def _log_groups(text: str, config: RunnerConfig) -> str:
    """A Fn::Sub string naming the single configuration's log groups, renamed for `config`."""
    return text.replace("/github-self-hosted-runners/${Prefix}/",
                        f"/github-self-hosted-runners/{environment_sub(config)}/")


def _launch_template(resources: dict[str, Any], config: RunnerConfig, profile: str,
                     user_data: UserData) -> dict[str, Any]:
    launch = config.launch
    template: dict[str, Any] = copy.deepcopy(resources["RunnerLaunchTemplate"])
    properties = template["Properties"]
    properties["LaunchTemplateName"] = {"Fn::Sub": template_name(config)}
    environment = {"Fn::Sub": environment_sub(config)}
    properties["TagSpecifications"][0]["Tags"] = [{"Key": "ghr:environment",
                                                   "Value": environment}]
    data = properties["LaunchTemplateData"]
    if launch.ami_id is not None:
        data["ImageId"] = launch.ami_id
    else:
        name = launch.ami_id_ssm_parameter_name or DEFAULT_AMI[launch.runner_os][
            launch.runner_architecture]
        data["ImageId"] = f"resolve:ssm:{name}"
    data["IamInstanceProfile"] = {"Arn": {"Fn::GetAtt": [profile, "Arn"]}}
    if launch.block_device_mappings:
        data["BlockDeviceMappings"] = [block_device_mapping(v)
                                       for v in launch.block_device_mappings]
    else:
        root = data["BlockDeviceMappings"][0]
        condition, given, _ = root["DeviceName"]["Fn::If"]
        root["DeviceName"] = {"Fn::If": [condition, given, ROOT_DEVICES[launch.runner_os]]}
    groups = _security_groups(launch.runner_additional_security_group_ids)
    interfaces = data["NetworkInterfaces"]["Fn::If"][1][0]
    interfaces["Groups"] = copy.deepcopy(groups)
    data["SecurityGroupIds"]["Fn::If"][2] = groups
    tags = [{"Key": "Name", "Value": {"Fn::If": [
                "HasNameRunnerOverride", {"Ref": "NameRunnerOverride"},
                {"Fn::Sub": template_name(config)}]}},
            {"Key": "ghr:environment", "Value": environment},
            {"Key": "ghr:ssm_config_path", "Value": {"Fn::Sub": config_path(config)}},
            {"Key": "ghr:runner_name_prefix", "Value": {"Ref": "RunnerNamePrefix"}}]
    for specification in data["TagSpecifications"]:
        specification["Tags"] = copy.deepcopy(tags)
    data["UserData"] = {"Fn::If": ["UserDataEnabled", user_data(
        launch.runner_os, launch.userdata_pre_install, launch.userdata_post_install),
        {"Ref": "AWS::NoValue"}]}
    return template


DEFAULT_AMI = {
    "linux": {"x64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
              "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"},
    "windows": {"x64": "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base"},
}


def _security_groups(extra: tuple[str, ...]) -> Any:
    """The runner security groups of the single template, plus `extra`."""
    managed = {"Ref": "RunnerSecurityGroup"}
    additional = {"Fn::Join": [",", {"Ref": "RunnerAdditionalSecurityGroupIds"}]}
    if not extra:
        with_additional: Any = {"Fn::If": ["ManagedSecurityGroup", {"Fn::Split": [
            ",", {"Fn::Join": [",", [managed, additional]]}]},
            {"Ref": "RunnerAdditionalSecurityGroupIds"}]}
        without: Any = {"Fn::If": ["ManagedSecurityGroup", [managed], {"Ref": "AWS::NoValue"}]}
    else:
        with_additional = {"Fn::If": ["ManagedSecurityGroup", {"Fn::Split": [
            ",", {"Fn::Join": [",", [managed, additional, *extra]]}]},
            {"Fn::Split": [",", {"Fn::Join": [",", [additional, *extra]]}]}]}
        without = {"Fn::If": ["ManagedSecurityGroup", [managed, *extra], list(extra)]}
    return {"Fn::If": ["HasAdditionalSecurityGroups", with_additional, without]}


def _role(single: dict[str, Any], config: RunnerConfig) -> dict[str, Any]:
    """The single runner role's statements, scoped to the configuration."""
    role = copy.deepcopy(single)
    properties = role["Properties"]
    # Role names are at most 64 characters: <Prefix>-<id>-runner-role could be 76.
    del properties["RoleName"]
    properties["Tags"] = [{"Key": "ghr:environment", "Value": {"Fn::Sub": environment_sub(config)}}]
    properties["ManagedPolicyArns"] = _managed_policies(
        config.launch.runner_iam_role_managed_policy_arns)
    for statement in properties["Policies"][0]["PolicyDocument"]["Statement"]:
        if statement["Sid"] == "ReadRunnerConfig":
            statement["Resource"] = {"Fn::Sub": _parameter_arn(config_path(config) + "/*")}
        for condition in statement.get("Condition", {}).values():
            if condition.get("aws:ResourceTag/ghr:environment") == {"Ref": "Prefix"}:
                condition["aws:ResourceTag/ghr:environment"] = {
                    "Fn::Sub": environment_sub(config)}
    return role


def _managed_policies(extra: tuple[str, ...]) -> Any:
    """AmazonSSMManagedInstanceCore (EnableSsmOnRunners), the stack's runner policies
    (RunnerIamRoleManagedPolicyArns) and the configuration's own."""
    ssm = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    stack = {"Fn::Join": [",", {"Ref": "RunnerIamRoleManagedPolicyArns"}]}

    def joined(parts: list[Any]) -> Any:
        return {"Fn::Split": [",", {"Fn::Join": [",", parts]}]}

    return {"Fn::If": [
        "SsmOnRunners",
        {"Fn::If": ["HasRunnerManagedPolicies", joined([ssm, stack, *extra]), [ssm, *extra]]},
        {"Fn::If": ["HasRunnerManagedPolicies", joined([stack, *extra]),
                    list(extra) if extra else {"Ref": "AWS::NoValue"}]},
    ]}


def _config_parameter(single: dict[str, Any], name: str, config: RunnerConfig) -> dict[str, Any]:
    """One of the start script's parameters, under the configuration's path, with its values."""
    parameter = copy.deepcopy(single)
    properties = parameter["Properties"]
    key = properties["Name"]["Fn::Sub"].rsplit("/", 1)[1]
    properties["Name"] = {"Fn::Sub": f"{config_path(config)}/{key}"}
    launch, environment = config.launch, config.environment
    ephemeral = environment.get("ENABLE_EPHEMERAL_RUNNERS")
    if name == "ConfigRunAs" and launch.runner_run_as is not None:
        properties["Value"] = {"Fn::If": ["IsRoot", "root", launch.runner_run_as]}
    elif name == "ConfigAgentMode" and ephemeral is not None:
        properties["Value"] = "ephemeral" if ephemeral == "true" else "persistent"
    elif name == "ConfigJit":
        properties["Value"] = _jit(ephemeral, environment.get("ENABLE_JIT_CONFIG"))
    elif name == "ConfigCloudwatchAgent":
        files = properties["Value"]["Fn::If"][2]["Fn::Sub"][1]["Files"]
        windows, linux = files["Fn::If"][2]["Fn::If"][1:]
        chosen = windows if launch.runner_os == "windows" else linux
        files["Fn::If"][2] = {"Fn::Sub": _log_groups(chosen["Fn::Sub"], config)}
    elif name == "ConfigRunnerBinaries":
        uri = (f"s3://${{RunnerBinariesBucket}}/actions-runner-{launch.runner_os}-"
               f"{launch.runner_architecture}.{ARCHIVES[launch.runner_os]}")
        properties["Value"] = {"Fn::If": ["RunnerBinariesSyncerEnabled", {"Fn::Sub": uri},
                                          "none"]}
    return parameter


def _jit(ephemeral: str | None, jit: str | None) -> Any:
    """enable_jit_config: on only with ephemeral runners, by default when they are."""
    if ephemeral == "false":
        return "false"
    when_ephemeral: Any = jit if jit is not None else {
        "Fn::If": ["JitUnset", "true", {"Ref": "EnableJitConfig"}]}
    if ephemeral == "true":
        return when_ephemeral
    return {"Fn::If": ["IsEphemeral", when_ephemeral, "false"]}


def _scope(statements: list[dict[str, Any]], environments: list[Any]) -> None:
    """Every `.../ghr:environment` condition on the stack's Prefix, on `environments` instead."""
    for statement in statements:
        for condition in statement.get("Condition", {}).values():
            for key, value in condition.items():
                if key.endswith("/ghr:environment") and value == {"Ref": "Prefix"}:
                    condition[key] = copy.deepcopy(environments)


def _widen(resources: dict[str, Any], configs: list[RunnerConfig]) -> None:
    """Scale-down and ec2_events act on every configuration's runners; scale-up and the pool
    launch them (LaunchRunnersPolicy stays the single configuration's)."""
    environments = [{"Ref": "Prefix"}, *({"Fn::Sub": environment_sub(c)} for c in configs)]
    for name in TAG_SCOPED:
        policies = resources[name]["Properties"]["Policies"]
        _scope([s for p in policies for s in p["PolicyDocument"]["Statement"]], environments)
    base = resources["LaunchRunnersPolicy"]["Properties"]
    for start in range(0, len(configs), LAUNCH_CHUNK):
        chunk = configs[start:start + LAUNCH_CHUNK]
        resources[f"RunnerConfigsLaunchPolicy{start // LAUNCH_CHUNK + 1}"] = {
            "Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "Description": "Launch the runners of configurations "
                               + ", ".join(c.id for c in chunk) + " with their launch templates.",
                "Path": copy.deepcopy(base["Path"]),
                "Roles": copy.deepcopy(base["Roles"]),
                "PolicyDocument": {"Version": "2012-10-17",
                                   "Statement": _launch_statements(base, chunk)}}}


def _launch_statements(base: dict[str, Any], configs: list[RunnerConfig]) -> list[Any]:
    """LaunchRunnersPolicy's environment, template and role statements, for `configs`."""
    statements = [copy.deepcopy(s) for s in base["PolicyDocument"]["Statement"]
                  if s["Sid"] in LAUNCH_SIDS]
    _scope(statements, [{"Fn::Sub": environment_sub(c)} for c in configs])
    templates = [{"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"
                             f"launch-template/${{{_id('RunnerLaunchTemplate', c)}}}"}
                 for c in configs]
    for statement in statements:
        if statement["Sid"] == "UseTheRunnerLaunchTemplate":
            statement["Resource"] = copy.deepcopy(templates)
        elif statement["Sid"] == "PassOnlyTheRunnerRole":
            statement["Resource"] = [{"Fn::GetAtt": [_id("RunnerRole", c), "Arn"]}
                                     for c in configs]
        if "ec2:LaunchTemplate" in statement.get("Condition", {}).get("ArnLike", {}):
            statement["Condition"]["ArnLike"]["ec2:LaunchTemplate"] = copy.deepcopy(templates)
    return statements
