"""The marks of the scale-down plan (issue 13 items 1 and 2): suspected orphans wait a whole
interval and are looked up before they go; ghosts need their instance known gone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_scale_down_plan import NOW, ORG, make_instance, make_runner, plan, settings

from chalicelib.models import (
    APPLICATION,
    TAG_APPLICATION,
    TAG_ENVIRONMENT,
    TAG_ORPHAN_SUSPECTED,
    TAG_RUNNER_ID,
    Instance,
)
from chalicelib.rules.ghosts import GhostFacts
from chalicelib.rules.removals import MARK_MIN_AGE, SCALE_DOWN_INTERVAL, mark_value, parse_mark
from chalicelib.rules.scale_down import ScaleDownPlan, plan_scale_down

UNKNOWN = "i-0abc12345678"


def marked(minutes_ago: float, **tags: str) -> Instance:
    """An instance past the boot time, marked a suspected orphan `minutes_ago`."""
    value = mark_value(NOW - timedelta(minutes=minutes_ago))
    return make_instance(age_min=30, tags={TAG_ORPHAN_SUSPECTED: value, **tags})


def test_mark_value_is_iso_utc_to_the_second_and_reads_back() -> None:
    assert mark_value(NOW) == "2026-01-05T12:00:00Z"
    assert parse_mark(mark_value(NOW)) == NOW
    assert parse_mark("yesterday") is None and parse_mark("2026-01-05T12:00:00") is None


def test_the_mark_counts_from_one_interval_less_the_schedules_jitter() -> None:
    assert timedelta(minutes=5) == SCALE_DOWN_INTERVAL
    assert timedelta(minutes=4) < MARK_MIN_AGE < SCALE_DOWN_INTERVAL


def test_a_mark_younger_than_the_interval_keeps_the_instance_without_marking_again() -> None:
    result = plan([marked(3)], [])
    assert result.removals == () and result.mark == ()
    assert result.kept == {"suspected_orphan": 1}


def test_a_mark_an_interval_old_makes_an_orphan_to_look_up_by_name() -> None:
    instance = marked(5)
    [removal] = plan([instance], [], settings(prefix="ci-")).removals
    assert (removal.kind, removal.instance_id, removal.runner_id) == (
        "orphan", instance.instance_id, None)
    assert removal.lookup_name == "ci-" + instance.instance_id
    assert removal.lookup_runner_id is None


def test_an_orphan_with_a_runner_id_tag_is_looked_up_by_that_id() -> None:
    [removal] = plan([marked(10, **{TAG_RUNNER_ID: "4242"})], []).removals
    assert removal.lookup_runner_id == 4242


def test_a_mark_that_is_not_a_time_is_written_again() -> None:
    instance = make_instance(age_min=30, tags={TAG_ORPHAN_SUSPECTED: "true"})
    result = plan([instance], [])
    assert result.removals == () and result.mark == (instance.instance_id,)


@pytest.mark.parametrize(("busy", "status"), [(True, "online"), (False, "online"),
                                               (False, "offline")])
def test_a_marked_instance_whose_runner_is_listed_again_loses_its_mark(
        busy: bool, status: str) -> None:
    instance = marked(10)
    result = plan([instance], [make_runner(instance, busy=busy, status=status)])
    assert result.unmark == (instance.instance_id,)
    assert all(r.runner_id is not None for r in result.removals)


def test_an_owner_that_could_not_be_listed_is_neither_marked_nor_unmarked() -> None:
    fresh, old = make_instance(age_min=30), marked(10)
    result = plan_scale_down([fresh, old], {}, settings(), NOW)
    assert result.mark == () and result.unmark == () and result.removals == ()
    assert result.skipped_owners == (ORG,)


def test_owners_compare_without_case() -> None:
    upper = make_instance(age_min=30, owner="ACME")
    result = plan([upper], [make_runner(upper)])  # listed under ("acme", "Org")
    assert [(r.kind, r.owner) for r in result.removals] == [("idle", "acme")]


def ours(state: str, environment: str = "test") -> Instance:
    return make_instance(state=state, tags={TAG_APPLICATION: APPLICATION,
                                            TAG_ENVIRONMENT: environment})


def facts(*found: Instance, looked_up: tuple[str, ...] = (UNKNOWN,),
          absent_since: dict[str, float] | None = None) -> GhostFacts:
    since = (None if absent_since is None else
             {i: NOW - timedelta(minutes=m) for i, m in absent_since.items()})
    return GhostFacts({i.instance_id: i for i in found},
                      frozenset(looked_up) | {i.instance_id for i in found}, since)


def ghosts_of(result: ScaleDownPlan) -> list[int | None]:
    return [r.runner_id for r in result.removals if r.kind == "ghost"]


@pytest.mark.parametrize(("state", "ghost"), [("terminated", True), ("shutting-down", True),
                                              ("stopped", False), ("stopping", False),
                                              ("running", False), ("pending", False)])
def test_a_looked_up_instance_of_ours_is_gone_only_terminated_or_shutting_down(
        state: str, ghost: bool) -> None:
    instance = ours(state)
    runner = make_runner(instance, status="offline")
    result = plan([], [runner], ghost_facts=facts(instance))
    assert ghosts_of(result) == ([runner.id] if ghost else [])


@pytest.mark.parametrize("instance", [
    ours("terminated", environment="another-deployment"),
    make_instance(state="terminated"),  # no ghr tags at all
    make_instance(state="terminated", bypass=True,
                  tags={TAG_APPLICATION: APPLICATION, TAG_ENVIRONMENT: "test"}),
])
def test_a_runner_of_another_deployments_or_a_bypass_instance_is_never_a_ghost(
        instance: Instance) -> None:
    runner = make_runner(instance, status="offline")
    assert ghosts_of(plan([], [runner], ghost_facts=facts(instance))) == []


def test_an_absent_instance_is_recorded_first_then_a_ghost_an_interval_later() -> None:
    runner = make_runner(UNKNOWN, status="offline")
    first = plan([], [runner], ghost_facts=facts(absent_since={}))
    assert ghosts_of(first) == [] and first.mark_absent == (UNKNOWN,)
    soon = plan([], [runner], ghost_facts=facts(absent_since={UNKNOWN: 3}))
    assert ghosts_of(soon) == [] and soon.mark_absent == ()
    later = plan([], [runner], ghost_facts=facts(absent_since={UNKNOWN: 5}))
    assert ghosts_of(later) == [runner.id]


def test_without_the_absence_marks_no_runner_is_a_ghost_by_absence() -> None:
    runner = make_runner(UNKNOWN, status="offline")
    result = plan([], [runner], ghost_facts=facts(absent_since=None))
    assert ghosts_of(result) == [] and result.mark_absent == ()


def test_an_instance_ec2_knows_again_loses_its_absence_mark() -> None:
    listed_late = ours("running")
    runners = [make_runner(listed_late, status="offline"), make_runner(UNKNOWN, status="offline")]
    result = plan([listed_late], runners,
                  ghost_facts=facts(absent_since={listed_late.instance_id: 6, UNKNOWN: 1}))
    assert result.clear_absent == (listed_late.instance_id,)
    assert ghosts_of(result) == []


def test_a_busy_or_online_runner_is_never_a_ghost_even_long_absent() -> None:
    runners = [make_runner(UNKNOWN, status="offline", busy=True),
               make_runner(UNKNOWN, status="online")]
    result = plan([], runners, ghost_facts=facts(absent_since={UNKNOWN: 60}))
    assert ghosts_of(result) == []
