"""The ghost rule: which offline runners to deregister because their instance is gone.

A runner is a ghost only when all of these hold:
- its name is `<RUNNER_NAME_PREFIX><instance-id>`: another name is not one this system gives
  (a laptop, another tool's runner), and is never touched;
- it is offline and not busy;
- its instance is known gone: EC2 says `shutting-down` or `terminated`, or EC2 did not know the
  id in two runs at least a scale-down interval apart (DescribeInstances lags a fresh launch: a
  just-created JIT runner's instance may not be listed yet);
- and, when EC2 knows the instance, it is this deployment's (`ghr:Application` and
  `ghr:environment`): with the default empty prefix, another deployment's runners (the
  Terraform module running side by side during a migration) carry names of the same form.
Never a runner of a `ghr:bypass-removal` instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chalicelib.models import APPLICATION, TAG_APPLICATION, TAG_ENVIRONMENT, Instance, Runner
from chalicelib.rules.removals import MARK_MIN_AGE, OwnerKey, Removal, instance_id_of
from chalicelib.settings import Settings

GONE_STATES = frozenset({"shutting-down", "terminated"})


@dataclass(frozen=True)
class GhostFacts:
    """The second look at the instances that ghost candidates name, outside the listing.

    `instances`: what a DescribeInstances by id found, in any environment; `looked_up`: the ids
    asked about (asked and not found: absent from EC2); `absent_since`: when each id was first
    found absent (the state table's marks), or None when the table could not be read, which
    makes no runner a ghost by absence.
    """

    instances: Mapping[str, Instance]
    looked_up: frozenset[str]
    absent_since: Mapping[str, datetime] | None


@dataclass(frozen=True)
class GhostPlan:
    """Ghosts to deregister; ids to look up first; absence marks to write and to forget."""

    removals: tuple[Removal, ...] = ()
    unknown: tuple[str, ...] = ()
    mark_absent: tuple[str, ...] = ()
    clear_absent: tuple[str, ...] = ()


def is_ours(instance: Instance, settings: Settings) -> bool:
    """Whether `instance` carries this deployment's application and environment tags."""
    return (instance.tag(TAG_APPLICATION) == APPLICATION
            and instance.tag(TAG_ENVIRONMENT) == settings.environment)


def plan_ghosts(runners: Mapping[OwnerKey, Sequence[Runner]], listed: Mapping[str, Instance],
                facts: GhostFacts | None, settings: Settings, now: datetime) -> GhostPlan:
    """Decide the ghosts among `runners` from the environment's `listed` instances (any state)
    and, once taken, the second look `facts`."""
    known = {**(facts.instances if facts else {}), **listed}
    removals: list[Removal] = []
    unknown: set[str] = set()
    absent: set[str] = set()
    for (owner, runner_type), owner_runners in sorted(runners.items()):
        for runner in owner_runners:
            instance_id = instance_id_of(runner.name, settings.runner_name_prefix)
            if instance_id is None or runner.busy or runner.status == "online":
                continue
            instance = known.get(instance_id)
            reason = None
            if instance is not None:
                # The listing's instances are this deployment's by its filter.
                reason = _gone(instance, instance_id in listed or is_ours(instance, settings))
            elif facts is None or instance_id not in facts.looked_up:
                unknown.add(instance_id)
            else:
                absent.add(instance_id)
                reason = _long_absent(instance_id, facts, now)
            if reason is not None:
                removals.append(Removal("ghost", owner, runner_type, None, runner.id, reason))
    marks = facts.absent_since if facts else None
    return GhostPlan(
        removals=tuple(removals), unknown=tuple(sorted(unknown)),
        mark_absent=tuple(sorted(absent - set(marks))) if marks is not None else (),
        # An id EC2 knows again (it listed late) is no longer absent: its mark goes.
        clear_absent=tuple(sorted(set(marks) & set(known))) if marks is not None else (),
    )


def _gone(instance: Instance, ours: bool) -> str | None:
    """The ghost reason for a runner of `instance` that EC2 knows, or None to keep it."""
    if instance.bypass_removal or not ours:
        return None
    return f"instance {instance.state}" if instance.state in GONE_STATES else None


def _long_absent(instance_id: str, facts: GhostFacts, now: datetime) -> str | None:
    """The ghost reason for a runner whose instance EC2 does not know, or None to keep it."""
    if facts.absent_since is None:
        return None  # the marks are unknown: not known gone
    since = facts.absent_since.get(instance_id)
    if since is None or now - since < MARK_MIN_AGE:
        return None
    return "instance absent from EC2 since " + since.strftime("%Y-%m-%dT%H:%M:%SZ")
