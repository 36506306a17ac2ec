"""Installation tokens limited to what the function needs (RELIABILITY R-AUTH-05), and what
happens when GitHub will not give or honour that limit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from github_client_support import ORG, ManualClock

from chalicelib.aws.ssm import Ssm
from chalicelib.github.client import GitHubClient
from chalicelib.github.http import GitHubForbidden
from chalicelib.rules.permissions import token_permissions
from chalicelib.settings import load_settings
from chalicelib.wiring import github_config
from devstack.github_records import APP_PERMISSIONS

TOKENS_ROUTE = "POST /app/installations/{installation_id}/access_tokens"


def client_with(stack: Any, clock: ManualClock, permissions: dict[str, str] | None,
                **env: str) -> GitHubClient:
    settings = load_settings(stack.env(ENABLE_ORGANIZATION_RUNNERS="true", **env), "scale_up")
    config = replace(github_config(settings, "scale_up"), permissions=permissions)
    return GitHubClient(config, Ssm(stack.boto("ssm")), clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize(("function", "env", "expected"), [
    ("scale_up", {"ENABLE_ORGANIZATION_RUNNERS": "true"},
     {"organization_self_hosted_runners": "write", "actions": "read"}),
    ("scale_up", {"ENABLE_ORGANIZATION_RUNNERS": "false"},
     {"administration": "write", "actions": "read"}),
    ("scale_up", {"ENABLE_ORGANIZATION_RUNNERS": "true", "ENABLE_JOB_QUEUED_CHECK": "false"},
     {"organization_self_hosted_runners": "write"}),
    # Job retry asks GitHub about retried jobs whatever the queued check says (§8).
    ("scale_up", {"ENABLE_ORGANIZATION_RUNNERS": "true", "ENABLE_JOB_QUEUED_CHECK": "false",
                  "JOB_RETRY_CONFIG": "{}"},
     {"organization_self_hosted_runners": "write", "actions": "read"}),
    # Scale-down retries the re-runs of interrupted jobs (§9), on by default.
    ("scale_down", {"ENABLE_ORGANIZATION_RUNNERS": "true"},
     {"organization_self_hosted_runners": "write", "actions": "write"}),
    ("scale_down", {"ENABLE_ORGANIZATION_RUNNERS": "false",
                    "ENABLE_SPOT_INTERRUPTION_RERUN": "false"}, {"administration": "write"}),
    ("webhook", {}, {"actions": "write"}),
    ("webhook", {"ENABLE_SPOT_INTERRUPTION_RERUN": "false"}, {}),
    ("ec2_events", {"ENABLE_ORGANIZATION_RUNNERS": "true"},
     {"organization_self_hosted_runners": "write"}),
    ("adjust_pool", {"ENABLE_ORGANIZATION_RUNNERS": "false", "RUNNER_OWNER": "acme"},
     {"organization_self_hosted_runners": "write"}),
])
def test_each_function_asks_for_what_it_calls(
    stack: Any, function: str, env: dict[str, str], expected: dict[str, str]
) -> None:
    settings = load_settings(stack.env(**env), function)  # type: ignore[arg-type]
    assert token_permissions(settings, function) == expected


def test_a_minted_token_carries_only_the_permissions_asked(
    stack: Any, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    client = client_with(stack, clock, {"organization_self_hosted_runners": "write"})

    client.registration_token(ORG, "Org")

    token = client.installation_token(ORG, "Org")
    assert stack.github.token_permissions(token.token) == {
        "metadata": "read", "organization_self_hosted_runners": "write"}


def test_permissions_the_installation_lacks_then_an_unscoped_token(
    stack: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The App was installed without actions:read, and the queued check asks for it.
    stack.github.add_installation(
        ORG, permissions={"metadata": "read", "organization_self_hosted_runners": "write"})
    stack.github.add_installation("beta")
    client = client_with(stack, clock, {"organization_self_hosted_runners": "write",
                                        "actions": "read"})

    client.registration_token(ORG, "Org")
    client.registration_token("beta", "Org")

    assert "github token permissions not granted; minting unscoped" in caplog.text
    assert stack.github.count(route=TOKENS_ROUTE) == 3  # refused, unscoped; beta unscoped
    # Scoping is off for the container's life: a later owner's token is unscoped at once.
    stack.github.add_installation("gamma")
    assert stack.github.token_permissions(client.installation_token("gamma", "Org").token) == {
        **APP_PERMISSIONS}
    assert stack.github.count(route=TOKENS_ROUTE) == 4


def test_a_token_too_narrow_for_a_call_is_replaced_by_an_unscoped_one_once(
    stack: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Org runners left over after the deployment moved to repository runners.
    stack.github.add_installation(ORG)
    client = client_with(stack, clock, {"administration": "write"})

    assert client.list_runners(ORG, "Org") == []
    assert client.list_runners(ORG, "Org") == []

    assert "github token permissions too narrow; minting unscoped" in caplog.text
    assert stack.github.count(route=TOKENS_ROUTE) == 2
    assert stack.github.count(route="GET /orgs/{org}/actions/runners") == 3  # 403, then 2 x 200


def test_without_a_limit_a_403_is_an_error(stack: Any, clock: ManualClock) -> None:
    stack.github.add_installation(ORG)
    client = client_with(stack, clock, None)
    stack.github.fail_next("GET /orgs/{org}/actions/runners", status=403)

    with pytest.raises(GitHubForbidden, match="403"):
        client.list_runners(ORG, "Org")
    assert stack.github.count(route=TOKENS_ROUTE) == 1
