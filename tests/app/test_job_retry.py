"""Job retry through scale_up on devstack (docs/REFERENCE.md §8, issue 15 item 1): a message
consumed as queued comes back delayed with its next `retryCounter`; when it comes back, GitHub
is asked once whether the job still waits, and only then is it launched for again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scale_down_support import launch
from scale_up_support import ORG, REPO, ScaleUpHarness, job_body, scale_up

from chalicelib import wiring
from chalicelib.rules.scale_up import OVER_CAP_REUSE

__all__ = ["scale_up"]

JOB_ROUTE = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}"
REUSE = {"ENABLE_ORGANIZATION_RUNNERS": "true", "RUNNERS_MAXIMUM_COUNT": "10"}


def record_sends(harness: ScaleUpHarness) -> list[dict[str, Any]]:
    """Every entry of every SendMessageBatch the function makes, as sent (body parsed)."""
    sent: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent.extend({**entry, "body": json.loads(entry["MessageBody"])}
                    for entry in params["Entries"])

    wiring.aws("sqs").meta.events.register("provide-client-params.sqs.SendMessageBatch",
                                           remember)
    return sent


def emf(output: str, name: str) -> list[dict[str, Any]]:
    """The EMF documents of metric `name` in captured stdout."""
    return [json.loads(line) for line in output.splitlines()
            if line.startswith("{") and f'"{name}"' in line and '"_aws"' in line]


def test_a_job_launched_for_comes_back_delayed_and_is_launched_for_again_if_still_queued(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**REUSE, JOB_RETRY_CONFIG=json.dumps({"delayInSeconds": 60}))
    sent = record_sends(scale_up)
    job = scale_up.stack.github.add_job(ORG, REPO, ["self-hosted"])

    first = scale_up.invoke(job_body(job))

    assert first.failures == [] and len(scale_up.instances()) == 1
    [entry] = sent
    assert entry["DelaySeconds"] == 60
    assert entry["body"]["retryCounter"] == 1 and entry["body"]["id"] == job
    # The delay passes; the runner took another job, so this one still waits in GitHub.
    again = scale_up.invoke(entry["MessageBody"], prefix="retry")

    assert again.failures == []
    assert len(scale_up.instances()) == 2  # a second runner: the claim is per retryCounter
    assert len(sent) == 1  # maxAttempts 1: the retried message goes back no more
    assert scale_up.stack.github.count(route=JOB_ROUTE) == 2


def test_a_job_that_started_meanwhile_is_not_launched_for_again(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**REUSE, JOB_RETRY_CONFIG="{}", ENABLE_JOB_QUEUED_CHECK="false")
    sent = record_sends(scale_up)
    fake = scale_up.stack.github
    job = fake.add_job(ORG, REPO, ["self-hosted"])
    assert scale_up.invoke(job_body(job)).failures == []
    assert fake.count(route=JOB_ROUTE) == 0  # the queued check is off...
    fake.job_records[job].status = "in_progress"

    outcome = scale_up.invoke(sent[0]["MessageBody"], prefix="retry")

    # ... but a retried message is checked all the same, once, and consumed.
    assert outcome.failures == []
    assert fake.count(route=JOB_ROUTE) == 1
    assert len(scale_up.instances()) == 1
    [dropped] = outcome.lines("message dropped")
    assert (dropped["reason"], dropped["status"], dropped["retry_counter"]) == (
        "job no longer queued", "in_progress", 1)


@pytest.mark.parametrize(("received", "config", "expected"), [
    (0, {"maxAttempts": 3, "delayInSeconds": 10, "delayBackoff": 3}, (1, 10)),
    (2, {"maxAttempts": 3, "delayInSeconds": 10, "delayBackoff": 3}, (3, 90)),
    (3, {"maxAttempts": 3, "delayInSeconds": 10, "delayBackoff": 3}, None),
    (1, {"maxAttempts": 5, "delayInSeconds": 500, "delayBackoff": 2}, (2, 900)),
    (0, {"enable": False}, None),
])
def test_max_attempts_and_the_delay_backoff_are_honoured(
        scale_up: ScaleUpHarness, received: int, config: dict[str, Any],
        expected: tuple[int, int] | None) -> None:
    scale_up.configure(**REUSE, JOB_RETRY_CONFIG=json.dumps(config))
    sent = record_sends(scale_up)
    job = scale_up.stack.github.add_job(ORG, REPO, ["self-hosted"])
    body = job_body(job, **({"retryCounter": received} if received else {}))

    assert scale_up.invoke(body).failures == []

    assert len(scale_up.instances()) == 1
    assert [(e["body"]["retryCounter"], e["DelaySeconds"]) for e in sent] == (
        [expected] if expected else [])


def test_one_batch_per_owner_sends_every_job_back_including_those_left_to_a_reuse_runner(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**{**REUSE, "RUNNERS_MAXIMUM_COUNT": "2"}, JOB_RETRY_CONFIG="{}")
    sent = record_sends(scale_up)
    launch(scale_up.stack, owner=ORG, runner_type="Org")  # booting: a reuse runner to come
    jobs = [scale_up.stack.github.add_job(ORG, REPO, ["self-hosted"]) for _ in range(3)]

    outcome = scale_up.invoke(*(job_body(j) for j in jobs))

    assert outcome.failures == [] and len(scale_up.instances()) == 2
    # Two were consumed at the cap for the booting reuse runners to take: they come back too.
    assert [line["reason"] for line in outcome.lines("message dropped")] == [
        OVER_CAP_REUSE, OVER_CAP_REUSE]
    assert sorted(e["body"]["id"] for e in sent) == sorted(jobs)
    assert scale_up.stack.aws_faults.count("sqs", "SendMessageBatch") == 1


def test_a_retried_job_github_does_not_answer_for_is_retried(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**REUSE, JOB_RETRY_CONFIG="{}")
    job = scale_up.stack.github.add_job(ORG, REPO, ["self-hosted"])
    scale_up.stack.github.fail_next(JOB_ROUTE, n=8, status=502)

    outcome = scale_up.invoke(job_body(job, retryCounter=1))

    assert outcome.failures == ["msg-0"]
    assert scale_up.instances() == []


def test_a_send_back_that_fails_is_logged_and_counted_and_the_message_not_retried(
        scale_up: ScaleUpHarness, capsys: pytest.CaptureFixture[str]) -> None:
    scale_up.configure(**REUSE, JOB_RETRY_CONFIG="{}")
    job = scale_up.stack.github.add_job(ORG, REPO, ["self-hosted"])
    scale_up.stack.aws_faults.fail_next("sqs", "SendMessageBatch", "AccessDenied", status=403,
                                        times=2)

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == [] and len(scale_up.instances()) == 1
    [line] = outcome.lines("job retries not sent; these jobs get no second chance")
    assert line["job_ids"] == [job]
    [document] = emf(capsys.readouterr().out, "JobRetriesNotSent")
    assert document["JobRetriesNotSent"] == 1.0
