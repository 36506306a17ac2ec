"""The functions' environment (docs/REFERENCE.md §2) in terms of the stack: one table, two
readers.

`infra/build.py` turns it into CloudFormation values for the packaged template, and
`infra/configure_stage.py` into plain values from a deployed stack's parameters and outputs,
so `chalice deploy` and the packaged template configure the functions identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """The value of a template parameter (a list parameter is joined with commas)."""

    name: str
    is_list: bool = False


@dataclass(frozen=True)
class Output:
    """The value of one of the stack's outputs."""

    name: str


Source = Param | Output

FUNCTION_ENVIRONMENT: dict[str, Source] = {
    "ENVIRONMENT": Param("Prefix"),
    "ENABLE_ORGANIZATION_RUNNERS": Param("EnableOrganizationRunners"),
    "RUNNERS_MAXIMUM_COUNT": Param("RunnersMaximumCount"),
    "RUNNER_LABELS": Param("RunnerExtraLabels"),
    "RUNNER_GROUP_NAME": Param("RunnerGroupName"),
    "RUNNER_NAME_PREFIX": Param("RunnerNamePrefix"),
    "ENABLE_EPHEMERAL_RUNNERS": Param("EnableEphemeralRunners"),
    "ENABLE_JIT_CONFIG": Param("EnableJitConfig"),
    "ENABLE_JOB_QUEUED_CHECK": Param("EnableJobQueuedCheck"),
    "DISABLE_RUNNER_AUTOUPDATE": Param("DisableRunnerAutoupdate"),
    "LAUNCH_TEMPLATE_NAME": Output("LaunchTemplateName"),
    "SUBNET_IDS": Param("SubnetIds", is_list=True),
    "INSTANCE_TYPES": Param("InstanceTypes"),
    "INSTANCE_TARGET_CAPACITY_TYPE": Param("InstanceTargetCapacityType"),
    "INSTANCE_ALLOCATION_STRATEGY": Param("InstanceAllocationStrategy"),
    "INSTANCE_MAX_SPOT_PRICE": Param("InstanceMaxSpotPrice"),
    "ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS": Param("EnableOnDemandFailoverForErrors"),
    "AMI_ID_SSM_PARAMETER_NAME": Param("AmiSsmParameterName"),
    "AMI_FILTER": Param("AmiFilter"),
    "AMI_OWNERS": Param("AmiOwners"),
    "SSM_TOKEN_PATH": Output("SsmTokenPath"),
    "SSM_CONFIG_PATH": Output("SsmConfigPath"),
    "PARAMETER_GITHUB_APP_ID_NAME": Output("GitHubAppIdParameterName"),
    "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": Output("GitHubAppKeyParameterName"),
    "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME": Output("GitHubAppWebhookSecretParameterName"),
    "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME":
        Output("GitHubAppWebhookSecretPreviousParameterName"),
    "GHES_URL": Param("GhesUrl"),
    "GHES_SSL_VERIFY": Param("GhesSslVerify"),
    "SCALE_DOWN_CONFIG": Param("IdleConfig"),
    "MINIMUM_RUNNING_TIME_IN_MINUTES": Param("MinimumRunningTimeInMinutes"),
    "RUNNER_BOOT_TIME_IN_MINUTES": Param("RunnerBootTimeInMinutes"),
    "RUNNER_OWNER": Param("PoolRunnerOwner"),
    "SQS_URL_WEBHOOK": Output("BuildQueueUrl"),
    "BUILD_QUEUE_NAME": Output("BuildQueueName"),
    "LOG_LEVEL": Param("LogLevel"),
    "RUNNER_OS": Param("RunnerOs"),
    "RUNNER_ARCHITECTURE": Param("RunnerArchitecture"),
    "REPOSITORY_ALLOW_LIST": Param("RepositoryAllowList"),
    "ENABLE_WEBHOOK_REDELIVERY": Param("EnableWebhookRedelivery"),
    "JOB_RETRY_CONFIG": Param("JobRetryConfig"),
    "ENABLE_SPOT_INTERRUPTION_RERUN": Param("EnableSpotInterruptionRerun"),
    "RUNNER_BINARIES_BUCKET": Output("RunnerBinariesBucketName"),
    "STATE_TABLE_NAME": Output("StateTableName"),
    # Read by the functions once issue 13 item 7 lands: the KeyId of the token parameters.
    "RUNNER_TOKEN_KMS_KEY_ID": Param("RunnerTokenKmsKeyArn"),
    "RUNNER_EC2_TAGS": Param("RunnerEc2Tags"),
    "ENABLE_RUNNER_BINARIES_SYNCER": Param("EnableRunnerBinariesSyncer"),
    "RUNNER_ALLOW_PRERELEASE_BINARIES": Param("RunnerAllowPrereleaseBinaries"),
    "RUNNER_RELEASES_API_URL": Param("RunnerReleasesApiUrl"),
    "ENABLE_METRICS": Param("EnableMetrics"),
    "METRICS_NAMESPACE": Param("MetricsNamespace"),
}


# Given only by a stack that has the output: a template built with --runner-configs
# (infra/runnerconfigs.py). Without it the functions run today's single configuration.
OPTIONAL_ENVIRONMENT: dict[str, Output] = {
    "RUNNER_CONFIGS_PARAMETER_NAME": Output("RunnerConfigsParameterName"),
}


def _sources(outputs: Mapping[str, Any]) -> dict[str, Source]:
    optional = {name: source for name, source in OPTIONAL_ENVIRONMENT.items()
                if source.name in outputs}
    return {**FUNCTION_ENVIRONMENT, **optional}


def cloudformation_environment(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The environment as CloudFormation values; `outputs` are the template's Outputs section."""
    values: dict[str, Any] = {}
    for name, source in _sources(outputs).items():
        if isinstance(source, Output):
            values[name] = outputs[source.name]["Value"]
        elif source.is_list:
            values[name] = {"Fn::Join": [",", {"Ref": source.name}]}
        else:
            values[name] = {"Ref": source.name}
    return values


def stack_environment(parameters: Mapping[str, str], outputs: Mapping[str, str]) -> dict[str, str]:
    """The environment as plain strings, from a deployed stack's parameters and outputs."""
    values: dict[str, str] = {}
    for name, source in _sources(outputs).items():
        values[name] = (outputs if isinstance(source, Output) else parameters)[source.name]
    return values
