"""adjust_pool through `chalice.test.Client` against devstack."""

from __future__ import annotations

from typing import Any

import pytest
from scale_down_support import invoke_adjust_pool, launch, register

from chalicelib.errors import ConfigError, GhrError
from chalicelib.models import TAG_CREATED_BY, TAG_OWNER, TAG_TYPE

LIST_ORG_RUNNERS = "GET /orgs/{org}/actions/runners"


@pytest.fixture
def pool_env(stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """adjust_pool's environment: the pool belongs to org `acme`, where the App is installed."""
    monkeypatch.setenv("RUNNER_OWNER", "acme")
    monkeypatch.setenv("RUNNERS_MAXIMUM_COUNT", "10")
    stack.github.add_installation("acme")
    return env


def pool_instances(stack: Any) -> list[dict[str, str]]:
    """Tags of the live instances the pool launched."""
    answer = stack.boto("ec2").describe_instances(Filters=[
        {"Name": f"tag:{TAG_CREATED_BY}", "Values": ["pool-lambda"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ])
    return [{t["Key"]: t["Value"] for t in i.get("Tags", [])}
            for r in answer["Reservations"] for i in r["Instances"]]


def token_parameters(stack: Any, env: dict[str, str]) -> list[str]:
    answer = stack.boto("ssm").describe_parameters(ParameterFilters=[
        {"Key": "Path", "Option": "Recursive", "Values": [env["SSM_TOKEN_PATH"]]}])
    return [p["Name"] for p in answer["Parameters"]]


def test_pool_tops_up_an_empty_pool_tagged_pool_lambda(
        stack: Any, pool_env: dict[str, str]) -> None:
    invoke_adjust_pool(3)

    launched = pool_instances(stack)
    assert len(launched) == 3
    assert all(t[TAG_OWNER] == "acme" and t[TAG_TYPE] == "Org" for t in launched)
    assert len(token_parameters(stack, pool_env)) == 3


def test_pool_counts_idle_and_booting_runners(stack: Any, pool_env: dict[str, str]) -> None:
    idle = launch(stack)
    register(stack, idle[0])
    busy = launch(stack)
    register(stack, busy[0], busy=True)
    launch(stack)  # booting: no runner yet, launched seconds ago

    invoke_adjust_pool(3)

    assert len(pool_instances(stack)) == 1  # 3 - (1 idle + 1 booting)


def test_pool_second_run_counts_the_first_runs_instances_as_booting(
        stack: Any, pool_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_EPHEMERAL_RUNNERS", "true")  # JIT: runners exist at once, offline

    invoke_adjust_pool(2)
    invoke_adjust_pool(2)

    assert len(pool_instances(stack)) == 2
    assert [r.status for r in stack.github.runners("acme")] == ["offline", "offline"]


def test_pool_is_clamped_to_the_maximum(stack: Any, pool_env: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNERS_MAXIMUM_COUNT", "3")
    for instance in launch(stack, count=2):
        register(stack, instance, busy=True)

    invoke_adjust_pool(5)

    assert len(pool_instances(stack)) == 1


def test_pool_at_the_maximum_launches_nothing(stack: Any, pool_env: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNERS_MAXIMUM_COUNT", "2")
    for instance in launch(stack, count=2):
        register(stack, instance, busy=True)

    invoke_adjust_pool(4)

    assert pool_instances(stack) == []
    assert stack.aws_faults.count("ec2", "CreateFleet") == 0


def test_pool_ignores_other_owners_instances(stack: Any, pool_env: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNERS_MAXIMUM_COUNT", "2")
    launch(stack, owner="other", count=2)

    invoke_adjust_pool(2)

    assert len(pool_instances(stack)) == 2


def test_pool_counts_the_owners_instances_whatever_the_case_of_their_tag(
        stack: Any, pool_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # GitHub names ignore case: a job of `ACME` launched these for the pool's owner `acme`.
    monkeypatch.setenv("RUNNERS_MAXIMUM_COUNT", "2")
    for instance in launch(stack, owner="ACME", count=2):
        register(stack, instance, busy=True)

    invoke_adjust_pool(2)

    assert pool_instances(stack) == []


@pytest.mark.parametrize("event_size", [None, -1, "2"])
def test_pool_bad_event_fails_without_launching(stack: Any, pool_env: dict[str, str],
                                                event_size: Any) -> None:
    with pytest.raises(ConfigError, match="poolSize"):
        invoke_adjust_pool(event_size)

    assert stack.aws_faults.count("ec2", "CreateFleet") == 0


def test_pool_without_runner_owner_fails_naming_it(stack: Any, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="RUNNER_OWNER"):
        invoke_adjust_pool(1)


def test_pool_github_listing_failure_launches_nothing(stack: Any, pool_env: dict[str, str]) -> None:
    stack.github.fail_next(LIST_ORG_RUNNERS, n=8, status=502)

    with pytest.raises(GhrError):
        invoke_adjust_pool(2)

    assert stack.aws_faults.count("ec2", "CreateFleet") == 0


def queue_jobs(stack: Any, count: int, received: int = 0) -> None:
    """`count` messages in the build queue, `received` of them in flight (as scale-up holds
    them while it launches)."""
    sqs, url = stack.boto("sqs"), stack.deployment.queue_url
    for n in range(count):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"id": {n}}}')
    if received:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=received, VisibilityTimeout=300)


def test_pool_leaves_room_under_the_cap_for_queued_and_in_flight_jobs(
        stack: Any, pool_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNERS_MAXIMUM_COUNT", "5")
    queue_jobs(stack, 3, received=2)  # scale-up is launching for two, one more waits
    before = stack.aws_faults.count("sqs", "GetQueueAttributes")

    invoke_adjust_pool(4)

    assert len(pool_instances(stack)) == 2  # 5 - 3 places for the queued jobs
    assert stack.aws_faults.count("sqs", "GetQueueAttributes") == before + 1


def test_pool_reads_no_queue_when_it_has_nothing_to_launch(
        stack: Any, pool_env: dict[str, str]) -> None:
    idle = launch(stack)
    register(stack, idle[0])
    before = stack.aws_faults.count("sqs", "GetQueueAttributes")

    invoke_adjust_pool(1)

    assert stack.aws_faults.count("sqs", "GetQueueAttributes") == before


def test_pool_tops_up_when_the_queue_cannot_be_read(
        stack: Any, pool_env: dict[str, str]) -> None:
    queue_jobs(stack, 3)
    stack.aws_faults.fail_next("sqs", "GetQueueAttributes", "AccessDenied", times=3)

    invoke_adjust_pool(2)

    assert len(pool_instances(stack)) == 2
