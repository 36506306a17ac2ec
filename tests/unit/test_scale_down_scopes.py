"""Scale-down over several runner configurations (docs/REFERENCE.md §6): one plan per scope over
one snapshot, merged, as plain functions."""

from __future__ import annotations

from dataclasses import replace

from test_scale_down_plan import NOW, ORG, make_instance, make_runner, settings, window

from chalicelib.models import APPLICATION, TAG_APPLICATION, TAG_ENVIRONMENT, Instance
from chalicelib.rules.scale_down_scopes import merge_plans, plan_scopes, scope_owners

A = replace(settings(), environment="ci-a")
B = replace(settings([window(1)], prefix="b-"), environment="ci-b", runner_owner="Other")


def of(environment: str, age_min: float = 30, state: str = "running",
       owner: str = "acme") -> Instance:
    tags = {TAG_APPLICATION: APPLICATION, TAG_ENVIRONMENT: environment}
    return make_instance(age_min=age_min, state=state, owner=owner, tags=tags)


def test_each_scope_decides_its_own_instances_with_its_own_settings() -> None:
    idle_a = [of("ci-a", age_min=30) for _ in range(2)]
    idle_b = [of("ci-b", age_min=30) for _ in range(2)]
    runners = [make_runner(i) for i in idle_a] + [make_runner(i, prefix="b-") for i in idle_b]

    plans = plan_scopes([*idle_a, *idle_b], {ORG: runners}, [A, B], NOW)

    assert [len(p.removals) for p in plans] == [2, 1]  # b keeps one idle runner
    assert plans[1].removals[0].instance_id in {i.instance_id for i in idle_b}
    # The runners of one scope are no ghosts, nor unknown, to the other.
    assert all(p.unknown_instance_ids == () for p in plans)
    assert len(merge_plans(plans).removals) == 3


def test_a_ghost_that_two_scopes_find_is_removed_once() -> None:
    gone = of("ci-a", state="terminated")
    ghost = make_runner(gone, status="offline")
    c = replace(A, environment="ci-c")
    plans = plan_scopes([gone], {ORG: [ghost]}, [A, c], NOW)
    assert [len(p.removals) for p in plans] == [1, 1]
    assert [(r.kind, r.runner_id) for r in merge_plans(plans).removals] == [("ghost", ghost.id)]


def test_every_owner_is_listed_once_with_each_scopes_pool_owner() -> None:
    instances = [of("ci-a", owner="ACME"), of("ci-b", owner="acme")]
    assert scope_owners(instances, [A, B]) == {("acme", "Org"), ("other", "Org")}


def test_one_scope_is_plan_scale_downs_own_plan() -> None:
    instance = of("ci-a")
    [plan] = plan_scopes([instance], {ORG: [make_runner(instance)]}, [A], NOW)
    assert merge_plans([plan]) is plan
