"""scale_up and the shared cap: launches EC2 does not list yet count against the cap, and jobs
launched for are not launched for again, whichever container launched them.

RELIABILITY R-UP-03 and FI-25 (DescribeInstances lags just after a launch), R-Q-05 (a job's
event twice); docs/REFERENCE.md §5.1 and §7. `wiring.reset()` between invocations makes the
second one a new container: what it knows comes from the state table, not from memory.
"""

from __future__ import annotations

from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up

from chalicelib import wiring

__all__ = ["scale_up"]

EPHEMERAL_CAP_3 = {"ENABLE_ORGANIZATION_RUNNERS": "true", "RUNNERS_MAXIMUM_COUNT": "3",
                   "ENABLE_EPHEMERAL_RUNNERS": "true", "ENABLE_JIT_CONFIG": "false"}


def add_jobs(harness: ScaleUpHarness, n: int, owner: str = ORG) -> list[int]:
    return [harness.stack.github.add_job(owner, "app", ["self-hosted"]) for _ in range(n)]


def running(harness: ScaleUpHarness, owner: str | None = None) -> int:
    harness.stack.aws_faults.hide_new_instances(0)  # count what really runs
    return len(harness.instances(owner))


def test_launches_ec2_does_not_list_yet_count_against_the_cap_in_another_container(
        scale_up: ScaleUpHarness) -> None:
    # Given EC2 leaves every new instance out of DescribeInstances for a while
    scale_up.configure(**EPHEMERAL_CAP_3)
    scale_up.stack.aws_faults.hide_new_instances(3600)
    first = scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 3)), prefix="first")
    assert first.failures == []

    # When the next batch comes to another container
    wiring.reset()
    second = scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 2)), prefix="second")

    # Then the three launched still count through their reservation: both jobs wait
    assert second.failures == ["second-0", "second-1"]
    [plan] = second.lines("scale-up plan")
    assert (plan["current"], plan["launching"]) == (3, 0)
    assert running(scale_up) == 3


def test_a_batch_of_many_owners_counts_each_owners_unlisted_launches(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL_CAP_3)
    scale_up.stack.github.add_installation("beta")
    scale_up.stack.aws_faults.hide_new_instances(3600)
    scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 2)), prefix="first")

    # acme has 2 of 3, beta none: one more for acme, three for beta
    wiring.reset()
    acme, beta = add_jobs(scale_up, 2), add_jobs(scale_up, 3, owner="beta")
    outcome = scale_up.invoke(*(job_body(j) for j in acme),
                              *(job_body(j, owner="beta") for j in beta), prefix="second")

    assert outcome.failures == ["second-1"]
    assert running(scale_up, ORG) == 3 and running(scale_up, "beta") == 3


def test_once_ec2_lists_them_the_launches_are_counted_once(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL_CAP_3)
    scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 2)), prefix="first")

    outcome = scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 2)), prefix="second")

    assert outcome.failures == ["second-1"]
    [plan] = outcome.lines("scale-up plan")
    assert (plan["current"], plan["launching"]) == (2, 1)
    assert running(scale_up) == 3


def test_owners_differing_only_in_case_share_one_cap(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**EPHEMERAL_CAP_3)
    scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 2)), prefix="first")

    wiring.reset()
    outcome = scale_up.invoke(*(job_body(j, owner="ACME") for j in add_jobs(scale_up, 2)),
                              prefix="second")

    assert outcome.failures == ["second-1"]
    assert running(scale_up) == 3


def test_a_job_launched_for_by_another_container_is_not_launched_for_again(
        scale_up: ScaleUpHarness) -> None:
    # A delivery GitHub counted as failed after the webhook had queued it, then redelivered.
    scale_up.configure(**EPHEMERAL_CAP_3)
    [job] = add_jobs(scale_up, 1)
    assert scale_up.invoke(job_body(job), prefix="first").failures == []

    wiring.reset()
    again = scale_up.invoke(job_body(job), prefix="again")

    assert again.failures == []  # consumed, with its reason
    [dropped] = again.lines("message dropped")
    assert dropped["reason"] == "a runner was launched for this job already"
    assert running(scale_up) == 1
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 1


def test_a_job_whose_launch_failed_is_launched_for_when_retried(
        scale_up: ScaleUpHarness) -> None:
    # Its claim is given back with the capacity: the retried message is not taken for a repeat.
    scale_up.configure(**EPHEMERAL_CAP_3)
    [job] = add_jobs(scale_up, 1)
    scale_up.stack.aws_faults.fail_next("ec2", "CreateFleet", "InsufficientInstanceCapacity",
                                        times=10)
    assert scale_up.invoke(job_body(job), prefix="first").failures == ["first-0"]

    scale_up.stack.aws_faults.reset()
    retried = scale_up.invoke(job_body(job), receive_count=2, prefix="first")

    assert retried.failures == []
    assert running(scale_up) == 1


def test_a_failing_state_table_launches_nothing_and_loses_no_message(
        scale_up: ScaleUpHarness) -> None:
    # Launches fail closed: without a reservation nothing starts, every message comes back.
    scale_up.configure(**EPHEMERAL_CAP_3)
    scale_up.stack.aws_faults.fail_next("dynamodb", "TransactWriteItems",
                                        "ProvisionedThroughputExceededException", times=50)

    outcome = scale_up.invoke(*(job_body(j) for j in add_jobs(scale_up, 2)))

    assert outcome.failures == ["msg-0", "msg-1"]
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 0
    assert running(scale_up) == 0
