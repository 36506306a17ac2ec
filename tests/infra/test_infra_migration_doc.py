"""docs/MIGRATION.md marks every input of the Terraform module's runners configuration as
supported (naming what takes it here), replaced (with what) or not supported (with why)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from infra_support import ROOT

from infra import buildconfig
from infra.envmap import FUNCTION_ENVIRONMENT

MIGRATION = ROOT / "docs" / "MIGRATION.md"
MARKS = ("supported", "replaced", "not supported")
# The variables of the module's modules/runners/variables.tf (6.x), in its order.
RUNNERS_MODULE_INPUTS = (
    "aws_region", "vpc_id", "subnet_ids", "overrides", "tags", "prefix", "s3_runner_binaries",
    "block_device_mappings", "ebs_optimized", "instance_target_capacity_type",
    "instance_allocation_strategy", "instance_max_spot_price", "runner_os", "instance_types",
    "ami_filter", "ami_owners", "ami_id_ssm_parameter_name", "ami_kms_key_arn",
    "enable_userdata", "userdata_template", "userdata_content", "userdata_pre_install",
    "userdata_post_install", "sqs_build_queue", "enable_organization_runners",
    "github_app_parameters", "lambda_scale_down_memory_size", "scale_down_schedule_expression",
    "minimum_running_time_in_minutes", "runner_boot_time_in_minutes", "runner_labels",
    "runner_group_name", "lambda_zip", "lambda_timeout_scale_down",
    "scale_up_reserved_concurrent_executions", "lambda_scale_up_memory_size",
    "lambda_timeout_scale_up", "role_permissions_boundary", "role_path", "instance_profile_path",
    "runner_as_root", "runner_run_as", "runners_maximum_count", "runner_architecture",
    "idle_config", "logging_retention_in_days", "logging_kms_key_id", "enable_ssm_on_runners",
    "lambda_s3_bucket", "runners_lambda_s3_key", "runners_lambda_s3_object_version",
    "create_service_linked_role_spot", "aws_partition", "runner_iam_role_managed_policy_arns",
    "enable_cloudwatch_agent", "enable_managed_runner_security_group", "cloudwatch_config",
    "runner_log_files", "ghes_url", "ghes_ssl_verify", "lambda_subnet_ids",
    "lambda_security_group_ids", "key_name", "runner_additional_security_group_ids",
    "kms_key_arn", "enable_runner_detailed_monitoring", "egress_rules", "log_level",
    "runner_ec2_tags", "metadata_options", "enable_ephemeral_runners", "enable_job_queued_check",
    "pool_lambda_timeout", "pool_lambda_memory_size", "pool_runner_owner",
    "pool_lambda_reserved_concurrent_executions", "pool_config", "disable_runner_autoupdate",
    "lambda_runtime", "lambda_architecture", "enable_runner_binaries_syncer",
    "enable_user_data_debug_logging", "ssm_paths", "runner_name_prefix", "tracing_config",
    "credit_specification", "enable_jit_config", "associate_public_ipv4_address",
    "ssm_housekeeper", "enable_on_demand_failover_for_errors", "lambda_tags", "metrics",
    "job_retry",
)
TICKED = re.compile(r"`([^`]+)`")


def _tables() -> dict[str, list[list[str]]]:
    """The rows of each table under a `###` heading of "Variables and parameters", by heading."""
    text = MIGRATION.read_text()
    section = text[text.index("## Variables and parameters"):text.index("## Cutover")]
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in section.splitlines():
        if line.startswith("### "):
            heading = line[4:]
        elif line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            tables.setdefault(heading, []).append(cells)
    return tables


def _function_variables() -> set[str]:
    settings = (ROOT / "chalicelib" / "settings.py").read_text()
    return set(FUNCTION_ENVIRONMENT) | set(re.findall(r'r\.(?:get|text|raw)\("([A-Z_]+)"',
                                                      settings))


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return [row for table in _tables().values() for row in table]


def test_the_runners_table_has_one_row_per_module_input_in_its_order() -> None:
    table = _tables()["The runners module's inputs"]

    assert [TICKED.findall(row[0]) for row in table] == [[name] for name in RUNNERS_MODULE_INPUTS]
    assert len(RUNNERS_MODULE_INPUTS) == len(set(RUNNERS_MODULE_INPUTS)) == 93


def test_every_row_is_marked_and_says_what_or_why(rows: list[list[str]]) -> None:
    assert len(rows) >= 110
    for row in rows:
        assert len(row) == 4, row
        assert row[1] in MARKS, row
        assert row[2], f"{row[0]}: {row[1]} with nothing said"


def test_every_name_given_for_a_supported_input_exists(rows: list[list[str]],
                                                       stack_template: dict[str, Any]) -> None:
    known = {*stack_template["Parameters"], *_function_variables(), *buildconfig.FIELDS}
    supported = [row for row in rows if row[1] == "supported"]

    named = {name for row in supported for name in TICKED.findall(row[2])}

    assert all(TICKED.findall(row[2]) for row in supported)
    assert len(named) >= 70
    assert named <= known, sorted(named - known)


def test_the_inputs_of_issue_18_are_supported() -> None:
    status = {TICKED.findall(row[0])[0]: row[1]
              for row in _tables()["The runners module's inputs"]}

    for name in ("runner_ec2_tags", "ami_filter", "ami_owners", "block_device_mappings",
                 "egress_rules", "pool_config", "enable_runner_binaries_syncer", "kms_key_arn",
                 "tracing_config", "logging_kms_key_id", "associate_public_ipv4_address",
                 "metrics"):
        assert status[name] == "supported", name


def _multi_runner_rows() -> dict[str, list[str]]:
    """The rows of the multi-runner `runner_config` table, by key."""
    text = MIGRATION.read_text()
    header = "| `runner_config` key | status | here | notes |"
    section = text[text.index(header) + len(header):]
    return {TICKED.findall(line)[0]: [c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")}


def test_the_multi_runner_table_is_the_converters_mapping() -> None:
    from infra.runnerconfigs import LAUNCH_FIELDS, OVERRIDABLE

    known = {"launchTemplate": LAUNCH_FIELDS, "environment": OVERRIDABLE,
             "pool_config": buildconfig.FIELDS}
    from scripts.convert_multi_runner import RUNNER_CONFIG

    rows = _multi_runner_rows()

    assert list(rows) == list(RUNNER_CONFIG)
    for key, rule in RUNNER_CONFIG.items():
        status, here = rows[key][1], rows[key][2]
        assert status == ("carried over" if rule[0] != "skip" else
                          "not supported" if rule[1] == "not supported" else "deployment-wide")
        for target in TICKED.findall(here) if rule[0] != "skip" else ():
            kind, _, name = target.partition(".")
            assert (name or kind) in known.get(kind, {"runner_config"}), target
        if rule[0] == "skip":
            assert here == rule[2], key
