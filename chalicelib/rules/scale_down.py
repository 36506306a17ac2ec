"""The scale-down decision: a pure function of a snapshot (instances, runners per owner), settings
and `now`, returning a frozen plan of what to deregister, terminate and mark.

Safety does not rest on the plan alone: the executor deregisters a runner first and terminates its
instance only when GitHub answers "deleted" (a busy runner cannot be deregistered, 422). The plan
only decides who is worth trying. Rules, per owner whose runners could be listed (owners compare
without case, as GitHub names do):

- `ghr:bypass-removal=true` instances are invisible: never removed, never counted.
- No runner in the listing: booting until `RUNNER_BOOT_TIME_IN_MINUTES`; then marked
  `ghr:orphan-suspected=<run time>`; an orphan only once its mark is a scale-down interval old
  (`removals.MARK_MIN_AGE`), and terminated only after a direct look-up of its runner finds
  none (the executor's part). A listing that leaves out a runner running a job, or a slow boot
  that registers between two runs, keeps its instance. A marked instance whose runner is listed
  again loses its mark.
- Busy: kept, and not counted against the idle quota.
- Offline and idle: booting (a JIT runner is offline until `run.sh`) until the boot time (and the
  minimum running time), then an orphan deregistered first: it never came online, or it died.
- Online and idle: younger than `MINIMUM_RUNNING_TIME_IN_MINUTES` stays; the rest compete for the
  active window's `idleCount`, counted across owners; the eviction strategy picks who leaves.
- Ghosts: `rules/ghosts.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from chalicelib.models import (
    LIVE_STATES,
    TAG_ORPHAN_SUSPECTED,
    TAG_RUNNER_ID,
    Instance,
    Runner,
)
from chalicelib.rules.ghosts import GhostFacts, plan_ghosts
from chalicelib.rules.idle_windows import active_window
from chalicelib.rules.removals import (
    MARK_MIN_AGE,
    OwnerKey,
    Removal,
    RemovalKind,
    instance_id_of,
    parse_mark,
)
from chalicelib.rules.runners import runners_by_instance
from chalicelib.settings import Settings

__all__ = ["GhostFacts", "OwnerKey", "Removal", "RemovalKind", "instance_id_of"]

# Registration tokens and JIT configs are valid one hour: past that a parameter is useless.
TOKEN_TTL = timedelta(hours=1)
# DescribeInstances lags a fresh launch by seconds, and scale-up writes the token right after
# CreateFleet: a parameter this young is kept even if its instance is not visible yet.
TOKEN_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class ScaleDownPlan:
    """What one scale-down run tries, marks and forgets, and why the rest stays."""

    removals: tuple[Removal, ...]
    idle_count: int
    eviction_strategy: str
    window: str | None
    kept: Mapping[str, int] = field(default_factory=dict)
    skipped_owners: tuple[OwnerKey, ...] = ()
    # Instances to tag `ghr:orphan-suspected` (first seen without a runner), and to untag.
    mark: tuple[str, ...] = ()
    unmark: tuple[str, ...] = ()
    # Instance ids named by ghost candidates, outside the listing: look them up, then re-plan.
    unknown_instance_ids: tuple[str, ...] = ()
    # Instance ids first found absent from EC2 (record them), and found again (forget them).
    mark_absent: tuple[str, ...] = ()
    clear_absent: tuple[str, ...] = ()

    def summary(self) -> dict[str, object]:
        """The plan as log fields."""
        counts: dict[str, int] = {}
        for removal in self.removals:
            counts[removal.kind] = counts.get(removal.kind, 0) + 1
        return {
            "window": self.window, "idle_count": self.idle_count,
            "eviction_strategy": self.eviction_strategy, "remove": counts,
            "kept": dict(self.kept), "skipped_owners": [o for o, _ in self.skipped_owners],
            "removals": [[r.kind, r.owner, r.instance_id, r.runner_id] for r in self.removals],
            "mark": list(self.mark), "unmark": list(self.unmark),
            "absent": list(self.mark_absent),
        }


class TokenParameter(Protocol):
    """A token parameter as the SSM adapter lists it."""

    @property
    def name(self) -> str: ...

    @property
    def last_modified(self) -> datetime: ...


Verdict = Literal["keep", "skip", "mark", "orphan", "idle"]


@dataclass(frozen=True)
class InstanceDecision:
    """One live instance's fate in a run: `keep` it (`skip`: its owner could not be listed;
    `mark`: tag it as a suspected orphan), remove it as an `orphan`, or let it compete for the
    idle quota (`idle`). `reason` names a kept count or a removal's reason."""

    verdict: Verdict
    reason: str
    runner_id: int | None = None


def classify_instance(
    instance: Instance,
    owner_runners: Mapping[str, Runner] | None,
    settings: Settings,
    now: datetime,
) -> InstanceDecision:
    """Decide one live instance from its owner's runners by instance id (`rules.runners`; None:
    the owner's listing failed)."""
    if instance.bypass_removal:
        return InstanceDecision("keep", "bypass")
    if owner_runners is None:
        return InstanceDecision("skip", "owner_unknown")
    age = now - instance.launch_time
    boot = timedelta(minutes=settings.runner_boot_time_in_minutes)
    runner = owner_runners.get(instance.instance_id)
    if runner is None:
        if age < boot:
            return InstanceDecision("keep", "booting")
        marked = parse_mark(instance.tag(TAG_ORPHAN_SUSPECTED))
        if marked is None:
            return InstanceDecision("mark", "suspected_orphan")
        if now - marked < MARK_MIN_AGE:
            return InstanceDecision("keep", "suspected_orphan")
        return InstanceDecision("orphan", "no runner after boot time in two runs")
    minimum = timedelta(minutes=settings.minimum_running_time_in_minutes)
    return _registered(runner, age, boot, minimum)


def _registered(runner: Runner, age: timedelta, boot: timedelta,
                minimum: timedelta) -> InstanceDecision:
    """The decision for an instance whose runner is registered."""
    if runner.busy:
        return InstanceDecision("keep", "busy")
    if runner.status != "online":
        # A registered runner younger than the minimum stays, even offline.
        if age < max(boot, minimum):
            return InstanceDecision("keep", "booting")
        return InstanceDecision("orphan", "runner offline after boot time", runner.id)
    if age < minimum:
        return InstanceDecision("keep", "young")
    return InstanceDecision("idle", "idle", runner.id)


def plan_scale_down(
    instances: Sequence[Instance],
    runners: Mapping[OwnerKey, Sequence[Runner]],
    settings: Settings,
    now: datetime,
    *,
    ghost_facts: GhostFacts | None = None,
    known: Mapping[str, Instance] | None = None,
) -> ScaleDownPlan:
    """Decide the removals and marks of one run.

    `instances`: this environment's instances in any state (the live ones are decided on; the
    others name owners and dead instance ids). `runners`: the runners of each owner whose listing
    succeeded; an owner missing here is skipped whole (no decision on unknown GitHub state).
    `ghost_facts`: the second look at the instances ghost candidates name (`rules.ghosts`).
    `known`: every configuration's instances (§6), for the ghost rule; default `instances`.
    """
    window = active_window(settings.scale_down_config, now)
    idle_count = window.idle_count if window else 0
    strategy = window.eviction_strategy if window else "oldest_first"
    by_instance = {owner: runners_by_instance(listed) for owner, listed in runners.items()}
    decided = [(instance, classify_instance(instance, by_instance.get(owner_key(instance)),
                                            settings, now))
               for instance in instances if instance.state in LIVE_STATES]
    kept = dict(Counter(d.reason for _, d in decided if d.verdict in ("keep", "skip", "mark")))
    orphans = [_orphan(i, d, settings) for i, d in decided if d.verdict == "orphan"]
    idle = [(i, d.runner_id) for i, d in decided if d.verdict == "idle"]
    idle_removals = _evict(idle, idle_count, strategy)
    if len(idle) > len(idle_removals):
        kept["idle"] = len(idle) - len(idle_removals)
    listed = known if known is not None else {i.instance_id: i for i in instances}
    ghosts = plan_ghosts(runners, listed, ghost_facts, settings, now)
    return ScaleDownPlan(
        removals=tuple(orphans + idle_removals) + ghosts.removals,
        idle_count=idle_count,
        eviction_strategy=strategy,
        window=window.cron.expression if window else None,
        kept=kept,
        skipped_owners=tuple(sorted({owner_key(i) for i, d in decided if d.verdict == "skip"})),
        mark=tuple(sorted(i.instance_id for i, d in decided if d.verdict == "mark")),
        unmark=_registered_after_all(decided, by_instance),
        unknown_instance_ids=ghosts.unknown,
        mark_absent=ghosts.mark_absent,
        clear_absent=ghosts.clear_absent,
    )


def owner_key(instance: Instance) -> OwnerKey:
    """The instance's owner as one key whatever the case of its tag: GitHub names ignore case,
    so `ACME` and `acme` are one owner (one listing, one set of runners)."""
    return (instance.owner.lower(), instance.runner_type)


def _registered_after_all(decided: Sequence[tuple[Instance, InstanceDecision]],
                          by_instance: Mapping[OwnerKey, Mapping[str, Runner]]
                          ) -> tuple[str, ...]:
    """Marked instances whose runner is listed now: it booted slowly, or a listing missed it.
    Their mark goes, so that a later absence waits a whole interval again."""
    return tuple(sorted(
        i.instance_id for i, d in decided
        if d.verdict != "skip" and not i.bypass_removal
        and i.tag(TAG_ORPHAN_SUSPECTED) is not None
        and i.instance_id in by_instance.get(owner_key(i), {})))


def _orphan(instance: Instance, decision: InstanceDecision, settings: Settings) -> Removal:
    """The removal of an orphan; without a runner, what to look its runner up by first."""
    lookup_id = None
    if decision.runner_id is None:
        tagged = instance.tag(TAG_RUNNER_ID) or ""
        lookup_id = int(tagged) if tagged.isdigit() else None
    return Removal("orphan", *owner_key(instance), instance.instance_id, decision.runner_id,
                   decision.reason,
                   lookup_name=(settings.runner_name_prefix + instance.instance_id
                                if decision.runner_id is None else None),
                   lookup_runner_id=lookup_id)


def _evict(idle: list[tuple[Instance, int | None]], idle_count: int,
           strategy: str) -> list[Removal]:
    """Keep `idle_count` idle runners across owners; remove the rest in eviction order."""
    # oldest_first evicts the oldest: order newest first, keep the head, remove the tail.
    newest_first_order = strategy == "oldest_first"
    ordered = sorted(idle, key=lambda pair: (pair[0].launch_time, pair[0].instance_id),
                     reverse=newest_first_order)
    leaving = ordered[idle_count:]
    # Remove in eviction order (the first to go first), so a run cut short keeps the right ones.
    leaving.reverse()
    return [Removal("idle", *owner_key(i), i.instance_id, runner_id, "idle")
            for i, runner_id in leaving]


def plan_stale_tokens(parameters: Sequence[TokenParameter], live_instance_ids: frozenset[str],
                      now: datetime) -> tuple[str, ...]:
    """Token parameters to delete: past the token lifetime, or their instance is not live."""
    stale: list[str] = []
    for parameter in parameters:
        age = now - parameter.last_modified
        instance_id = parameter.name.rstrip("/").rsplit("/", 1)[-1]
        if age > TOKEN_TTL or (instance_id not in live_instance_ids and age > TOKEN_GRACE):
            stale.append(parameter.name)
    return tuple(sorted(stale))
