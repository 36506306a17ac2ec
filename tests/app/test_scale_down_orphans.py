"""The orphan path of scale_down (docs/REFERENCE.md §5.2; issue 13 item 1), through
`chalice.test.Client` against devstack.

An instance without a runner after the boot time is marked `ghr:orphan-suspected=<run time>`;
it is terminated only by a run at least a scale-down interval later, and only when a direct
look-up of its runner (by the `ghr:github_runner_id` tag, else by name) says there is none.
"""

from __future__ import annotations

from typing import Any

import pytest
from scale_down_support import launch, register, run_at, runner_ids, states

from chalicelib.errors import RetryableError
from chalicelib.github.client import GitHubClient
from chalicelib.models import TAG_ORPHAN_SUSPECTED, TAG_RUNNER_ID

GET_ORG_RUNNER = "GET /orgs/{org}/actions/runners/{runner_id}"


@pytest.fixture(autouse=True)
def org_runners(stack: Any, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_ORGANIZATION_RUNNERS", "true")
    stack.github.add_installation("acme")



def tags(stack: Any, instance_id: str) -> dict[str, str]:
    [reservation] = stack.boto("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return {t["Key"]: t["Value"] for t in reservation["Instances"][0].get("Tags", [])}


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The direct runner look-ups the functions make: by id, or by name (the listing filtered
    by `name`; tests/adapters checks the request)."""
    made: list[str] = []
    for method in ("get_runner", "find_runner"):
        real = getattr(GitHubClient, method)

        def counted(self: GitHubClient, *args: Any, _real: Any = real, _name: str = method,
                    **kwargs: Any) -> Any:
            made.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(GitHubClient, method, counted)
    return made


def test_first_run_marks_runner_less_instances_in_one_call_and_keeps_them(
        stack: Any, monkeypatch: pytest.MonkeyPatch, lookups: list[str]) -> None:
    orphans = launch(stack, count=2)
    bypassed = launch(stack, bypass=True)
    stack.aws_faults.reset()

    moment = run_at(monkeypatch, 10)

    assert states(stack, orphans) == dict.fromkeys(orphans, "running")
    marks = {tags(stack, i).get(TAG_ORPHAN_SUSPECTED) for i in orphans}
    assert marks == {moment.isoformat(timespec="seconds").replace("+00:00", "Z")}
    assert TAG_ORPHAN_SUSPECTED not in tags(stack, bypassed[0])
    assert stack.aws_faults.count("ec2", "CreateTags") == 1
    assert lookups == []


def test_marked_instance_is_terminated_an_interval_later_when_its_runner_does_not_exist(
        stack: Any, monkeypatch: pytest.MonkeyPatch, lookups: list[str]) -> None:
    orphan = launch(stack)
    run_at(monkeypatch, 10)

    run_at(monkeypatch, 15.1)

    assert states(stack, orphan) == {orphan[0]: "terminated"}
    assert lookups == ["find_runner"]  # by name: no runner id tag


def test_a_mark_younger_than_the_interval_does_not_count(
        stack: Any, monkeypatch: pytest.MonkeyPatch, lookups: list[str]) -> None:
    orphan = launch(stack)
    run_at(monkeypatch, 10)

    run_at(monkeypatch, 14)

    assert states(stack, orphan) == {orphan[0]: "running"}
    assert lookups == []


def test_busy_runner_left_out_of_the_listing_keeps_its_instance(
        stack: Any, monkeypatch: pytest.MonkeyPatch, lookups: list[str]) -> None:
    # The second way: GitHub's listing leaves out a runner that is running a job.
    instance = launch(stack)
    run_at(monkeypatch, 10)
    busy = register(stack, instance[0], busy=True)
    stack.github.leave_out_of_listings(busy)

    run_at(monkeypatch, 16)

    assert states(stack, instance) == {instance[0]: "running"}
    assert runner_ids(stack) == {busy}
    assert lookups == ["find_runner"]


def test_runner_found_by_its_id_tag_keeps_the_instance(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    run_at(monkeypatch, 10)
    runner = register(stack, instance[0], busy=True)
    stack.boto("ec2").create_tags(Resources=instance,
                                  Tags=[{"Key": TAG_RUNNER_ID, "Value": str(runner)}])
    stack.github.leave_out_of_listings(runner)

    run_at(monkeypatch, 16)

    assert states(stack, instance) == {instance[0]: "running"}
    assert stack.github.count(GET_ORG_RUNNER) == 1


def test_runner_id_tag_of_a_deleted_runner_lets_the_instance_go(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    stack.boto("ec2").create_tags(Resources=instance,
                                  Tags=[{"Key": TAG_RUNNER_ID, "Value": "987654"}])
    run_at(monkeypatch, 10)

    run_at(monkeypatch, 16)

    assert states(stack, instance) == {instance[0]: "terminated"}
    assert stack.github.count(GET_ORG_RUNNER) == 1


def test_a_failing_look_up_keeps_the_instance(stack: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    stack.boto("ec2").create_tags(Resources=instance,
                                  Tags=[{"Key": TAG_RUNNER_ID, "Value": "987654"}])
    run_at(monkeypatch, 10)
    stack.github.fail_next(GET_ORG_RUNNER, n=8, status=502)

    run_at(monkeypatch, 16)

    assert states(stack, instance) == {instance[0]: "running"}


def test_a_look_up_that_times_out_keeps_the_instance(stack: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    run_at(monkeypatch, 10)

    def timed_out(*_: Any, **__: Any) -> None:
        raise RetryableError("GET /orgs/{org}/actions/runners: timed out")

    monkeypatch.setattr(GitHubClient, "find_runner", timed_out)
    run_at(monkeypatch, 16)

    assert states(stack, instance) == {instance[0]: "running"}


def test_an_instance_that_registered_after_all_loses_its_mark(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = launch(stack)
    run_at(monkeypatch, 10)
    register(stack, instance[0], busy=True)  # booted slowly, then took a job

    run_at(monkeypatch, 16)

    assert states(stack, instance) == {instance[0]: "running"}
    assert TAG_ORPHAN_SUSPECTED not in tags(stack, instance[0])
    assert stack.aws_faults.count("ec2", "DeleteTags") == 1


def test_a_failed_mark_fails_the_run_and_terminates_nothing(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    orphan = launch(stack)
    stack.aws_faults.fail_next("ec2", "CreateTags", "UnauthorizedOperation", status=403)

    with pytest.raises(RetryableError, match="orphan marks"):
        run_at(monkeypatch, 10)

    assert states(stack, orphan) == {orphan[0]: "running"}
    assert TAG_ORPHAN_SUSPECTED not in tags(stack, orphan[0])
