"""The scale-down decision: a pure function of a snapshot (instances, runners per owner), settings
and `now`, returning a frozen plan of what to deregister and terminate.

Safety does not rest on the plan alone: the executor deregisters a runner first and terminates its
instance only when GitHub answers "deleted" (a busy runner cannot be deregistered, 422). The plan
only decides who is worth trying. Rules, per owner whose runners could be listed:

- `ghr:bypass-removal=true` instances are invisible: never removed, never counted.
- No runner yet: booting until `RUNNER_BOOT_TIME_IN_MINUTES`, then an orphan (terminated), once a
  second listing of the owner confirms the runner is really missing (a runner deleted elsewhere
  mid-listing shifts GitHub's pages, so one listing can miss a live runner).
- Busy: kept, and not counted against the idle quota.
- Offline and idle: booting (a JIT runner is offline until `run.sh`) until the boot time (and the
  minimum running time), then an orphan: it never came online, or it died; it takes no job.
- Online and idle: younger than `MINIMUM_RUNNING_TIME_IN_MINUTES` stays; the rest compete for the
  active window's `idleCount`, counted across owners; the eviction strategy picks who leaves.
- Ghosts: offline, idle runners named `<prefix><instance-id>` whose instance is known to be
  neither running nor pending (also in no other environment) are deregistered.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from chalicelib.models import LIVE_STATES, Instance, Runner, RunnerType
from chalicelib.rules.idle_windows import active_window
from chalicelib.rules.runners import runners_by_name
from chalicelib.settings import Settings

OwnerKey = tuple[str, RunnerType]
# A state for an instance id that EC2 does not know at all (long terminated, or never ours).
ABSENT = "absent"
# Registration tokens and JIT configs are valid one hour: past that a parameter is useless.
TOKEN_TTL = timedelta(hours=1)
# DescribeInstances lags a fresh launch by seconds, and scale-up writes the token right after
# CreateFleet: a parameter this young is kept even if its instance is not visible yet.
TOKEN_GRACE = timedelta(minutes=1)

RemovalKind = Literal["orphan", "idle", "ghost"]


@dataclass(frozen=True)
class Removal:
    """One removal: deregister `runner_id` (if any), then terminate `instance_id` (if any)."""

    kind: RemovalKind
    owner: str
    runner_type: RunnerType
    instance_id: str | None
    runner_id: int | None
    reason: str


@dataclass(frozen=True)
class ScaleDownPlan:
    """What one scale-down run tries, and why the rest stays."""

    removals: tuple[Removal, ...]
    idle_count: int
    eviction_strategy: str
    window: str | None
    kept: Mapping[str, int] = field(default_factory=dict)
    skipped_owners: tuple[OwnerKey, ...] = ()
    # Owners with runner-less instances past boot time: list them once more, then re-plan.
    suspect_owners: tuple[OwnerKey, ...] = ()
    # Instance ids named by runners whose state is unknown: look them up, then re-plan.
    unknown_instance_ids: tuple[str, ...] = ()

    @property
    def needs_confirmation(self) -> bool:
        """Whether a second look (listing, instance lookup) would let the plan decide more."""
        return bool(self.suspect_owners or self.unknown_instance_ids)

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
        }


class TokenParameter(Protocol):
    """A token parameter as the SSM adapter lists it."""

    @property
    def name(self) -> str: ...

    @property
    def last_modified(self) -> datetime: ...


def instance_id_of(runner_name: str, prefix: str) -> str | None:
    """The instance id in a runner name `<prefix><instance-id>`, or None for another name."""
    if not runner_name.startswith(prefix):
        return None
    rest = runner_name[len(prefix):]
    return rest if re.fullmatch(r"i-[0-9a-f]{8,17}", rest) else None


Verdict = Literal["keep", "skip", "suspect", "orphan", "idle"]


@dataclass(frozen=True)
class InstanceDecision:
    """One live instance's fate in a run: `keep` it (`skip`: its owner could not be listed;
    `suspect`: list its owner again first), remove it as an `orphan`, or let it compete for the
    idle quota (`idle`). `reason` names a kept count or a removal's reason."""

    verdict: Verdict
    reason: str
    runner_id: int | None = None


def classify_instance(
    instance: Instance,
    owner_runners: Mapping[str, Runner] | None,
    settings: Settings,
    now: datetime,
    *,
    confirmed: bool = False,
) -> InstanceDecision:
    """Decide one live instance from its owner's runners by name (`rules.runners`; None: the
    owner's listing failed);
    `confirmed`: the owner was listed twice, so a missing runner is really missing."""
    if instance.bypass_removal:
        return InstanceDecision("keep", "bypass")
    if owner_runners is None:
        return InstanceDecision("skip", "owner_unknown")
    age = now - instance.launch_time
    boot = timedelta(minutes=settings.runner_boot_time_in_minutes)
    runner = owner_runners.get(settings.runner_name_prefix + instance.instance_id)
    if runner is None:
        if age < boot:
            return InstanceDecision("keep", "booting")
        if confirmed:
            return InstanceDecision("orphan", "no runner after boot time")
        return InstanceDecision("suspect", "suspected_orphan")
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
    instance_states: Mapping[str, str] | None = None,
    confirmed_owners: frozenset[OwnerKey] = frozenset(),
) -> ScaleDownPlan:
    """Decide the removals of one run.

    `instances`: this environment's instances in any state (the live ones are decided on; the
    others name owners and dead instance ids). `runners`: the runners of each owner whose listing
    succeeded; an owner missing here is skipped whole (no decision on unknown GitHub state).
    `instance_states`: states of further instance ids looked up outside the environment
    (`ABSENT` when EC2 does not know them). `confirmed_owners`: owners listed twice.
    """
    window = active_window(settings.scale_down_config, now)
    idle_count = window.idle_count if window else 0
    strategy = window.eviction_strategy if window else "oldest_first"
    by_name = {owner: runners_by_name(listed) for owner, listed in runners.items()}
    decided = [
        (instance, classify_instance(instance, by_name.get(owner_key(instance)), settings, now,
                                     confirmed=owner_key(instance) in confirmed_owners))
        for instance in instances if instance.state in LIVE_STATES
    ]
    kept = dict(Counter(d.reason for _, d in decided if d.verdict in ("keep", "skip", "suspect")))
    orphans = [Removal("orphan", i.owner, i.runner_type, i.instance_id, d.runner_id, d.reason)
               for i, d in decided if d.verdict == "orphan"]
    idle = [(i, d.runner_id) for i, d in decided if d.verdict == "idle"]
    idle_removals = _evict(idle, idle_count, strategy)
    if len(idle) > len(idle_removals):
        kept["idle"] = len(idle) - len(idle_removals)

    states = {i.instance_id: i.state for i in instances}
    states.update(instance_states or {})
    bypassed = {i.instance_id for i in instances if i.bypass_removal}
    ghosts, unknown = _ghosts(runners, states, bypassed, settings.runner_name_prefix)
    return ScaleDownPlan(
        removals=tuple(orphans + idle_removals + ghosts),
        idle_count=idle_count,
        eviction_strategy=strategy,
        window=window.cron.expression if window else None,
        kept=kept,
        skipped_owners=tuple(sorted({owner_key(i) for i, d in decided if d.verdict == "skip"})),
        suspect_owners=tuple(sorted({owner_key(i) for i, d in decided if d.verdict == "suspect"})),
        unknown_instance_ids=tuple(sorted(unknown)),
    )


def owner_key(instance: Instance) -> OwnerKey:
    """The instance's owner as one key whatever the case of its tag: GitHub names ignore case,
    so `ACME` and `acme` are one owner (one listing, one set of runners)."""
    return (instance.owner.lower(), instance.runner_type)


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
    return [Removal("idle", i.owner, i.runner_type, i.instance_id, runner_id, "idle")
            for i, runner_id in leaving]


def _ghosts(runners: Mapping[OwnerKey, Sequence[Runner]], states: Mapping[str, str],
            bypassed: set[str], prefix: str) -> tuple[list[Removal], set[str]]:
    """Offline idle runners of dead instances; and the instance ids still to look up."""
    ghosts: list[Removal] = []
    unknown: set[str] = set()
    for (owner, runner_type), owner_runners in sorted(runners.items()):
        for runner in owner_runners:
            instance_id = instance_id_of(runner.name, prefix)
            if instance_id is None or runner.busy or runner.status == "online":
                continue
            state = states.get(instance_id)
            if state is None:
                unknown.add(instance_id)
            elif state not in LIVE_STATES and instance_id not in bypassed:
                ghosts.append(Removal("ghost", owner, runner_type, None, runner.id,
                                      f"instance {state}"))
    return ghosts, unknown


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
