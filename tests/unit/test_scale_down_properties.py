"""Properties of scale-down over random fleets and GitHub states (hypothesis).

The plan is the real `plan_scale_down`; its removals are applied by the real executor
(`scale_down._Run.apply`) over an in-memory GitHub that, like GitHub, refuses (422) to delete a
runner running a job. Between the snapshot and the deletions, random runners take a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chalicelib.models import LIVE_STATES, TAG_BYPASS_REMOVAL, Instance, Runner
from chalicelib.rules.cron import parse_cron
from chalicelib.rules.idle_windows import IdleWindow
from chalicelib.rules.scale_down import ABSENT, OwnerKey, plan_scale_down
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
    deleted: list[int] = field(default_factory=list)

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


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Instance], dict[OwnerKey, list[Runner]], set[int]]:
    """Instances, runner listings per owner, and the runners that take a job after the listing."""
    instances: list[Instance] = []
    runners: dict[OwnerKey, list[Runner]] = {owner: [] for owner in OWNERS}
    next_id = 1
    for n in range(draw(st.integers(0, 14))):
        owner = draw(st.sampled_from(OWNERS))
        bypass = draw(st.integers(0, 9)) == 0
        instance = Instance(
            instance_id=f"i-{n:08x}", owner=owner[0], runner_type=owner[1],
            launch_time=NOW - timedelta(minutes=draw(st.floats(0, 30))),
            state=draw(st.sampled_from(STATES)),
            tags=((TAG_BYPASS_REMOVAL, "true"),) if bypass else (),
        )
        instances.append(instance)
        kind = draw(st.sampled_from(RUNNER_KINDS))
        if kind != "none":
            runners[owner].append(Runner(
                id=next_id, name=instance.instance_id, busy=kind in ("busy", "offline_busy"),
                status="offline" if kind.startswith("offline") else "online"))
            next_id += 1
    for n in range(draw(st.integers(0, 3))):  # runners of instances EC2 no longer knows
        owner = draw(st.sampled_from(OWNERS))
        runners[owner].append(Runner(id=next_id, name=f"i-{0xf0000 + n:08x}",
                                     busy=draw(st.booleans()), status="offline"))
        next_id += 1
    all_ids = [r.id for rs in runners.values() for r in rs]
    takes_job = set(draw(st.lists(st.sampled_from(all_ids), unique=True))) if all_ids else set()
    return instances, runners, takes_job


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
def test_scale_down_properties(world: tuple[list[Instance], dict[OwnerKey, list[Runner]],
                                            set[int]], config: Settings) -> None:
    instances, runners, takes_job = world
    known = {i.instance_id for i in instances}
    unknown = {r.name: ABSENT for rs in runners.values() for r in rs if r.name not in known}
    plan = plan_scale_down(instances, runners, config, NOW, instance_states=unknown,
                           confirmed_owners=frozenset(OWNERS))
    truth = GroundTruth({r.id: r.busy or r.id in takes_job for rs in runners.values() for r in rs})
    ec2 = Ec2Record()
    run = _Run(config, truth, ec2, None, 600.0, NOW)  # type: ignore[arg-type]
    report = run.apply(plan)

    by_instance = {r.name: r for rs in runners.values() for r in rs}
    terminated = set(ec2.terminated)
    assert set(report.terminated) == terminated
    busy_now = {r.name for rs in runners.values() for r in rs if truth.busy.get(r.id)}
    # No instance whose runner is running a job is ever terminated (R-DOWN-01), even when it
    # took the job after the listing: the DELETE answered 422 (R-DOWN-02, FI-18).
    assert not terminated & busy_now
    # Only live instances are terminated, never a bypass one; a terminated instance's runner
    # was deregistered first, or there was none.
    for instance in instances:
        if instance.instance_id in terminated:
            assert instance.state in LIVE_STATES and not instance.bypass_removal
            runner = by_instance.get(instance.instance_id)
            assert runner is None or runner.id in truth.deleted
    # A registered runner younger than the minimum running time is never removed.
    minimum = timedelta(minutes=config.minimum_running_time_in_minutes)
    for instance in instances:
        runner = by_instance.get(instance.instance_id)
        if instance.state in LIVE_STATES and runner and NOW - instance.launch_time < minimum:
            assert runner.id not in truth.deleted
            assert instance.instance_id not in terminated
    # At least min(idleCount, idle runners) idle runners remain.
    idle_count = config.scale_down_config[0].idle_count if config.scale_down_config else 0
    idle = [by_instance[i.instance_id] for i in instances
            if i.state in LIVE_STATES and i.instance_id in by_instance
            and by_instance[i.instance_id].status == "online"
            and not by_instance[i.instance_id].busy]
    remaining = [r for r in idle if r.id not in truth.deleted]
    assert len(remaining) >= min(idle_count, len(idle))
    # Ghost deregistrations only touch runners whose instance is not live.
    live = {i.instance_id for i in instances if i.state in LIVE_STATES}
    for runner_id in truth.deleted:
        runner = next(r for rs in runners.values() for r in rs if r.id == runner_id)
        assert runner.name in live or runner.status != "online"
