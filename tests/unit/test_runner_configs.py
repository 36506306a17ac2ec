"""Several runner configurations (docs/REFERENCE.md §6): the list read over the environment,
validated as the settings are, every problem named in one error; and its re-reading."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import ConfigError, RetryableError
from chalicelib.rules.matching import default_matcher
from chalicelib.runner_configs import (
    known_variables,
    load_top_settings,
    parse_runner_configs,
    single,
)
from chalicelib.services.runner_configs import RECHECK_SECONDS, RunnerConfigSource
from chalicelib.settings import load_settings

PARAMETER = "/ghr/prod/runner-configs"
BASE = {
    "ENVIRONMENT": "prod",
    "LAUNCH_TEMPLATE_NAME": "prod-runner",
    "SUBNET_IDS": "subnet-a,subnet-b",
    "SSM_TOKEN_PATH": "/ghr/prod/tokens",
    "SSM_CONFIG_PATH": "/ghr/prod/config",
    "PARAMETER_GITHUB_APP_ID_NAME": "/ghr/app/id",
    "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": "/ghr/app/key",
    "STATE_TABLE_NAME": "prod-state",
    "RUNNER_CONFIGS_PARAMETER_NAME": PARAMETER,
}
LINUX: dict[str, Any] = {"id": "linux-x64",
         "matcherConfig": {"labelMatchers": [["self-hosted", "linux", "x64"]],
                           "exactMatch": True, "priority": 10},
         "environment": {"LAUNCH_TEMPLATE_NAME": "ci-linux-x64",
                         "INSTANCE_TYPES": "m7i.large,m6i.large",
                         "RUNNERS_MAXIMUM_COUNT": "50", "RUNNER_LABELS": "linux-x64"}}
GPU: dict[str, Any] = {"id": "gpu",
       "matcherConfig": {"labelMatchers": [["self-hosted", "linux", "gpu"]],
                         "bidirectionalLabelMatch": True},
       "environment": {"LAUNCH_TEMPLATE_NAME": "ci-gpu", "INSTANCE_TYPES": "g5.xlarge",
                       "INSTANCE_TARGET_CAPACITY_TYPE": "on-demand",
                       "ENABLE_EPHEMERAL_RUNNERS": "true"}}


def parse(entries: Any, env: dict[str, str] | None = None, function: Any = "scale_up") -> Any:
    env = env if env is not None else BASE
    return parse_runner_configs(json.dumps(entries), env, function,
                                load_top_settings(env, function))


def problems_of(entries: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(entries, env)
    return caught.value.problems


def test_each_configuration_is_the_environment_overlaid_with_its_own_values() -> None:
    configs = parse([LINUX, GPU])
    linux, gpu = configs.configs
    assert linux.settings.launch_template_name == "ci-linux-x64"
    assert linux.settings.runners_maximum_count == 50
    assert linux.settings.subnet_ids == ("subnet-a", "subnet-b")  # from the top level
    assert gpu.settings.instance_target_capacity_type == "on-demand"
    # Derived defaults follow the merged values: JIT on and no queued check when ephemeral.
    assert gpu.settings.enable_jit_config and not gpu.settings.enable_job_queued_check
    assert not linux.settings.enable_jit_config and linux.settings.enable_job_queued_check
    assert gpu.settings.runners_maximum_count == 3
    assert linux.matcher.exact and linux.matcher.priority == 10
    assert gpu.matcher.bidirectional and gpu.matcher.priority == 999


def test_a_configurations_environment_defaults_to_the_deployments_and_its_id() -> None:
    configs = parse([LINUX, GPU, {**GPU, "id": "gpu-big",
                                  "environment": {**GPU["environment"],
                                                  "ENVIRONMENT": "big-gpus"}}])
    assert [c.settings.environment for c in configs.configs] == [
        "prod-linux-x64", "prod-gpu", "big-gpus"]
    # Scale-down covers the top-level environment too (instances from before the list).
    assert configs.environments == ("prod-linux-x64", "prod-gpu", "big-gpus", "prod")
    assert configs.scope_for("prod") is configs.top
    assert configs.first.id == "linux-x64" and configs.get(None) is configs.first
    assert configs.get("gpu") is configs.configs[1] and configs.get("nope") is None


def test_without_matcher_config_a_configuration_takes_its_own_labels_exactly() -> None:
    [config] = parse([{"id": "plain", "environment": {"RUNNER_LABELS": "big"}}]).configs
    assert config.matcher == default_matcher(("self-hosted", "linux", "x64", "big"))


def test_a_top_level_value_every_configuration_sets_need_not_be_set() -> None:
    env = {k: v for k, v in BASE.items() if k != "LAUNCH_TEMPLATE_NAME"}
    assert len(parse([LINUX, GPU], env).configs) == 2
    # One that does not set it is named, by its id.
    problems = problems_of([LINUX, {"id": "bare"}], env)
    assert problems == [f"RUNNER_CONFIGS_PARAMETER_NAME ({PARAMETER}): entry 2 (bare): "
                        "LAUNCH_TEMPLATE_NAME: required by scale_up but not set"]


def test_a_bad_list_is_one_error_naming_every_problem() -> None:
    problems = problems_of([
        LINUX,
        {**GPU, "id": "linux-x64"},
        {"id": "Bad_Id", "environment": {"GHES_URL": "https://x", "NO_SUCH_VARIABLE": "1",
                                         "RUNNERS_MAXIMUM_COUNT": 5,
                                         "INSTANCE_TARGET_CAPACITY_TYPE": "cheap"}},
        {"id": "m", "matcherConfig": {"labelMatchers": [], "exactMatch": "yes", "priority": -1,
                                      "colour": "red"}},
        {"id": "e1", "environment": {"ENVIRONMENT": "same"}},
        {"id": "e2", "environment": {"ENVIRONMENT": "same"}},
        "not an object",
    ])
    text = "\n".join(problems)
    assert all(p.startswith(f"RUNNER_CONFIGS_PARAMETER_NAME ({PARAMETER}): ") for p in problems)
    for expected in (
        "entry 3: id: expected 1 to 32 of a-z, 0-9 and -, got 'Bad_Id'",
        "entry 3: environment.GHES_URL: not overridable per configuration",
        "entry 3: environment.NO_SUCH_VARIABLE: unknown variable",
        "entry 3: environment.RUNNERS_MAXIMUM_COUNT: expected a string, got int",
        "entry 3: INSTANCE_TARGET_CAPACITY_TYPE: 'cheap' is not one of spot, on-demand",
        "entry 4 (m): matcherConfig: unknown key 'colour'",
        "entry 4 (m): matcherConfig.labelMatchers: expected a non-empty list",
        "entry 4 (m): matcherConfig.exactMatch: expected true or false",
        "entry 4 (m): matcherConfig.priority: expected a non-negative integer, got -1",
        "entry 7: expected an object",
        "id must be unique, repeated: linux-x64",
        "ENVIRONMENT must be unique, repeated: prod-linux-x64, same",
    ):
        assert expected in text, expected


@pytest.mark.parametrize("text", ["{not json", "{}", "[]"])
def test_a_list_that_is_not_a_list_is_named(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_runner_configs(text, BASE, "scale_up", load_top_settings(BASE, "scale_up"))
    assert caught.value.problems[0].startswith(f"RUNNER_CONFIGS_PARAMETER_NAME ({PARAMETER}): ")


def test_every_non_overridable_variable_is_refused() -> None:
    names = ["PARAMETER_GITHUB_APP_ID_NAME", "PARAMETER_GITHUB_APP_KEY_BASE64_NAME",
             "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME", "GHES_URL", "GHES_SSL_VERIFY",
             "SQS_URL_WEBHOOK", "LOG_LEVEL", "STATE_TABLE_NAME",
             "RUNNER_CONFIGS_PARAMETER_NAME"]
    problems = problems_of([{"id": "a", "environment": dict.fromkeys(names, "x")}])
    assert len(problems) == len(names)
    assert all("not overridable per configuration" in p for p in problems)


def test_the_variables_a_configuration_may_name_are_the_ones_the_settings_read() -> None:
    assert {"RUNNERS_MAXIMUM_COUNT", "SCALE_DOWN_CONFIG", "JOB_RETRY_CONFIG",
            "RUNNER_OS", "AMI_FILTER", "RUNNER_OWNER", "ENABLE_JIT_CONFIG"} <= known_variables()
    assert "AWS_REGION" not in known_variables()


def test_a_configuration_may_turn_jit_configs_off_or_on() -> None:
    on, off = parse([{**GPU, "id": "on"},
                     {**GPU, "id": "off", "environment": {**GPU["environment"],
                                                          "ENABLE_JIT_CONFIG": "false"}}]).configs
    assert on.settings.enable_jit_config and not off.settings.enable_jit_config


def test_without_a_list_there_is_one_configuration_default_of_the_environment() -> None:
    env = {k: v for k, v in BASE.items() if k != "RUNNER_CONFIGS_PARAMETER_NAME"}
    settings = load_settings(env, "scale_up")
    configs = single(settings)
    assert [c.id for c in configs.configs] == ["default"] and not configs.from_list
    assert configs.scopes == (settings,) and configs.environments == ("prod",)
    # The top-level required values stay required without a list.
    with pytest.raises(ConfigError):
        load_top_settings({k: v for k, v in env.items() if k != "SUBNET_IDS"}, "scale_up")


class _Ssm:
    def __init__(self, entries: list[Any]) -> None:
        self.value, self.version, self.calls = json.dumps(entries), 1, 0
        self.failing = False

    def get_versioned(self, name: str) -> tuple[str, int] | None:
        self.calls += 1
        if self.failing:
            raise RetryableError("ssm GetParameter: ThrottlingException")
        return (self.value, self.version) if name == PARAMETER else None


def test_the_list_is_looked_at_again_at_most_once_a_minute_and_parsed_when_it_changed() -> None:
    ssm, now = _Ssm([LINUX]), [0.0]
    source = RunnerConfigSource(load_top_settings(BASE, "scale_up"), BASE, "scale_up",
                                ssm, clock=lambda: now[0])  # type: ignore[arg-type]
    first = source.get()
    assert [c.id for c in first.configs] == ["linux-x64"]
    now[0] = RECHECK_SECONDS - 1
    assert source.get() is first and ssm.calls == 1
    now[0] = RECHECK_SECONDS + 1
    assert source.get() is first and ssm.calls == 2  # same version: not parsed again
    ssm.value, ssm.version = json.dumps([LINUX, GPU]), 2
    assert [c.id for c in source.get(fresh=True).configs] == ["linux-x64", "gpu"]
    assert ssm.calls == 3


def test_a_bad_new_list_fails_every_call_and_is_looked_at_again_only_after_a_minute() -> None:
    ssm, now = _Ssm([LINUX]), [0.0]
    source = RunnerConfigSource(load_top_settings(BASE, "scale_up"), BASE, "scale_up",
                                ssm, clock=lambda: now[0])  # type: ignore[arg-type]
    source.get()
    ssm.value, ssm.version = json.dumps([LINUX, LINUX]), 2  # duplicate ids
    now[0] = RECHECK_SECONDS + 1
    for _ in range(3):  # the bad list fails each call, read once
        with pytest.raises(ConfigError, match="id must be unique"):
            source.get()
    assert ssm.calls == 2
    ssm.value, ssm.version = json.dumps([GPU]), 3
    now[0] = 2 * RECHECK_SECONDS + 2
    assert [c.id for c in source.get().configs] == ["gpu"] and ssm.calls == 3


def test_a_failing_ssm_keeps_the_list_read_before_but_not_a_first_or_fresh_read() -> None:
    ssm, now = _Ssm([LINUX]), [0.0]
    source = RunnerConfigSource(load_top_settings(BASE, "scale_up"), BASE, "scale_up",
                                ssm, clock=lambda: now[0])  # type: ignore[arg-type]
    ssm.failing = True
    with pytest.raises(RetryableError):
        source.get()
    ssm.failing = False
    first = source.get()
    ssm.failing, now[0] = True, RECHECK_SECONDS + 1
    assert source.get() is first
    with pytest.raises(RetryableError):
        source.get(fresh=True)  # an unknown id asks SSM itself: its error is the answer


def test_a_missing_parameter_is_a_configuration_error() -> None:
    env = {**BASE, "RUNNER_CONFIGS_PARAMETER_NAME": "/elsewhere"}
    source = RunnerConfigSource(load_top_settings(env, "scale_up"), env, "scale_up",
                                _Ssm([LINUX]))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="/elsewhere does not exist"):
        source.get()
