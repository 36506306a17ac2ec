"""Re-running jobs lost to spot interruptions, through the webhook, ec2_events and scale_down on
devstack (docs/REFERENCE.md §9, issue 15 item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from ec2_events_support import ORG, Harness, ghr, launch

__all__ = ["ghr"]

RERUN = "POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun"


def interrupted_busy_job(ghr: Harness, run_id: int | None = None) -> tuple[str, int, int]:
    """A job running on a runner whose instance got its interruption warning; the job's
    `in_progress` delivered. (instance id, job id, runner id)."""
    [instance] = launch(ghr.stack)
    job = ghr.fake.add_job(ORG, "app", ["self-hosted"], run_id=run_id)
    runner = ghr.runner_on(instance, busy_with=job)
    ghr.deliver("in_progress", job)
    ghr.warning(instance)
    return instance, job, runner


def reruns_of(ghr: Harness, job: int) -> list[Any]:
    return [j for j in ghr.fake.jobs.values() if j.rerun_of == job]


def test_a_job_lost_with_its_interrupted_runner_is_rerun_once(ghr: Harness) -> None:
    instance, job, runner = interrupted_busy_job(ghr)
    binding = ghr.item(f"run#{instance}", "job")
    assert binding is not None and binding["jobId"] == job

    ghr.fake.lose_runner(runner)  # EC2 took the instance back: GitHub fails the job
    ghr.deliver("completed", job)
    ghr.deliver("completed", job)  # GitHub redelivers, or sends it twice

    assert [(j.status, j.run_attempt) for j in reruns_of(ghr, job)] == [("queued", 2)]
    assert ghr.fake.count(route=RERUN) == 1
    claim = ghr.item("rerun#devstack", f"{ORG}/app#{job}")
    assert claim is not None and (claim["state"], claim["outcome"]) == ("requested", "requested")
    assert ghr.logged("interrupted job claimed already")
    ghr.scale_down()  # nothing left to ask
    assert ghr.fake.count(route=RERUN) == 1


@pytest.mark.parametrize("conclusion", ["success", "skipped"])
def test_a_job_that_succeeded_on_an_interrupted_runner_is_not_rerun(
        ghr: Harness, conclusion: str) -> None:
    _, job, _ = interrupted_busy_job(ghr)
    with ghr.fake.lock:
        record = ghr.fake.job_records[job]
        record.status, record.conclusion = "completed", conclusion

    ghr.deliver("completed", job)

    assert reruns_of(ghr, job) == [] and ghr.fake.count(route=RERUN) == 0


def test_a_failed_job_whose_runner_was_not_interrupted_is_not_rerun(ghr: Harness) -> None:
    [instance] = launch(ghr.stack)
    job = ghr.fake.add_job(ORG, "app", ["self-hosted"])
    runner = ghr.runner_on(instance, busy_with=job)
    ghr.fake.lose_runner(runner)

    ghr.deliver("completed", job)

    assert ghr.fake.count(route=RERUN) == 0
    assert ghr.item("rerun#devstack", f"{ORG}/app#{job}") is None


def test_a_rerun_refused_while_the_run_goes_on_is_asked_again_by_scale_down(
        ghr: Harness) -> None:
    sibling = ghr.fake.add_job(ORG, "app", ["self-hosted"])  # same run, still queued
    run_id = ghr.fake.jobs[sibling].run_id
    _, job, runner = interrupted_busy_job(ghr, run_id=run_id)
    ghr.fake.lose_runner(runner)

    ghr.deliver("completed", job)  # 403: the run is still going

    claim = ghr.item("rerun#devstack", f"{ORG}/app#{job}")
    assert claim is not None and claim["state"] == "pending"
    ghr.scale_down()
    assert reruns_of(ghr, job) == [] and ghr.fake.count(route=RERUN) == 2
    with ghr.fake.lock:
        record = ghr.fake.job_records[sibling]
        record.status, record.conclusion = "completed", "success"
    ghr.scale_down()
    ghr.scale_down()

    assert len(reruns_of(ghr, job)) == 1 and ghr.fake.count(route=RERUN) == 3
    assert ghr.item("rerun#devstack", f"{ORG}/app#{job}")["attempts"] == 3  # type: ignore[index]


def test_without_actions_write_the_advice_is_logged_once_and_never_retried(
        ghr: Harness) -> None:
    ghr.fake.installations.clear()
    ghr.fake.add_installation(ORG, permissions={
        "metadata": "read", "actions": "read", "organization_self_hosted_runners": "write"})
    first = interrupted_busy_job(ghr)
    second = interrupted_busy_job(ghr)
    for _, job, runner in (first, second):
        ghr.fake.lose_runner(runner)
        ghr.deliver("completed", job)
    ghr.scale_down()

    [advice] = [line for line in ghr.logged("job re-run forbidden") if "advice" in line]
    assert "actions: write" in advice["advice"] and advice["level"] == "ERROR"
    assert ghr.fake.count(route=RERUN) == 2  # one each, none from scale-down
    assert ghr.item("rerun#devstack", f"{ORG}/app#{first[1]}")["state"] == "refused"  # type: ignore[index]


def test_with_rerun_off_nothing_is_recorded_or_asked(
        ghr: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import wiring

    monkeypatch.setenv("ENABLE_SPOT_INTERRUPTION_RERUN", "false")
    wiring.reset()
    instance, job, runner = interrupted_busy_job(ghr)
    ghr.fake.lose_runner(runner)
    ghr.deliver("completed", job)

    assert ghr.item(f"run#{instance}", "job") is None
    assert ghr.fake.count(route=RERUN) == 0


def test_a_failing_state_table_costs_the_delivery_nothing(ghr: Harness) -> None:
    _, job, runner = interrupted_busy_job(ghr)
    ghr.fake.lose_runner(runner)
    ghr.stack.aws_faults.fail_next("dynamodb", "GetItem", "InternalServerError", status=500,
                                   times=4)

    ghr.deliver("completed", job)  # 200 all the same

    assert ghr.logged("re-run bookkeeping failed")


def test_a_rerun_github_does_not_answer_is_left_pending_for_scale_down(ghr: Harness) -> None:
    _, job, runner = interrupted_busy_job(ghr)
    ghr.fake.lose_runner(runner)
    ghr.fake.fail_next(RERUN, n=4, status=502)

    ghr.deliver("completed", job)  # 200: the webhook gave up within its few seconds

    claim = ghr.item("rerun#devstack", f"{ORG}/app#{job}")
    assert claim is not None and (claim["state"], claim["outcome"]) == ("pending", "unanswered")
    ghr.scale_down()
    assert len(reruns_of(ghr, job)) == 1
