"""Settings: every docs/REFERENCE.md §2 variable, its default, one error naming every problem."""

from __future__ import annotations

import pytest

from chalicelib.errors import ConfigError
from chalicelib.settings import load_settings

BASE = {
    "ENVIRONMENT": "prod",
    "LAUNCH_TEMPLATE_NAME": "prod-runner",
    "SUBNET_IDS": "subnet-a, subnet-b",
    "SSM_TOKEN_PATH": "/ghr/prod/tokens/",
    "SSM_CONFIG_PATH": "/ghr/prod/config",
    "PARAMETER_GITHUB_APP_ID_NAME": "/ghr/app/id",
    "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": "/ghr/app/key",
    "STATE_TABLE_NAME": "prod-state",
}


def problems_of(env: dict[str, str], function: str | None = "scale_up") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, function)  # type: ignore[arg-type]
    return caught.value.problems


def test_defaults_follow_the_contract() -> None:
    s = load_settings(BASE, "scale_up")
    assert s.enable_organization_runners is False
    assert s.runners_maximum_count == 3
    assert s.runner_labels == ()
    assert s.runner_group_name == "Default"
    assert s.runner_name_prefix == ""
    assert s.enable_ephemeral_runners is False
    assert s.enable_jit_config is False
    assert s.enable_job_queued_check is True
    assert s.disable_runner_autoupdate is False
    assert s.instance_types == ("m5.large",)
    assert s.instance_target_capacity_type == "spot"
    assert s.instance_allocation_strategy == "lowest-price"
    assert s.instance_max_spot_price is None
    assert s.enable_on_demand_failover_for_errors == ()
    assert s.ghes_url is None and s.ghes_ssl_verify is True
    assert s.scale_down_config == ()
    assert s.minimum_running_time_in_minutes == 5.0
    assert s.runner_boot_time_in_minutes == 5.0
    assert s.log_level == "INFO"
    assert s.runner_type == "Repo"


def test_lists_are_split_and_trimmed_and_paths_lose_trailing_slash() -> None:
    s = load_settings({**BASE, "RUNNER_LABELS": "gpu, large ,",
                       "INSTANCE_TYPES": "c5.large,m5.large"})
    assert s.subnet_ids == ("subnet-a", "subnet-b")
    assert s.runner_labels == ("gpu", "large")
    assert s.instance_types == ("c5.large", "m5.large")
    assert s.ssm_token_path == "/ghr/prod/tokens"
    assert s.default_labels == ("self-hosted", "linux", "x64", "gpu", "large")


def test_ephemeral_turns_jit_on_and_the_queued_check_off_by_default() -> None:
    s = load_settings({**BASE, "ENABLE_EPHEMERAL_RUNNERS": "true"})
    assert s.enable_jit_config is True
    assert s.enable_job_queued_check is False


def test_jit_is_only_used_with_ephemeral_runners() -> None:
    s = load_settings({**BASE, "ENABLE_JIT_CONFIG": "true"})
    assert s.enable_jit_config is False


def test_decimal_minutes_are_accepted() -> None:
    s = load_settings({**BASE, "MINIMUM_RUNNING_TIME_IN_MINUTES": "0.5",
                       "RUNNER_BOOT_TIME_IN_MINUTES": "0.25"})
    assert s.minimum_running_time_in_minutes == 0.5
    assert s.runner_boot_time_in_minutes == 0.25


def test_missing_required_variables_are_all_named_for_the_function() -> None:
    problems = problems_of({"ENVIRONMENT": "prod"}, "scale_up")
    text = " ".join(problems)
    for name in ("LAUNCH_TEMPLATE_NAME", "SUBNET_IDS", "SSM_TOKEN_PATH", "SSM_CONFIG_PATH",
                 "PARAMETER_GITHUB_APP_ID_NAME", "PARAMETER_GITHUB_APP_KEY_BASE64_NAME",
                 "STATE_TABLE_NAME"):
        assert name in text
    assert len(problems) == 7


def test_required_ness_depends_on_the_function() -> None:
    assert "SQS_URL_WEBHOOK" in " ".join(problems_of(BASE, "webhook"))
    assert "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME" in " ".join(problems_of(BASE, "webhook"))
    assert "RUNNER_OWNER" in " ".join(problems_of(BASE, "adjust_pool"))
    load_settings(BASE, "scale_down")
    load_settings({**BASE, "RUNNER_OWNER": "acme"}, "adjust_pool")


def test_every_malformed_value_is_reported_in_one_error() -> None:
    problems = problems_of({
        **BASE,
        "RUNNERS_MAXIMUM_COUNT": "lots",
        "ENABLE_EPHEMERAL_RUNNERS": "maybe",
        "MINIMUM_RUNNING_TIME_IN_MINUTES": "five",
        "ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS": "[oops",
        "INSTANCE_TARGET_CAPACITY_TYPE": "reserved",
        "INSTANCE_ALLOCATION_STRATEGY": "cheapest",
    })
    names = [p.split(":")[0] for p in problems]
    assert names == [
        "ENABLE_EPHEMERAL_RUNNERS", "RUNNERS_MAXIMUM_COUNT", "MINIMUM_RUNNING_TIME_IN_MINUTES",
        "INSTANCE_TARGET_CAPACITY_TYPE", "INSTANCE_ALLOCATION_STRATEGY",
        "ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS",
    ]
    assert "invalid JSON" in " ".join(problems)
    assert "'reserved' is not one of spot, on-demand" in " ".join(problems)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("RUNNERS_MAXIMUM_COUNT", "-2", "must be -1 (no cap) or more"),
        ("MINIMUM_RUNNING_TIME_IN_MINUTES", "-1", "must not be negative"),
        ("RUNNER_BOOT_TIME_IN_MINUTES", "0", "must be more than 0"),
        ("GHES_URL", "ghes.example.com", "expected an http:// or https:// URL"),
        ("ENABLE_ON_DEMAND_FAILOVER_FOR_ERRORS", '{"a": 1}', "expected a JSON list of strings"),
        ("REPOSITORY_ALLOW_LIST", '["a/b", 3]', "expected a JSON list of strings"),
        ("MINIMUM_RUNNING_TIME_IN_MINUTES", "nan", "finite"),
        ("LOG_LEVEL", "LOUD", "is not one of"),
    ],
)
def test_out_of_range_values_are_named(name: str, value: str, expected: str) -> None:
    problems = problems_of({**BASE, name: value})
    assert len(problems) == 1
    assert problems[0].startswith(name) and expected in problems[0]


def test_cap_of_minus_one_means_no_cap() -> None:
    assert load_settings({**BASE, "RUNNERS_MAXIMUM_COUNT": "-1"}).runners_maximum_count == -1


def test_scale_down_config_is_parsed_with_defaults() -> None:
    s = load_settings({**BASE, "SCALE_DOWN_CONFIG": '[{"cron": "* * 8-17 * * 1-5", '
                       '"timeZone": "Europe/Amsterdam", "idleCount": 2}]'})
    (window,) = s.scale_down_config
    assert window.idle_count == 2
    assert window.time_zone == "Europe/Amsterdam"
    assert window.eviction_strategy == "oldest_first"
    assert window.cron.seconds is not None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('{"cron": "* * * *", "idleCount": 1}', "expected 5 or 6 fields"),
        ('{"cron": "61 * * * *", "idleCount": 1}', "minute"),
        ('{"cron": "* * * * * *", "timeZone": "Europe/Atlantis", "idleCount": 1}',
         "unknown time zone 'Europe/Atlantis'"),
        # A folder of the time-zone database, not a zone (the read raised IsADirectoryError).
        ('{"cron": "* * * * *", "timeZone": "America", "idleCount": 1}',
         "unknown time zone 'America'"),
        ('{"cron": "* * * * *", "idleCount": -1}', "idleCount"),
        ('{"cron": "* * * * *", "idleCount": 1, "evictionStrategy": "random"}',
         "evictionStrategy"),
        ('{"idleCount": 1}', "cron: missing"),
        ('"not an object"', "expected an object"),
    ],
)
def test_invalid_idle_config_entries_are_named(entry: str, expected: str) -> None:
    problems = problems_of({**BASE, "SCALE_DOWN_CONFIG": f"[{entry}]"})
    assert len(problems) == 1
    assert problems[0].startswith("SCALE_DOWN_CONFIG: entry 0:")
    assert expected in problems[0]


def test_error_message_lists_problems_but_no_values_of_secrets() -> None:
    error = ConfigError(["A: bad", "B: worse"])
    assert str(error) == "invalid configuration: A: bad; B: worse"
