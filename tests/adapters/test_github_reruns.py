"""Re-running a job (docs/REFERENCE.md §9): the GitHub fake's `POST .../jobs/{job_id}/rerun` and
lost runners, and the GitHub client's reading of each answer."""

from __future__ import annotations

from typing import Any

import pytest
from github_client_support import ORG, ManualClock, make_client

from chalicelib.errors import RetryableError
from chalicelib.github.client import GitHubClient
from devstack.github_records import ApiError

RERUN = "POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun"
REPO = f"{ORG}/app"


@pytest.fixture
def client(stack: Any, clock: ManualClock) -> GitHubClient:
    stack.github.clock = clock
    return make_client(stack, clock)


def started_job(stack: Any, run_id: int | None = None) -> tuple[int, int]:
    """A job running on an online runner of `acme`: (job id, runner id)."""
    fake = stack.github
    runner = fake.create_runner(ORG, "i-0123456789abcdef0", ["self-hosted"], 1,
                                ephemeral=False, jit=False)
    fake.set_runner_status(runner.id, "online")
    job = fake.add_job(ORG, "app", ["self-hosted"], run_id=run_id)
    fake.dispatch()
    return job, runner.id


def test_a_lost_runner_goes_offline_and_its_job_fails_with_a_completed_event(stack: Any) -> None:
    fake = stack.github
    fake.add_installation(ORG)
    job, runner = started_job(stack)
    events: list[tuple[str, dict[str, Any]]] = []
    fake.on_job_event = lambda action, body: events.append((action, body))

    lost = fake.lose_runner(runner)

    assert lost is not None and (lost.status, lost.conclusion) == ("completed", "failure")
    assert [(a, b["id"], b["conclusion"], b["runner_name"]) for a, b in events] == [
        ("completed", job, "failure", "i-0123456789abcdef0")]
    [record] = fake.runners(ORG)
    assert (record.status, record.busy) == ("offline", False)
    assert fake.lose_runner(runner) is None  # nothing left to lose


def test_a_rerun_is_a_new_queued_attempt_of_the_job_in_the_same_run(
        stack: Any, client: GitHubClient) -> None:
    fake = stack.github
    fake.add_installation(ORG)
    job, runner = started_job(stack)
    fake.lose_runner(runner)

    assert client.rerun_job(REPO, job, runner_type="Org") == "requested"

    again = [j for j in fake.jobs.values() if j.rerun_of == job]
    assert [(j.status, j.run_attempt, j.run_id) for j in again] == [
        ("queued", 2, fake.jobs[job].run_id)]
    assert fake.count(route=RERUN) == 1 and fake.violations == []


def test_a_rerun_while_the_run_goes_on_is_refused_with_403_and_read_as_such(
        stack: Any, client: GitHubClient) -> None:
    fake = stack.github
    fake.add_installation(ORG)
    job, runner = started_job(stack)
    fake.add_job(ORG, "app", ["self-hosted"], run_id=fake.jobs[job].run_id)  # still queued
    fake.lose_runner(runner)

    assert client.rerun_job(REPO, job, runner_type="Org") == "run_in_progress"
    # A 403 about the run is an answer: one call, no unscoped token, no other App.
    assert fake.count(route=RERUN) == 1
    assert [j for j in fake.jobs.values() if j.rerun_of == job] == []
    with pytest.raises(ApiError, match="already running"):
        fake.rerun_job(ORG, "app", job)


def test_an_app_without_actions_write_is_forbidden(stack: Any, client: GitHubClient) -> None:
    fake = stack.github
    fake.add_installation(ORG, permissions={"metadata": "read", "actions": "read",
                                            "organization_self_hosted_runners": "write"})
    job, runner = started_job(stack)
    fake.lose_runner(runner)

    assert client.rerun_job(REPO, job, runner_type="Org") == "forbidden"


def test_an_unknown_job_is_not_found_and_a_rate_limit_is_retryable(
        stack: Any, client: GitHubClient) -> None:
    fake = stack.github
    fake.add_installation(ORG)
    assert client.rerun_job(REPO, 1, runner_type="Org") == "not_found"
    fake.primary_limit_next(RERUN, reset_in=3600)
    with pytest.raises(RetryableError):
        client.rerun_job(REPO, 1, runner_type="Org")
