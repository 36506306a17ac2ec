"""The pure rules of lost jobs (docs/REFERENCE.md §8, §9): JOB_RETRY_CONFIG, the retry delays,
the EC2 events acted on, and which completed jobs are candidates for a re-run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import ConfigError
from chalicelib.messages import JobMessage
from chalicelib.rules import reruns
from chalicelib.rules.ec2_events import EVENT_PATTERN, Ec2Event, Ignored, parse_event
from chalicelib.rules.job_retry import (
    JobRetryConfig,
    parse_job_retry_config,
    plan_retries,
    retry_delay,
)
from chalicelib.settings import load_settings

JOB = JobMessage(id=7, repository_name="app", repository_owner="acme", message_id="m-1")


def test_missing_keys_take_the_enabled_defaults_and_queue_url_is_ignored() -> None:
    assert parse_job_retry_config('{"queueUrl": "https://sqs/q"}') == JobRetryConfig(
        enable=True, max_attempts=1, delay_in_seconds=300, delay_backoff=2)
    assert parse_job_retry_config('{"enable": false}').enable is False


def test_settings_name_every_problem_of_the_config_in_one_error() -> None:
    config = {"enable": "yes", "maxAttempts": 1.5, "delayInSeconds": -1, "delayBackoff": True,
              "typo": 1}
    with pytest.raises(ConfigError) as error:
        load_settings({"ENVIRONMENT": "dev", "JOB_RETRY_CONFIG": json.dumps(config)})
    [problem] = error.value.problems
    for name in ("typo", "enable", "maxAttempts", "delayInSeconds", "delayBackoff"):
        assert name in problem


def test_job_retry_makes_the_queue_url_required_by_scale_up() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"ENVIRONMENT": "dev", "JOB_RETRY_CONFIG": "{}"}, "scale_up")
    assert "SQS_URL_WEBHOOK: required by scale_up when job retry is on" in error.value.problems
    with pytest.raises(ConfigError) as error:
        load_settings({"ENVIRONMENT": "dev"}, "scale_up")
    assert not any("SQS_URL_WEBHOOK" in p for p in error.value.problems)


@pytest.mark.parametrize(("counter", "expected"), [(1, 300), (2, 600), (3, 900), (20, 900)])
def test_the_delay_doubles_up_to_sqs_maximum(counter: int, expected: int) -> None:
    assert retry_delay(JobRetryConfig(enable=True), counter) == expected


def test_the_delay_is_floored() -> None:
    assert retry_delay(JobRetryConfig(delay_in_seconds=10, delay_backoff=1.5), 2) == 15
    assert retry_delay(JobRetryConfig(delay_in_seconds=7, delay_backoff=1.5), 2) == 10


def test_retries_go_while_the_next_counter_is_within_max_attempts() -> None:
    config = JobRetryConfig(enable=True, max_attempts=2)
    [first] = plan_retries([JOB], config)
    assert (first.job.retry_counter, first.job.message_id, first.delay) == (1, "", 300)
    [second] = plan_retries([first.job], config)
    assert second.job.retry_counter == 2
    assert plan_retries([second.job], config) == ()
    assert plan_retries([JOB], JobRetryConfig(enable=False)) == ()


def event(kind: str, **detail: Any) -> dict[str, Any]:
    return {"source": "aws.ec2", "detail-type": kind, "time": "2027-01-15T08:00:00Z",
            "detail": detail}


def test_interruption_warnings_and_ending_states_are_acted_on() -> None:
    warning = event("EC2 Spot Instance Interruption Warning", **{
        "instance-id": "i-0abc12345", "instance-action": "terminate"})
    assert parse_event(warning) == Ec2Event("interruption", "i-0abc12345",
                                            "2027-01-15T08:00:00Z")
    ending = event("EC2 Instance State-change Notification", state="terminated",
                   **{"instance-id": "i-0abc12345"})
    assert parse_event(ending) == Ec2Event("state", "i-0abc12345", "2027-01-15T08:00:00Z",
                                           "terminated")
    assert parse_event({**ending, "time": "yesterday"}).time is None  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [None, [], "x", {"source": "aws.ec2"}])
def test_what_is_not_an_event_is_malformed(value: Any) -> None:
    found = parse_event(value)
    assert isinstance(found, Ignored) and found.malformed


def test_the_rule_pattern_asks_for_warnings_and_ending_states_only() -> None:
    assert EVENT_PATTERN["source"] == ["aws.ec2"]
    assert EVENT_PATTERN["$or"][1] == {"detail": {"state": ["shutting-down", "terminated"]}}


def delivery(conclusion: str | None, runner: str | None = "ci-i-0abc12345") -> dict[str, Any]:
    return {"workflow_job": {"id": 5, "run_id": 9, "runner_name": runner,
                             "conclusion": conclusion},
            "repository": {"full_name": "acme/app"}, "installation": {"id": 3}}


def test_a_failed_or_cancelled_job_of_our_runner_is_a_candidate() -> None:
    run = reruns.job_run(delivery("failure"))
    assert run is not None and reruns.lost(run) and reruns.ours(run, "ci-") == "i-0abc12345"
    assert reruns.lost(reruns.job_run(delivery("cancelled")))  # type: ignore[arg-type]
    assert not reruns.lost(reruns.job_run(delivery("success")))  # type: ignore[arg-type]
    assert reruns.ours(run, "other-") is None
    assert reruns.job_run(delivery("failure", runner=None)) is None  # never assigned


def test_pending_claims_are_asked_again_for_six_hours() -> None:
    claim = {"state": "pending", "claimedAt": 1000}
    assert reruns.due(claim, 1000 + 6 * 3600) == "retry"
    assert reruns.due(claim, 1001 + 6 * 3600) == "expire"
    assert reruns.due({**claim, "state": "requested"}, 2000) is None
