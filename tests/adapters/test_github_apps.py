"""Several GitHub Apps against devstack (REFERENCE §10): which App serves each call, when an App is
skipped, and that one App behaves as before, call for call."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from github_client_support import ORG, ManualClock, rendered_logs

from chalicelib import metrics
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import PermanentError
from chalicelib.github.client import GitHubClient
from chalicelib.settings import load_settings
from chalicelib.wiring import github_config

OTHER = "beta"
INSTALLATION_ROUTE = "GET /orgs/{org}/installation"
TOKENS_ROUTE = "POST /app/installations/{installation_id}/access_tokens"
JOB_ROUTE = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}"


def make_client(stack: Any, clock: ManualClock) -> GitHubClient:
    """A scale_up GitHubClient on devstack (org runners, tokens limited to what scale_up needs)."""
    settings = load_settings(stack.env(ENABLE_ORGANIZATION_RUNNERS="true"), "scale_up")
    return GitHubClient(github_config(settings, "scale_up"), Ssm(stack.boto("ssm")),
                        clock=clock, sleep=clock.sleep)


@pytest.fixture
def two_apps(stack: Any, clock: ManualClock) -> tuple[Any, Any]:
    """The first App installed on acme and beta; a second App on both too."""
    for owner in (ORG, OTHER):
        stack.github.add_installation(owner)
    second = stack.add_app(ORG, OTHER)
    return stack.github.app(), second


def used(stack: Any, owner: str, app: Any) -> int:
    """Requests spent from App `app`'s installation budget on `owner`."""
    return int(stack.github.rate_limit(stack.github.installation_id(owner, app.app_id)).used)


def test_both_apps_credentials_come_in_one_get_parameters_call(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    client = make_client(stack, clock)
    for _ in range(4):
        client.registration_token(ORG, "Org")

    assert set(stack.github.calls_by_app()) == {app.app_id for app in two_apps}
    assert stack.aws_faults.count("ssm", "GetParameters") == 1


def test_a_burst_drains_both_apps_budgets_evenly(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    first, second = two_apps
    jobs = [stack.github.add_job(ORG, "web", ["self-hosted"]) for _ in range(60)]
    client = make_client(stack, clock)

    for job in jobs:
        assert client.job_status(f"{ORG}/web", job, runner_type="Org") == "queued"
        client.registration_token(ORG, "Org")

    assert used(stack, ORG, first) + used(stack, ORG, second) == 120
    assert abs(used(stack, ORG, first) - used(stack, ORG, second)) <= 1
    # Choosing cost nothing beyond one installation lookup and one token per App.
    assert stack.github.count(route=INSTALLATION_ROUTE) == 2
    assert stack.github.count(route=TOKENS_ROUTE) == 2


def test_the_message_installation_id_serves_the_first_app_and_the_second_looks_its_own_up(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    first, second = two_apps
    client = make_client(stack, clock)
    hint = stack.github.installation_id(ORG)

    client.registration_token(ORG, "Org", hint)
    client.registration_token(ORG, "Org", hint)

    assert stack.github.count(route=INSTALLATION_ROUTE, app_id=first.app_id) == 0
    assert stack.github.count(route=INSTALLATION_ROUTE, app_id=second.app_id) == 1
    assert used(stack, ORG, first) == used(stack, ORG, second) == 1


def test_an_app_not_installed_on_one_owner_is_skipped_there_only(
    stack: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    for owner in (ORG, OTHER):
        stack.github.add_installation(owner)
    second = stack.add_app(ORG)  # not on beta
    client = make_client(stack, clock)

    for _ in range(6):
        client.registration_token(ORG, "Org")
        client.registration_token(OTHER, "Org")

    assert used(stack, OTHER, stack.github.app()) == 6
    assert used(stack, ORG, second) == 3
    # Looked up once on beta (404), then left alone for the hour.
    lookups = stack.github.count(route=INSTALLATION_ROUTE, prefix=f"/orgs/{OTHER}/",
                                 app_id=second.app_id)
    assert lookups == 1
    assert '"message": "github app skipped"' in rendered_logs(caplog.records)

    clock.advance(3601)  # re-checked after an hour
    client.registration_token(OTHER, "Org")
    client.registration_token(OTHER, "Org")
    assert stack.github.count(route=INSTALLATION_ROUTE, prefix=f"/orgs/{OTHER}/",
                              app_id=second.app_id) == 2


def test_a_revoked_key_moves_the_call_to_the_other_app_at_once(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    first, second = two_apps
    client = make_client(stack, clock)
    client.registration_token(ORG, "Org")  # served by the first App (a tie goes to it)
    stack.github.revoke_app_key(second.key)  # the second App, unseen, would serve next
    reads = stack.aws_faults.count("ssm", "GetParameters")

    assert client.registration_token(ORG, "Org")
    assert client.registration_token(OTHER, "Org")

    assert used(stack, ORG, first) == 2 and used(stack, OTHER, first) == 1
    # Refused once (its installation lookup), SSM read once more (a rotation would have shown
    # there), then the App is left out on every owner: beta's call never tried it.
    assert [e.status for e in stack.github.requests if e.app_id == second.app_id] == [401]
    assert stack.aws_faults.count("ssm", "GetParameters") == reads + 1


def test_a_refused_installation_token_moves_the_call_to_the_other_app(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    first, second = two_apps
    client = make_client(stack, clock)
    client.registration_token(ORG, "Org")
    client.registration_token(ORG, "Org")  # both Apps hold a token on acme now
    stack.github.remove_installation(ORG, app_id=second.app_id)  # uninstalled: tokens refused
    stack.github.set_rate_limit(stack.github.installation_id(ORG), remaining=10,
                                reset_epoch=clock.now + 600)
    client.registration_token(ORG, "Org")  # the first App now reports 9 left

    assert client.registration_token(ORG, "Org")
    assert used(stack, ORG, first) >= 3


def test_a_403_from_one_app_moves_the_call_to_the_other(
    stack: Any, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    second = stack.add_app()
    # Installed without the runner permissions this deployment needs.
    stack.github.add_installation(ORG, app_id=second.app_id,
                                  permissions={"metadata": "read", "actions": "read"})
    client = make_client(stack, clock)

    for _ in range(3):
        assert client.registration_token(ORG, "Org")

    assert used(stack, ORG, stack.github.app()) == 3
    assert stack.github.count(app_id=second.app_id, route="POST /orgs/{org}/actions/runners/"
                              "registration-token") == 1


def test_a_spent_primary_budget_moves_the_call_to_the_other_app_without_waiting(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    _, second = two_apps
    client = make_client(stack, clock)
    stack.github.set_rate_limit(stack.github.installation_id(ORG), remaining=0,
                                reset_epoch=clock.now + 1800)

    assert client.registration_token(ORG, "Org")
    assert client.registration_token(ORG, "Org")

    assert clock.sleeps == []
    assert used(stack, ORG, second) == 2


def test_a_404_of_a_runner_or_job_is_an_answer_not_a_reason_to_switch(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    client = make_client(stack, clock)

    assert client.get_runner(ORG, "Org", 424242) is None
    assert client.delete_runner(ORG, "Org", 424242) == "not_found"
    with pytest.raises(PermanentError, match="404"):
        client.job_status(f"{ORG}/web", 777, runner_type="Org")

    # Three calls, each answered by the App chosen for it, none tried twice.
    runner_calls = stack.github.count(prefix=f"/orgs/{ORG}/actions/runners/424242")
    assert runner_calls == 2 and stack.github.count(route=JOB_ROUTE) == 1


def test_a_runner_registered_through_one_app_is_deleted_through_the_other(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any]
) -> None:
    first, second = two_apps
    client = make_client(stack, clock)

    jit = client.jit_config(ORG, "Org", "i-1", 1, ["self-hosted"])  # the first App (a tie)
    assert client.get_runner(ORG, "Org", jit.runner_id) is not None  # the second, unseen
    assert client.delete_runner(ORG, "Org", jit.runner_id) == "deleted"

    route = "POST /orgs/{org}/actions/runners/generate-jitconfig"
    assert stack.github.count(route=route, app_id=first.app_id) == 1
    assert stack.github.count(route="GET /orgs/{org}/actions/runners/{runner_id}",
                              app_id=second.app_id) == 1
    assert stack.github.runners(ORG) == []


def test_the_usage_log_names_the_app_per_owner_and_the_metric_has_an_app_dimension(
    stack: Any, clock: ManualClock, two_apps: tuple[Any, Any],
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = two_apps
    client = make_client(stack, clock)
    for _ in range(2):
        client.registration_token(ORG, "Org")
    client.registration_token(OTHER, "Org")
    metrics.flush()
    capsys.readouterr()

    caplog.set_level(logging.INFO, logger="ghr")
    client.log_summary()
    metrics.flush()

    line = next(json.loads(text) for text in rendered_logs(caplog.records).splitlines()
                if '"github usage"' in text)
    assert line["owner_apps"] == {ORG: {str(first.app_id): 1, str(second.app_id): 1},
                                  OTHER: {str(first.app_id): 1}}
    assert set(line["app_requests"]) == {str(first.app_id), str(second.app_id)}
    documents = [json.loads(text) for text in capsys.readouterr().out.splitlines()
                 if "GitHubAppRateLimitRemaining" in text and text.startswith("{")]
    by_app = {doc.get("App"): doc["GitHubAppRateLimitRemaining"] for doc in documents}
    assert by_app[str(second.app_id)] == 4999
    assert None in by_app  # the figure without the App dimension the alarm watches


def test_one_app_makes_exactly_the_calls_it_always_made(
    stack: Any, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    job = stack.github.add_job(ORG, "web", ["self-hosted"])
    client = make_client(stack, clock)

    client.job_status(f"{ORG}/web", job, runner_type="Org")
    client.registration_token(ORG, "Org")
    jit = client.jit_config(ORG, "Org", "i-1", 1, ["self-hosted"])
    client.list_runners(ORG, "Org")
    client.delete_runner(ORG, "Org", jit.runner_id)
    with pytest.raises(PermanentError, match="not installed"):
        client.registration_token(OTHER, "Org")
    with pytest.raises(PermanentError, match="not installed"):
        client.registration_token(OTHER, "Org")

    assert [entry.route for entry in stack.github.requests] == [
        INSTALLATION_ROUTE, TOKENS_ROUTE, JOB_ROUTE,
        "POST /orgs/{org}/actions/runners/registration-token",
        "POST /orgs/{org}/actions/runners/generate-jitconfig",
        "GET /orgs/{org}/actions/runners",
        "DELETE /orgs/{org}/actions/runners/{runner_id}",
        # Not installed: asked each time, as before (no skipping with one App).
        INSTALLATION_ROUTE, INSTALLATION_ROUTE,
    ]
    assert stack.aws_faults.count("ssm", "GetParameters") == 1
