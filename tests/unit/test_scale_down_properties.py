"""Properties of scale-down over random fleets and GitHub states (hypothesis).

The plan is the real `plan_scale_down`; its removals are applied by the real executor
(`scale_down._Run.apply`) over an in-memory GitHub that, like GitHub, refuses (422) to delete a
runner running a job and answers direct look-ups from its real state. Between the snapshot and
the deletions, random runners take a job; the listing the plan sees leaves random runners out
(busy ones too); instances carry orphan marks of random ages, and absent instances absence marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chalicelib.models import (
    LIVE_STATES,
    TAG_BYPASS_REMOVAL,
    TAG_ORPHAN_SUSPECTED,
    Instance,
    Runner,
)
from chalicelib.rules.cron import parse_cron
from chalicelib.rules.ghosts import GONE_STATES, GhostFacts
from chalicelib.rules.idle_windows import IdleWindow
from chalicelib.rules.removals import MARK_MIN_AGE, mark_value
from chalicelib.rules.scale_down import OwnerKey, plan_scale_down
from chalicelib.services.scale_down import _Run
from chalicelib.settings import Settings

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNERS: tuple[OwnerKey, ...] = (("acme", "Org"), ("beta/app", "Repo"))
STATES = ("running", "running", "running", "pending", "terminated", "stopped")
RUNNER_KINDS = ("none", "idle", "idle", "busy", "offline", "offline_busy")


@dataclass
class GroundTruth:
    """GitHub's real state: which runners exist and which are running a job."""

    busy: dict[int, bool]
    names: dict[int, str] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)

    def get_runner(self, owner: str, runner_type: str, runner_id: int) -> Runner | None:
        if runner_id not in self.busy:
            return None
        return Runner(runner_id, self.names.get(runner_id, ""), "online", self.busy[runner_id])

    def find_runner(self, owner: str, runner_type: str, name: str) -> Runner | None:
        found = [i for i, n in self.names.items() if n == name and i in self.busy]
        return self.get_runner(owner, runner_type, found[0]) if found else None

    def delete_runner(self, owner: str, runner_type: str, runner_id: int) -> str:
        if runner_id not in self.busy:
            return "not_found"
        if self.busy[runner_id]:
            return "busy"  # 422: "Runner is still running a job"
        del self.busy[runner_id]
        self.deleted.append(runner_id)
        return "deleted"


@dataclass
class Ec2Record:
    terminated: list[str] = field(default_factory=list)

    def terminate(self, instance_ids: list[str]) -> None:
        self.terminated.extend(instance_ids)


World = tuple[list[Instance], dict[OwnerKey, list[Runner]], set[int], set[int],
              dict[str, float]]
MARK_AGES = (None, None, 1.0, 4.0, 6.0, 30.0)  # minutes; None: not marked


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """Instances, runners per owner (GitHub's truth), the runners that take a job after the
    listing, the runners the listing leaves out, and absence marks (minutes old)."""
    instances: list[Instance] = []
    runners: dict[OwnerKey, list[Runner]] = {owner: [] for owner in OWNERS}
    next_id = 1
    for n in range(draw(st.integers(0, 14))):
        owner = draw(st.sampled_from(OWNERS))
        tags: tuple[tuple[str, str], ...] = ()
        if draw(st.integers(0, 9)) == 0:
            tags += ((TAG_BYPASS_REMOVAL, "true"),)
        mark_age = draw(st.sampled_from(MARK_AGES))
        if mark_age is not None:
            tags += ((TAG_ORPHAN_SUSPECTED, mark_value(NOW - timedelta(minutes=mark_age))),)
        instance = Instance(
            instance_id=f"i-{n:08x}", owner=owner[0], runner_type=owner[1],
            launch_time=NOW - timedelta(minutes=draw(st.floats(0, 30))),
            state=draw(st.sampled_from(STATES)), tags=tags,
        )
        instances.append(instance)
        kind = draw(st.sampled_from(RUNNER_KINDS))
        if kind != "none":
            runners[owner].append(Runner(
                id=next_id, name=instance.instance_id, busy=kind in ("busy", "offline_busy"),
                status="offline" if kind.startswith("offline") else "online"))
            next_id += 1
    absent: dict[str, float] = {}
    for n in range(draw(st.integers(0, 3))):  # runners of instances EC2 no longer knows
        owner = draw(st.sampled_from(OWNERS))
        name = f"i-{0xf0000 + n:08x}"
        runners[owner].append(Runner(id=next_id, name=name, busy=draw(st.booleans()),
                                     status="offline"))
        next_id += 1
        age = draw(st.sampled_from(MARK_AGES))
        if age is not None:
            absent[name] = age
    all_ids = [r.id for rs in runners.values() for r in rs]
    takes_job = set(draw(st.lists(st.sampled_from(all_ids), unique=True))) if all_ids else set()
    omitted = set(draw(st.lists(st.sampled_from(all_ids), unique=True))) if all_ids else set()
    return instances, runners, takes_job, omitted, absent


@st.composite
def configurations(draw: st.DrawFn) -> Settings:
    windows: tuple[IdleWindow, ...] = ()
    if draw(st.booleans()):
        windows = (IdleWindow(cron=parse_cron("* * * * *"), time_zone="UTC",
                              idle_count=draw(st.integers(0, 5)),
                              eviction_strategy=draw(st.sampled_from(
                                  ["oldest_first", "newest_first"]))),)
    return Settings(environment="test", scale_down_config=windows,
                    minimum_running_time_in_minutes=draw(st.floats(0, 15)),
                    runner_boot_time_in_minutes=draw(st.floats(0.1, 15)))


@hypothesis_settings(max_examples=300, deadline=None)
@given(world=worlds(), config=configurations())
def test_scale_down_properties(world: World, config: Settings) -> None:
    instances, runners, takes_job, omitted, absent_minutes = world
    known = {i.instance_id for i in instances}
    unknown = frozenset(r.name for rs in runners.values() for r in rs if r.name not in known)
    absent_since = {name: NOW - timedelta(minutes=age) for name, age in absent_minutes.items()}
    listing = {owner: [r for r in rs if r.id not in omitted] for owner, rs in runners.items()}
    plan = plan_scale_down(instances, listing, config, NOW,
                           ghost_facts=GhostFacts({}, unknown, absent_since))
    truth = GroundTruth({r.id: r.busy or r.id in takes_job for rs in runners.values() for r in rs},
                        {r.id: r.name for rs in runners.values() for r in rs})
    ec2 = Ec2Record()
    run = _Run(config, truth, ec2, None, 600.0, NOW)  # type: ignore[arg-type]
    report = run.apply(plan)

    by_instance = {r.name: r for rs in runners.values() for r in rs}
    terminated = set(ec2.terminated)
    assert set(report.terminated) == terminated
    busy_now = {r.name for rs in runners.values() for r in rs if truth.busy.get(r.id)}
    # No instance whose runner is running a job is ever terminated (R-DOWN-01), even when it
    # took the job after the listing (the DELETE answered 422: R-DOWN-02, FI-18) or the
    # listing left it out (the orphan's look-up found it).
    assert not terminated & busy_now
    # Only live instances are terminated, never a bypass one; a terminated instance's runner
    # was deregistered first, or GitHub has none.
    for instance in instances:
        if instance.instance_id in terminated:
            assert instance.state in LIVE_STATES and not instance.bypass_removal
            runner = by_instance.get(instance.instance_id)
            assert runner is None or runner.id in truth.deleted
    # An instance terminated without a listed runner had a mark at least an interval old.
    listed_names = {r.name for rs in listing.values() for r in rs}
    for instance in instances:
        if instance.instance_id in terminated and instance.instance_id not in listed_names:
            mark = instance.tag(TAG_ORPHAN_SUSPECTED) or ""
            assert mark and NOW - datetime.fromisoformat(mark) >= MARK_MIN_AGE
    # A registered runner younger than the minimum running time is never removed.
    minimum = timedelta(minutes=config.minimum_running_time_in_minutes)
    for instance in instances:
        runner = by_instance.get(instance.instance_id)
        if (instance.state in LIVE_STATES and runner and runner.id not in omitted
                and NOW - instance.launch_time < minimum):
            assert runner.id not in truth.deleted
            assert instance.instance_id not in terminated
    # At least min(idleCount, idle runners) listed idle runners remain.
    idle_count = config.scale_down_config[0].idle_count if config.scale_down_config else 0
    idle = [by_instance[i.instance_id] for i in instances
            if i.state in LIVE_STATES and i.instance_id in by_instance
            and by_instance[i.instance_id].id not in omitted
            and by_instance[i.instance_id].status == "online"
            and not by_instance[i.instance_id].busy]
    remaining = [r for r in idle if r.id not in truth.deleted]
    assert len(remaining) >= min(idle_count, len(idle))
    # Ghost deregistrations touch only runners whose instance is known gone: terminated or
    # shutting down, or absent from EC2 since at least an interval.
    states = {i.instance_id: i.state for i in instances}
    for runner_id in truth.deleted:
        runner = next(r for rs in runners.values() for r in rs if r.id == runner_id)
        if runner.name in states and states[runner.name] in LIVE_STATES:
            continue  # an orphan or idle removal of a live instance
        assert runner.status != "online" and not runner.busy
        assert (states.get(runner.name) in GONE_STATES
                or NOW - absent_since[runner.name] >= MARK_MIN_AGE)
