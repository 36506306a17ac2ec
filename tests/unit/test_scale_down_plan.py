"""The scale-down plan as a pure function of instances, runners, settings and `now`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.models import TAG_BYPASS_REMOVAL, Instance, Runner, RunnerType
from chalicelib.rules.cron import parse_cron
from chalicelib.rules.idle_windows import IdleWindow
from chalicelib.rules.scale_down import (
    OwnerKey,
    ScaleDownPlan,
    instance_id_of,
    plan_scale_down,
    plan_stale_tokens,
)
from chalicelib.settings import Settings

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
ORG: OwnerKey = ("acme", "Org")
_ids = itertools.count(0x1000)


def settings(windows: Sequence[IdleWindow] = (), minimum: float = 5, boot: float = 5,
             prefix: str = "") -> Settings:
    return Settings(environment="test", scale_down_config=tuple(windows),
                    minimum_running_time_in_minutes=minimum, runner_boot_time_in_minutes=boot,
                    runner_name_prefix=prefix)


def window(idle: int, strategy: str = "oldest_first", cron: str = "* * * * *") -> IdleWindow:
    return IdleWindow(cron=parse_cron(cron), time_zone="UTC", idle_count=idle,
                      eviction_strategy=strategy)  # type: ignore[arg-type]


def make_instance(age_min: float = 30, owner: str = "acme", runner_type: RunnerType = "Org",
                  state: str = "running", bypass: bool = False,
                  tags: dict[str, str] | None = None) -> Instance:
    pairs = (((TAG_BYPASS_REMOVAL, "true"),) if bypass else ()) + tuple((tags or {}).items())
    return Instance(instance_id=f"i-{next(_ids):08x}", launch_time=NOW - timedelta(minutes=age_min),
                    state=state, owner=owner, runner_type=runner_type, tags=pairs)


def make_runner(instance: Instance | str, busy: bool = False, status: str = "online",
                prefix: str = "") -> Runner:
    instance_id = instance if isinstance(instance, str) else instance.instance_id
    return Runner(id=next(_ids), name=prefix + instance_id, status=status, busy=busy)


def plan(instances: Sequence[Instance], runners: Sequence[Runner],
         config: Settings | None = None, **options: object) -> ScaleDownPlan:
    return plan_scale_down(instances, {ORG: list(runners)}, config or settings(), NOW,
                           **options)  # type: ignore[arg-type]


def removed(result: ScaleDownPlan, kind: str | None = None) -> set[str | None]:
    return {r.instance_id for r in result.removals if kind is None or r.kind == kind}


def test_plan_idle_runner_past_minimum_running_time_is_removed_after_deregistration() -> None:
    instance = make_instance(age_min=10)
    runner = make_runner(instance)
    result = plan([instance], [runner])
    assert [(r.kind, r.instance_id, r.runner_id) for r in result.removals] == [
        ("idle", instance.instance_id, runner.id)]


def test_plan_idle_runner_younger_than_minimum_running_time_stays() -> None:
    young = make_instance(age_min=4)
    result = plan([young], [make_runner(young)], settings(minimum=5))
    assert result.removals == ()
    assert result.kept["young"] == 1


def test_plan_decimal_minimum_running_time() -> None:
    instance = make_instance(age_min=0.75)
    assert removed(plan([instance], [make_runner(instance)], settings(minimum=0.5, boot=0.5)))
    assert not removed(plan([instance], [make_runner(instance)], settings(minimum=1, boot=0.5)))


def test_plan_busy_runner_stays_and_does_not_use_the_idle_quota() -> None:
    busy = [make_instance(age_min=60) for _ in range(3)]
    idle = [make_instance(age_min=50), make_instance(age_min=40)]
    runners = [make_runner(i, busy=True) for i in busy] + [make_runner(i) for i in idle]
    result = plan(busy + idle, runners, settings([window(idle=2)]))
    assert result.removals == ()
    assert result.kept == {"busy": 3, "idle": 2}


def test_plan_offline_busy_runner_stays() -> None:
    instance = make_instance(age_min=60)
    result = plan([instance], [make_runner(instance, busy=True, status="offline")])
    assert result.removals == ()


def test_plan_idle_quota_oldest_first_keeps_the_newest() -> None:
    ages = [50, 10, 30, 40, 20]
    instances = [make_instance(age_min=a) for a in ages]
    runners = [make_runner(i) for i in instances]
    result = plan(instances, runners, settings([window(idle=2, strategy="oldest_first")]))
    by_age = {i.instance_id: a for i, a in zip(instances, ages, strict=True)}
    assert sorted(by_age[i] for i in removed(result) if i) == [30, 40, 50]
    # The oldest goes first: a run cut short has removed the right ones.
    assert [by_age[r.instance_id] for r in result.removals if r.instance_id] == [50, 40, 30]


def test_plan_idle_quota_newest_first_keeps_the_oldest() -> None:
    ages = [50, 10, 30, 40, 20]
    instances = [make_instance(age_min=a) for a in ages]
    runners = [make_runner(i) for i in instances]
    result = plan(instances, runners, settings([window(idle=2, strategy="newest_first")]))
    by_age = {i.instance_id: a for i, a in zip(instances, ages, strict=True)}
    assert [by_age[r.instance_id] for r in result.removals if r.instance_id] == [10, 20, 30]


def test_plan_idle_quota_is_counted_across_owners() -> None:
    a = [make_instance(age_min=40, owner="a"), make_instance(age_min=30, owner="a")]
    b = [make_instance(age_min=20, owner="b"), make_instance(age_min=10, owner="b")]
    runners = {("a", "Org"): [make_runner(i) for i in a], ("b", "Org"): [make_runner(i) for i in b]}
    result = plan_scale_down(a + b, runners, settings([window(idle=1)]), NOW)  # type: ignore[arg-type]
    assert removed(result) == {a[0].instance_id, a[1].instance_id, b[0].instance_id}
    assert result.kept == {"idle": 1}


def test_plan_inactive_window_keeps_no_idle_runner() -> None:
    night = window(idle=5, cron="* 0-6 * * *")
    instances = [make_instance(age_min=20) for _ in range(2)]
    result = plan(instances, [make_runner(i) for i in instances], settings([night]))
    assert removed(result, "idle") == {i.instance_id for i in instances}
    assert result.window is None and result.idle_count == 0


def test_plan_active_window_is_named_in_the_plan() -> None:
    result = plan([], [], settings([window(idle=2, cron="* 8-17 * * 1-5")]))
    assert result.window == "* 8-17 * * 1-5" and result.idle_count == 2


def test_plan_instance_without_runner_is_booting_within_boot_time() -> None:
    result = plan([make_instance(age_min=3)], [], settings(boot=5))
    assert result.removals == () and result.mark == () and result.kept == {"booting": 1}


def test_plan_instance_without_runner_past_boot_time_is_marked_not_removed() -> None:
    orphan = make_instance(age_min=6)
    result = plan([orphan], [], settings(boot=5))
    assert result.removals == ()
    assert result.mark == (orphan.instance_id,)
    assert result.kept == {"suspected_orphan": 1}


def test_plan_jit_runner_offline_within_boot_time_is_booting() -> None:
    instance = make_instance(age_min=2)
    result = plan([instance], [make_runner(instance, status="offline")], settings(boot=5))
    assert result.removals == () and result.kept == {"booting": 1}


def test_plan_runner_that_never_came_online_is_an_orphan_deregistered_first() -> None:
    instance = make_instance(age_min=8)
    runner = make_runner(instance, status="offline")
    result = plan([instance], [runner], settings(boot=5, minimum=5))
    assert [(r.kind, r.instance_id, r.runner_id) for r in result.removals] == [
        ("orphan", instance.instance_id, runner.id)]


def test_plan_offline_runner_younger_than_minimum_running_time_stays() -> None:
    instance = make_instance(age_min=4)
    runner = make_runner(instance, status="offline")
    result = plan([instance], [runner], settings(boot=2, minimum=5))
    assert result.removals == ()


def test_plan_orphans_are_not_counted_as_idle_capacity() -> None:
    dead_runner = make_instance(age_min=20)
    idle = make_instance(age_min=20)
    runners = [make_runner(dead_runner, status="offline"), make_runner(idle)]
    result = plan([dead_runner, idle], runners, settings([window(idle=1)]))
    assert removed(result) == {dead_runner.instance_id}
    assert result.kept == {"idle": 1}


def test_plan_ghost_runner_of_a_terminated_instance_is_deregistered() -> None:
    dead = make_instance(state="terminated")
    ghost = make_runner(dead, status="offline")
    result = plan([dead], [ghost])
    assert [(r.kind, r.instance_id, r.runner_id) for r in result.removals] == [
        ("ghost", None, ghost.id)]


def test_plan_ghost_candidate_of_an_unknown_instance_is_looked_up_first() -> None:
    ghost = make_runner("i-0abc12345678", status="offline")
    first = plan([], [ghost])
    assert first.removals == () and first.unknown_instance_ids == ("i-0abc12345678",)


def test_plan_ghost_rules_spare_online_busy_and_foreign_names() -> None:
    dead = make_instance(state="terminated")
    runners = [
        make_runner(dead, status="online"),
        make_runner(make_instance(state="stopped"), busy=True, status="offline"),
        Runner(id=1, name="laptop-of-alice", status="offline", busy=False),
    ]
    assert plan([dead], runners).removals == ()


def test_plan_ghosts_only_with_the_name_prefix() -> None:
    dead = make_instance(state="terminated")
    config = settings(prefix="ci-")
    ghost = make_runner(dead, status="offline", prefix="ci-")
    unprefixed = make_runner(dead, status="offline")
    result = plan([dead], [ghost, unprefixed], config)
    assert [r.runner_id for r in result.removals] == [ghost.id]


def test_plan_prefix_matches_runner_to_instance() -> None:
    instance = make_instance(age_min=20)
    result = plan([instance], [make_runner(instance, prefix="ci-")], settings(prefix="ci-"))
    assert removed(result, "idle") == {instance.instance_id}


def test_plan_runner_under_another_prefix_is_still_its_instances() -> None:
    """A prefix changed since launch (a runner configuration edited, or an environment taken
    over by a configuration with a prefix of its own): the busy runner registered under the old
    name keeps its instance, never taken for an orphan; an idle one is removed as idle."""
    busy, idle = make_instance(age_min=60), make_instance(age_min=60)
    runners = [make_runner(busy, busy=True, prefix="old-"), make_runner(idle, prefix="")]
    result = plan([busy, idle], runners, settings(prefix="new-"))
    assert removed(result, "idle") == {idle.instance_id}
    assert busy.instance_id not in removed(result) and busy.instance_id not in result.mark
    assert result.kept.get("busy") == 1


def test_plan_bypass_instances_are_never_removed_on_any_path() -> None:
    idle = make_instance(age_min=30, bypass=True)
    orphan_offline = make_instance(age_min=30, bypass=True)
    orphan_missing = make_instance(age_min=30, bypass=True)
    dead = make_instance(state="terminated", bypass=True)
    runners = [make_runner(idle), make_runner(orphan_offline, status="offline"),
               make_runner(dead, status="offline")]
    result = plan([idle, orphan_offline, orphan_missing, dead], runners)
    assert result.removals == () and result.mark == ()
    assert result.kept == {"bypass": 3}


def test_plan_owner_without_listing_is_skipped_whole() -> None:
    known = make_instance(age_min=30, owner="acme")
    unknown = make_instance(age_min=30, owner="down")
    result = plan_scale_down([known, unknown], {ORG: [make_runner(known)]}, settings(), NOW)
    assert removed(result) == {known.instance_id}
    assert result.skipped_owners == (("down", "Org"),)


def test_plan_repo_owners_are_keyed_with_their_type() -> None:
    repo = make_instance(age_min=30, owner="acme/app", runner_type="Repo")
    runners = {("acme/app", "Repo"): [make_runner(repo)]}
    result = plan_scale_down([repo], runners, settings(), NOW)  # type: ignore[arg-type]
    assert [(r.owner, r.runner_type) for r in result.removals] == [("acme/app", "Repo")]


def test_plan_busy_twin_of_a_runner_name_protects_the_instance() -> None:
    instance = make_instance(age_min=30)
    twins = [make_runner(instance), make_runner(instance, busy=True)]
    assert plan([instance], twins).removals == ()


def test_plan_pending_and_dead_instances_are_not_decided_as_idle() -> None:
    pending = make_instance(age_min=1, state="pending")
    stopping = make_instance(age_min=60, state="stopping")
    result = plan([pending, stopping], [make_runner(stopping)])
    assert result.removals == ()


def test_plan_summary_lists_removals_for_the_log() -> None:
    instance = make_instance(age_min=30)
    summary = plan([instance], [make_runner(instance)]).summary()
    assert summary["remove"] == {"idle": 1} and summary["window"] is None


def test_instance_id_of_runner_names() -> None:
    assert instance_id_of("ci-i-0123456789abcdef0", "ci-") == "i-0123456789abcdef0"
    assert instance_id_of("i-0123abcd", "") == "i-0123abcd"
    assert instance_id_of("ci-i-0123abcd", "") is None
    assert instance_id_of("other-i-0123abcd", "ci-") is None
    assert instance_id_of("ci-my-laptop", "ci-") is None


@dataclass(frozen=True)
class Param:
    name: str
    last_modified: datetime


def test_stale_tokens_of_dead_instances_and_past_one_hour_are_deleted() -> None:
    path = "/ghr/tokens"
    params = [
        Param(f"{path}/i-live", NOW - timedelta(minutes=10)),       # live, fresh: kept
        Param(f"{path}/i-live-old", NOW - timedelta(minutes=61)),   # live but token expired
        Param(f"{path}/i-dead", NOW - timedelta(minutes=5)),        # instance gone
        Param(f"{path}/i-new", NOW - timedelta(seconds=20)),        # not visible yet: grace
    ]
    stale = plan_stale_tokens(params, frozenset({"i-live", "i-live-old"}), NOW)
    assert stale == (f"{path}/i-dead", f"{path}/i-live-old")
