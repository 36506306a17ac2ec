"""One frozen settings object built from the environment (docs/REFERENCE.md §2), validated at once.

Every problem found is collected and reported together in one `ConfigError`, so an operator
fixes a deployment in one round. Which variables are required depends on the function.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from chalicelib.env_values import (
    EnvReader,
    bool_value,
    choice_value,
    comma_list_value,
    int_value,
    json_string_list_value,
    json_string_lists_value,
    json_value,
    minutes_value,
    namespace_value,
    parameter_list_value,
    url_value,
)
from chalicelib.errors import ConfigError
from chalicelib.models import CapacityType
from chalicelib.rules.idle_windows import IdleWindow, parse_idle_windows
from chalicelib.rules.job_retry import JOB_RETRY_OFF, JobRetryConfig
from chalicelib.rules.tags import parse_user_tags
from chalicelib.settings_lost_jobs import lost_jobs

FunctionName = Literal["scale_up", "scale_down", "adjust_pool", "webhook", "sync_runner_binaries",
                       "ec2_events"]

_GITHUB_APP = ("PARAMETER_GITHUB_APP_ID_NAME", "PARAMETER_GITHUB_APP_KEY_BASE64_NAME")
_LAUNCH = ("LAUNCH_TEMPLATE_NAME", "SUBNET_IDS", "SSM_TOKEN_PATH", "SSM_CONFIG_PATH")

REQUIRED: dict[str, tuple[str, ...]] = {
    "scale_up": ("ENVIRONMENT", *_LAUNCH, *_GITHUB_APP, "STATE_TABLE_NAME"),
    "adjust_pool": ("ENVIRONMENT", *_LAUNCH, *_GITHUB_APP, "RUNNER_OWNER", "STATE_TABLE_NAME"),
    "scale_down": ("ENVIRONMENT", "SSM_TOKEN_PATH", *_GITHUB_APP, "STATE_TABLE_NAME"),
    "webhook": ("ENVIRONMENT", "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME", "SQS_URL_WEBHOOK",
                "STATE_TABLE_NAME"),
    "sync_runner_binaries": ("ENVIRONMENT", "RUNNER_BINARIES_BUCKET"),
    "ec2_events": ("ENVIRONMENT", "SSM_TOKEN_PATH", *_GITHUB_APP, "STATE_TABLE_NAME"),
}

RunnerOs = Literal["linux", "windows"]
RunnerArchitecture = Literal["x64", "arm64"]
CAPACITY_TYPES = ("spot", "on-demand")
ALLOCATION_STRATEGIES = (
    "lowest-price", "diversified", "capacity-optimized", "capacity-optimized-prioritized",
    "price-capacity-optimized", "prioritized",
)
RUNNER_OSES = ("linux", "windows")
RUNNER_ARCHITECTURES = ("x64", "arm64")
GITHUB_API = "https://api.github.com"
AmiFilter = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one function; field names follow docs/REFERENCE.md §2."""

    environment: str
    enable_organization_runners: bool = False
    runners_maximum_count: int = 3
    runner_labels: tuple[str, ...] = ()
    runner_group_name: str = "Default"
    runner_name_prefix: str = ""
    enable_ephemeral_runners: bool = False
    enable_jit_config: bool = False
    enable_job_queued_check: bool = True
    disable_runner_autoupdate: bool = False
    launch_template_name: str = ""
    subnet_ids: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = ("m5.large",)
    instance_target_capacity_type: Literal["spot", "on-demand"] = "spot"
    instance_allocation_strategy: str = "lowest-price"
    instance_max_spot_price: str | None = None
    enable_on_demand_failover_for_errors: tuple[str, ...] = ()
    ami_id_ssm_parameter_name: str | None = None
    # KMS key of the registration parameters (None: SSM's default key); never KmsKeyArn.
    runner_token_kms_key_id: str | None = None
    ssm_token_path: str = ""
    ssm_config_path: str = ""
    # One name per GitHub App, the webhook's App first (docs/REFERENCE.md §10).
    parameter_github_app_id_name: tuple[str, ...] = ()
    parameter_github_app_key_base64_name: tuple[str, ...] = ()
    parameter_github_app_webhook_secret_name: str = ""
    # The secret being rotated out, accepted while this names a parameter that exists.
    parameter_github_app_webhook_secret_previous_name: str | None = None
    ghes_url: str | None = None
    ghes_ssl_verify: bool = True
    scale_down_config: tuple[IdleWindow, ...] = ()
    minimum_running_time_in_minutes: float = 5.0
    runner_boot_time_in_minutes: float = 5.0
    runner_owner: str | None = None
    sqs_url_webhook: str = ""
    log_level: str = "INFO"
    # Beyond the contract's table: optional, with defaults that keep the contract's behaviour.
    runner_os: Literal["linux", "windows"] = "linux"
    runner_architecture: Literal["x64", "arm64"] = "x64"
    repository_allow_list: tuple[str, ...] = ()
    runner_binaries_bucket: str = ""
    webhook_max_body_bytes: int = 1024 * 1024
    enable_webhook_redelivery: bool = False
    # The DynamoDB table of what must hold across containers (cap reservations, jobs and
    # deliveries handled once, bindings).
    state_table_name: str = ""
    # The runners module's inputs of issue 18 (docs/REFERENCE.md §2): user tags of instances and
    # volumes, the AMI found by filter, the binaries syncer, the metrics.
    runner_ec2_tags: tuple[tuple[str, str], ...] = ()
    ami_filter: AmiFilter = ()
    ami_owners: tuple[str, ...] = ("amazon",)
    enable_runner_binaries_syncer: bool = True
    runner_allow_prerelease_binaries: bool = False
    runner_releases_api_url: str = GITHUB_API
    enable_metrics: bool = True
    metrics_namespace: str = "GitHub Runners"
    # Lost jobs (docs/REFERENCE.md §8, §9): job retry, and re-running interrupted jobs.
    job_retry_config: JobRetryConfig = JOB_RETRY_OFF
    enable_spot_interruption_rerun: bool = True
    # The SSM parameter of several runner configurations (§6); None: one, made of these values.
    runner_configs_parameter_name: str | None = None

    @property
    def runner_type(self) -> Literal["Org", "Repo"]:
        """`ghr:Type` of the runners this deployment launches."""
        return "Org" if self.enable_organization_runners else "Repo"

    @property
    def default_labels(self) -> tuple[str, ...]:
        """The labels every runner carries: GitHub's defaults, then `RUNNER_LABELS`."""
        return ("self-hosted", self.runner_os, self.runner_architecture, *self.runner_labels)


def _idle_windows(text: str) -> tuple[IdleWindow, ...]:
    return parse_idle_windows(json_value(text))


def load_settings(env: Mapping[str, str], function: FunctionName | None = None,
                  relaxed: Collection[str] = ()) -> Settings:
    """Build and validate the settings of `function` from `env`; raise one `ConfigError`.
    `relaxed`: required names that may be missing (each runner configuration sets them)."""
    r = EnvReader(env)
    if function is not None:
        for name in REQUIRED[function]:
            if r.raw(name) is None and name not in relaxed:
                r.problems.append(f"{name}: required by {function} but not set")
    settings = Settings(
        environment=r.text("ENVIRONMENT"),
        **_runners(r),
        **_scale_down(r),
        **_launch(r),
        **_github(r),
        **_webhook(r),
        log_level=r.get(
            "LOG_LEVEL", "INFO",
            lambda t: choice_value(("DEBUG", "INFO", "WARNING", "WARN", "ERROR"))(t.upper()),
        ),
        **_binaries_and_metrics(r),
        state_table_name=r.text("STATE_TABLE_NAME"),
        runner_configs_parameter_name=r.raw("RUNNER_CONFIGS_PARAMETER_NAME"),
        **lost_jobs(r, function, _GITHUB_APP),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings


# The parts of `load_settings`, by concern; problems are reported in the order of the reads.


def _runners(r: EnvReader) -> dict[str, Any]:
    """What runners the deployment registers, and how many."""
    ephemeral = r.get("ENABLE_EPHEMERAL_RUNNERS", False, bool_value)
    maximum = r.get("RUNNERS_MAXIMUM_COUNT", 3, int_value)
    if maximum < -1:
        r.problems.append(f"RUNNERS_MAXIMUM_COUNT: must be -1 (no cap) or more, got {maximum}")
    return {
        "enable_ephemeral_runners": ephemeral,
        "runners_maximum_count": maximum,
        "enable_organization_runners": r.get("ENABLE_ORGANIZATION_RUNNERS", False, bool_value),
        "runner_labels": r.get("RUNNER_LABELS", (), comma_list_value),
        "runner_group_name": r.text("RUNNER_GROUP_NAME", "Default"),
        "runner_name_prefix": r.text("RUNNER_NAME_PREFIX"),
        # JIT configs register single-use runners, so they only make sense for ephemeral ones.
        # Read even when off, so that a configuration may name it (runner_configs.known_variables).
        "enable_jit_config": r.get("ENABLE_JIT_CONFIG", ephemeral, bool_value) and ephemeral,
        "enable_job_queued_check": r.get("ENABLE_JOB_QUEUED_CHECK", not ephemeral, bool_value),
        "disable_runner_autoupdate": r.get("DISABLE_RUNNER_AUTOUPDATE", False, bool_value),
        "runner_os": cast(RunnerOs, r.get("RUNNER_OS", "linux", choice_value(RUNNER_OSES))),
        "runner_architecture": cast(RunnerArchitecture, r.get(
            "RUNNER_ARCHITECTURE", "x64", choice_value(RUNNER_ARCHITECTURES)
        )),
        "runner_owner": r.raw("RUNNER_OWNER"),
    }


def _scale_down(r: EnvReader) -> dict[str, Any]:
    """When runners are idle, orphans or still booting, and how many idle ones stay."""
    minimum_running = r.get("MINIMUM_RUNNING_TIME_IN_MINUTES", 5.0, minutes_value)
    if minimum_running < 0:
        r.problems.append("MINIMUM_RUNNING_TIME_IN_MINUTES: must not be negative")
    boot_time = r.get("RUNNER_BOOT_TIME_IN_MINUTES", 5.0, minutes_value)
    if boot_time <= 0:
        r.problems.append("RUNNER_BOOT_TIME_IN_MINUTES: must be more than 0")
    return {
        "minimum_running_time_in_minutes": minimum_running,
        "runner_boot_time_in_minutes": boot_time,
        "scale_down_config": r.get("SCALE_DOWN_CONFIG", (), _idle_windows),
    }


def _launch(r: EnvReader) -> dict[str, Any]:
    """How instances are launched, and where their tokens and configuration go."""
    return {
        "launch_template_name": r.text("LAUNCH_TEMPLATE_NAME"),
        "subnet_ids": r.get("SUBNET_IDS", (), comma_list_value),
        "instance_types": r.get("INSTANCE_TYPES", ("m5.large",), comma_list_value) or ("m5.large",),
        "instance_target_capacity_type": cast(CapacityType, r.get(
            "INSTANCE_TARGET_CAPACITY_TYPE", "spot", choice_value(CAPACITY_TYPES)
        )),
        "instance_allocation_strategy": r.get(
            "INSTANCE_ALLOCATION_STRATEGY", "lowest-price", choice_value(ALLOCATION_STRATEGIES)
        ),
        "instance_max_spot_price": r.raw("INSTANCE_MAX_SPOT_PRICE"),
        "enable_on_demand_failover_for_errors": r.get(
            "ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS", (), json_string_list_value
        ),
        "ami_id_ssm_parameter_name": r.raw("AMI_ID_SSM_PARAMETER_NAME"),
        "ami_filter": _ami_filter(r.get("AMI_FILTER", (), json_string_lists_value)),
        "ami_owners": r.get("AMI_OWNERS", ("amazon",), comma_list_value) or ("amazon",),
        "runner_ec2_tags": r.get("RUNNER_EC2_TAGS", (), parse_user_tags),
        "ssm_token_path": r.text("SSM_TOKEN_PATH").rstrip("/"),
        "ssm_config_path": r.text("SSM_CONFIG_PATH").rstrip("/"),
        "runner_token_kms_key_id": r.raw("RUNNER_TOKEN_KMS_KEY_ID"),
    }


def _github(r: EnvReader) -> dict[str, Any]:
    """Which GitHub, and where the App's credentials are kept."""
    ghes_url = r.raw("GHES_URL")
    if ghes_url is not None and not ghes_url.startswith(("https://", "http://")):
        r.problems.append(f"GHES_URL: expected an http:// or https:// URL, got {ghes_url!r}")
    ids = r.get("PARAMETER_GITHUB_APP_ID_NAME", (), parameter_list_value)
    keys = r.get("PARAMETER_GITHUB_APP_KEY_BASE64_NAME", (), parameter_list_value)
    if ids and keys and len(ids) != len(keys):
        r.problems.append(
            "PARAMETER_GITHUB_APP_ID_NAME and PARAMETER_GITHUB_APP_KEY_BASE64_NAME: one key "
            f"parameter per App id parameter, got {len(ids)} ids and {len(keys)} keys")
    return {
        "ghes_url": ghes_url.rstrip("/") if ghes_url else None,
        "ghes_ssl_verify": r.get("GHES_SSL_VERIFY", True, bool_value),
        "parameter_github_app_id_name": ids,
        "parameter_github_app_key_base64_name": keys,
        "parameter_github_app_webhook_secret_name": r.text(
            "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME"
        ),
        "parameter_github_app_webhook_secret_previous_name": r.raw(
            "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME"
        ),
    }


def _webhook(r: EnvReader) -> dict[str, Any]:
    """What the webhook accepts, and where it sends jobs."""
    max_body = r.get("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024, int_value)
    if max_body < 1:
        r.problems.append("WEBHOOK_MAX_BODY_BYTES: must be positive")
    return {
        "webhook_max_body_bytes": max_body,
        "repository_allow_list": r.get("REPOSITORY_ALLOW_LIST", (), json_string_list_value),
        "enable_webhook_redelivery": r.get("ENABLE_WEBHOOK_REDELIVERY", False, bool_value),
        "sqs_url_webhook": r.text("SQS_URL_WEBHOOK"),
    }


def _ami_filter(given: AmiFilter) -> AmiFilter:
    """The filter as given, plus `state=available` unless it names a state (the module's rule)."""
    if not given or any(name == "state" for name, _ in given):
        return given
    return (*given, ("state", ("available",)))


def _binaries_and_metrics(r: EnvReader) -> dict[str, Any]:
    """Where runner releases come from and are cached, and where metrics go."""
    return {
        "runner_binaries_bucket": r.text("RUNNER_BINARIES_BUCKET"),
        "enable_runner_binaries_syncer": r.get("ENABLE_RUNNER_BINARIES_SYNCER", True, bool_value),
        "runner_allow_prerelease_binaries": r.get("RUNNER_ALLOW_PRERELEASE_BINARIES", False,
                                                  bool_value),
        "runner_releases_api_url": r.get("RUNNER_RELEASES_API_URL", GITHUB_API, url_value),
        "enable_metrics": r.get("ENABLE_METRICS", True, bool_value),
        "metrics_namespace": r.get("METRICS_NAMESPACE", "GitHub Runners", namespace_value),
    }
