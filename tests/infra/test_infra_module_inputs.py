"""The runners module's inputs of issue 18 that the functions read: each a template parameter
passed as its variable, with the module's default, and what the template does with it."""

from __future__ import annotations

from typing import Any

import pytest
from infra_support import statements

from chalicelib.settings import load_settings
from infra.envmap import FUNCTION_ENVIRONMENT, Param

PARAMETERS = {
    "RUNNER_EC2_TAGS": ("RunnerEc2Tags", "{}"),
    "AMI_FILTER": ("AmiFilter", ""),
    "AMI_OWNERS": ("AmiOwners", "amazon"),
    "ENABLE_RUNNER_BINARIES_SYNCER": ("EnableRunnerBinariesSyncer", "true"),
    "RUNNER_ALLOW_PRERELEASE_BINARIES": ("RunnerAllowPrereleaseBinaries", "false"),
    "RUNNER_RELEASES_API_URL": ("RunnerReleasesApiUrl", "https://api.github.com"),
    "ENABLE_METRICS": ("EnableMetrics", "true"),
    "METRICS_NAMESPACE": ("MetricsNamespace", "GitHub Runners"),
}


@pytest.mark.parametrize("variable", sorted(PARAMETERS))
def test_each_input_is_a_parameter_passed_to_the_functions(
        stack_template: dict[str, Any], variable: str) -> None:
    name, default = PARAMETERS[variable]

    assert FUNCTION_ENVIRONMENT[variable] == Param(name)
    assert stack_template["Parameters"][name]["Default"] == default


def test_the_parameter_defaults_are_the_functions_defaults(stack_template: dict[str, Any]) -> None:
    env = {variable: str(stack_template["Parameters"][name]["Default"])
           for variable, (name, _) in PARAMETERS.items()}

    assert load_settings({"ENVIRONMENT": "dev", **env}) == load_settings({"ENVIRONMENT": "dev"})


def test_with_the_syncer_off_its_schedule_is_disabled_and_instances_skip_the_bucket(
        merge_template: dict[str, Any]) -> None:
    resources = merge_template["Resources"]
    assert merge_template["Conditions"]["RunnerBinariesSyncerEnabled"] == {
        "Fn::Equals": [{"Ref": "EnableRunnerBinariesSyncer"}, "true"]}

    schedule = resources["SyncRunnerBinaries"]["Properties"]["Events"][
        "SyncRunnerBinariesEvent"]["Properties"]
    uri = resources["ConfigRunnerBinaries"]["Properties"]["Value"]["Fn::If"]

    assert schedule["State"] == {"Fn::If": ["RunnerBinariesSyncerEnabled", "ENABLED", "DISABLED"]}
    assert uri[0] == "RunnerBinariesSyncerEnabled" and uri[2] == "none"


def test_the_syncer_no_longer_reads_the_github_app(stack_template: dict[str, Any]) -> None:
    roles = stack_template["Resources"]["GitHubAppReadPolicy"]["Properties"]["Roles"]

    assert {"Ref": "SyncerRole"} not in roles
    assert {"Ref": "ScaleUpRole"} in roles and {"Ref": "PoolRole"} in roles


def test_scale_up_and_the_pool_may_describe_images(stack_template: dict[str, Any]) -> None:
    policy = stack_template["Resources"]["LaunchRunnersPolicy"]["Properties"]
    found = statements(stack_template, "LaunchRunnersPolicy")["CountRunners"]

    assert "ec2:DescribeImages" in found["Action"] and found["Resource"] == "*"
    assert policy["Roles"] == [{"Ref": "ScaleUpRole"}, {"Ref": "PoolRole"}]
