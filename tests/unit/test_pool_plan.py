"""The pool plan: top up to `poolSize` counting idle and booting runners, clamped to the cap."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.errors import ConfigError
from chalicelib.models import Instance, Runner
from chalicelib.rules.pool import plan_pool
from chalicelib.services.pool import pool_size_of
from chalicelib.settings import Settings

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
_ids = itertools.count(0x2000)


def settings(maximum: int = 10, boot: float = 5, prefix: str = "") -> Settings:
    return Settings(environment="test", runners_maximum_count=maximum,
                    runner_boot_time_in_minutes=boot, runner_name_prefix=prefix,
                    runner_owner="acme")


def make_instance(age_min: float = 30, state: str = "running") -> Instance:
    return Instance(instance_id=f"i-{next(_ids):08x}", launch_time=NOW - timedelta(minutes=age_min),
                    state=state, owner="acme")


def make_runner(instance: Instance, busy: bool = False, status: str = "online",
                prefix: str = "") -> Runner:
    return Runner(id=next(_ids), name=prefix + instance.instance_id, status=status, busy=busy)


def test_pool_empty_launches_the_pool_size() -> None:
    plan = plan_pool("acme", 3, [], [], settings(), NOW)
    assert plan.launch == 3 and plan.available == 0


def test_pool_counts_idle_online_runners_and_not_busy_ones() -> None:
    idle = [make_instance() for _ in range(2)]
    busy = make_instance()
    runners = [make_runner(i) for i in idle] + [make_runner(busy, busy=True)]
    plan = plan_pool("acme", 3, [*idle, busy], runners, settings(), NOW)
    assert (plan.idle_online, plan.booting, plan.launch) == (2, 0, 1)


def test_pool_counts_instances_within_boot_time_as_booting() -> None:
    no_runner_yet = make_instance(age_min=1, state="pending")
    jit_offline = make_instance(age_min=2)
    plan = plan_pool("acme", 3, [no_runner_yet, jit_offline],
                     [make_runner(jit_offline, status="offline")], settings(boot=5), NOW)
    assert (plan.idle_online, plan.booting, plan.launch) == (0, 2, 1)


def test_pool_does_not_count_instances_past_boot_time_without_an_online_runner() -> None:
    stuck = make_instance(age_min=10)
    never_online = make_instance(age_min=10)
    plan = plan_pool("acme", 2, [stuck, never_online],
                     [make_runner(never_online, status="offline")], settings(boot=5), NOW)
    assert plan.available == 0
    assert plan.launch == 2


def test_pool_clamps_to_the_maximum_over_running_and_pending() -> None:
    busy = [make_instance(), make_instance(state="pending")]
    runners = [make_runner(busy[0], busy=True)]
    plan = plan_pool("acme", 5, busy, runners, settings(maximum=3, boot=0.5), NOW)
    assert plan.current == 2 and plan.launch == 1


def test_pool_at_the_maximum_launches_nothing() -> None:
    busy = [make_instance() for _ in range(3)]
    plan = plan_pool("acme", 5, busy, [make_runner(i, busy=True) for i in busy],
                     settings(maximum=3), NOW)
    assert plan.launch == 0


def test_pool_without_cap_tops_up_fully() -> None:
    busy = [make_instance() for _ in range(3)]
    plan = plan_pool("acme", 4, busy, [make_runner(i, busy=True) for i in busy],
                     settings(maximum=-1), NOW)
    assert plan.launch == 4


def test_pool_dead_instances_are_ignored() -> None:
    gone = make_instance(state="terminated")
    plan = plan_pool("acme", 1, [gone], [make_runner(gone)], settings(maximum=1), NOW)
    assert plan.current == 0 and plan.launch == 1


def test_pool_full_launches_nothing() -> None:
    idle = [make_instance() for _ in range(4)]
    plan = plan_pool("acme", 3, idle, [make_runner(i) for i in idle], settings(), NOW)
    assert plan.launch == 0


def test_pool_runner_names_use_the_prefix() -> None:
    idle = make_instance()
    plan = plan_pool("acme", 1, [idle], [make_runner(idle, prefix="ci-")], settings(prefix="ci-"),
                     NOW)
    assert plan.idle_online == 1 and plan.launch == 0


@pytest.mark.parametrize("event", [{}, {"poolSize": -1}, {"poolSize": "3"}, {"poolSize": True},
                                   {"poolSize": 2.5}])
def test_pool_size_of_rejects_a_bad_event(event: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="poolSize"):
        pool_size_of(event)


def test_pool_size_of_reads_the_count() -> None:
    assert pool_size_of({"poolSize": 0}) == 0
    assert pool_size_of({"poolSize": 4, "other": 1}) == 4


def test_pool_leaves_places_under_the_cap_for_the_queued_jobs() -> None:
    busy = [make_instance()]
    runners = [make_runner(busy[0], busy=True)]
    plan = plan_pool("acme", 5, busy, runners, settings(maximum=5), NOW, reserved=2)
    assert (plan.current, plan.reserved, plan.launch) == (1, 2, 2)
    full = plan_pool("acme", 5, busy, runners, settings(maximum=5), NOW, reserved=9)
    assert full.launch == 0


def test_pool_without_cap_ignores_the_queued_jobs() -> None:
    plan = plan_pool("acme", 3, [], [], settings(maximum=-1), NOW, reserved=7)
    assert plan.launch == 3
