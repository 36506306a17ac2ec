"""Registration parameters are encrypted with RUNNER_TOKEN_KMS_KEY_ID when it is set (issue 13
item 7; docs/REFERENCE.md §2 and §4): the key the runners may decrypt with, never KmsKeyArn."""

from __future__ import annotations

from typing import Any

import pytest
from scale_down_support import invoke_adjust_pool
from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up

__all__ = ["scale_up"]


def token_keys(stack: Any) -> dict[str, str]:
    """The KeyId of each registration parameter, as SSM describes it."""
    answer = stack.boto("ssm").describe_parameters(ParameterFilters=[
        {"Key": "Path", "Option": "Recursive", "Values": [stack.deployment.token_path]}])
    return {p["Name"]: p.get("KeyId", "") for p in answer["Parameters"]}


def runner_key(stack: Any) -> str:
    return str(stack.boto("kms").create_key(Description="runner tokens")["KeyMetadata"]["Arn"])


@pytest.mark.parametrize("ephemeral", ["false", "true"])
def test_scale_up_encrypts_registration_parameters_with_the_runner_token_key(
        scale_up: ScaleUpHarness, ephemeral: str) -> None:
    stack = scale_up.stack
    key = runner_key(stack)
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS=ephemeral,
                       RUNNER_TOKEN_KMS_KEY_ID=key, KMS_KEY_ARN="arn:aws:kms:not-this-one")

    outcome = scale_up.invoke(*(job_body(stack.github.add_job(ORG, "app", ["self-hosted"]))
                                for _ in range(2)))

    assert outcome.failures == []
    keys = token_keys(stack)
    assert len(keys) == 2
    assert set(keys.values()) == {key}


def test_a_runner_configuration_encrypts_with_its_own_runner_token_key(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each configuration's runner role may decrypt only its own key (docs/REFERENCE.md §6)."""
    from multi_runner_support import config, use_configs

    stack = scale_up.stack
    key = runner_key(stack)
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true")
    use_configs(stack, monkeypatch, [config("gpu", RUNNER_TOKEN_KMS_KEY_ID=key)])

    outcome = scale_up.invoke(job_body(stack.github.add_job(ORG, "app", ["self-hosted"])))

    assert outcome.failures == []
    assert list(token_keys(stack).values()) == [key]


def test_without_a_runner_token_key_parameters_use_the_default_key(
        scale_up: ScaleUpHarness) -> None:
    stack = scale_up.stack
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true")

    scale_up.invoke(job_body(stack.github.add_job(ORG, "app", ["self-hosted"])))

    [key] = token_keys(stack).values()
    assert key == "alias/aws/ssm"


def test_adjust_pool_encrypts_registration_parameters_with_the_runner_token_key(
        stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    key = runner_key(stack)
    for name, value in {"RUNNER_OWNER": ORG, "RUNNER_TOKEN_KMS_KEY_ID": key,
                        "ENABLE_ORGANIZATION_RUNNERS": "true"}.items():
        monkeypatch.setenv(name, value)
    stack.github.add_installation(ORG)

    invoke_adjust_pool(2)

    assert set(token_keys(stack).values()) == {key}
    assert len(token_keys(stack)) == 2
