"""Scale-down over several runner configurations in one run (docs/REFERENCE.md §6): one plan
per configuration (a scope: its settings, its `ghr:environment`), over one snapshot.

The snapshot is shared: one DescribeInstances of every scope's environment, and one runner
listing per owner whatever the number of configurations naming it. Each scope decides its own
instances with its own settings (prefix, minimum running time, boot time, idle windows); the
ghost rule of every scope sees the instances of all of them, so that a runner of another
configuration's live instance is never taken for a ghost, and a ghost two scopes both find is
removed once. With one scope, the plan is `plan_scale_down`'s own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from chalicelib.models import TAG_ENVIRONMENT, Instance, Runner
from chalicelib.rules.ghosts import GhostFacts
from chalicelib.rules.removals import OwnerKey, Removal
from chalicelib.rules.scale_down import ScaleDownPlan, owner_key, plan_scale_down
from chalicelib.settings import Settings


def scope_owners(instances: Sequence[Instance], scopes: Sequence[Settings]) -> set[OwnerKey]:
    """Every owner to list once: those of the instances, and each scope's `RUNNER_OWNER`."""
    owners = {owner_key(i) for i in instances if i.owner}
    owners.update((s.runner_owner.lower(), "Org") for s in scopes if s.runner_owner)
    return owners


def plan_scopes(instances: Sequence[Instance], runners: Mapping[OwnerKey, Sequence[Runner]],
                scopes: Sequence[Settings], now: datetime, *,
                ghost_facts: GhostFacts | None = None) -> tuple[ScaleDownPlan, ...]:
    """One plan per scope, each over the instances tagged with its environment."""
    if len(scopes) == 1:
        return (plan_scale_down(instances, runners, scopes[0], now, ghost_facts=ghost_facts),)
    known = {i.instance_id: i for i in instances}
    return tuple(plan_scale_down(
        [i for i in instances if i.tag(TAG_ENVIRONMENT) == scope.environment], runners, scope,
        now, ghost_facts=ghost_facts, known=known) for scope in scopes)


def merge_plans(plans: Sequence[ScaleDownPlan]) -> ScaleDownPlan:
    """The plans of every scope as one to apply: their removals in order (a runner removed
    once), their marks together; the window and strategy of the first."""
    if len(plans) == 1:
        return plans[0]
    removals: list[Removal] = []
    runner_ids: set[int] = set()
    for removal in (r for plan in plans for r in plan.removals):
        if removal.runner_id is not None and removal.runner_id in runner_ids:
            continue  # a ghost every scope sharing its owner found
        if removal.runner_id is not None:
            runner_ids.add(removal.runner_id)
        removals.append(removal)
    kept: Counter[str] = Counter()
    for plan in plans:
        kept.update(plan.kept)

    def union(field: str) -> tuple[str, ...]:
        return tuple(sorted({item for plan in plans for item in getattr(plan, field)}))

    return ScaleDownPlan(
        removals=tuple(removals), idle_count=sum(p.idle_count for p in plans),
        eviction_strategy=plans[0].eviction_strategy, window=plans[0].window, kept=dict(kept),
        skipped_owners=tuple(sorted({o for p in plans for o in p.skipped_owners})),
        mark=union("mark"), unmark=union("unmark"),
        unknown_instance_ids=union("unknown_instance_ids"), mark_absent=union("mark_absent"),
        clear_absent=union("clear_absent"))
