"""The cap and every message under any interleaving of two scale-up containers and a pool run
over one state table and moto (docs/REFERENCE.md §5.1, §5.3, §7; the harness:
tests/app/interleaving_support.py). After every launch the owner's running + pending instances
are at most the cap; every message is returned for retry, dropped with a logged reason, or was
launched for (its job's claim is in the table)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from interleaving_support import (
    SETTINGS,
    Dropped,
    Scheduler,
    World,
    check_messages,
    dropped,
    existing_runners,
    fresh,
    quick_github,
    records,
)

from chalicelib.services.pool import PoolDeps, run_adjust_pool
from chalicelib.services.scale_up import ScaleUpDeps, handle_batch

__all__ = ["dropped", "quick_github"]


@SETTINGS
@given(cap=st.integers(1, 3), existing=st.integers(0, 3),
       batches=st.tuples(st.integers(0, 3), st.integers(0, 3)), pool_size=st.integers(0, 3),
       choices=st.lists(st.integers(0, 2), max_size=30))
def test_the_cap_and_every_message_hold_whatever_scale_ups_and_the_pool_interleave(
        stack: Any, env: dict[str, str], dropped: Dropped, quick_github: Any, cap: int,
        existing: int, batches: tuple[int, int], pool_size: int, choices: list[int]) -> None:
    fresh(stack, quick_github)
    world = World(stack, env, cap)
    existing_runners(stack, world, [False] * min(existing, cap))
    jobs = {name: [stack.github.add_job(world.owner, "app", ["self-hosted"]) for _ in range(n)]
            for name, n in zip(("up-a", "up-b"), batches, strict=True)}
    scheduler = Scheduler(choices)
    up = {name: ScaleUpDeps(**world.adapters(scheduler, "scale_up"),
                            capacity=world.capacity(scheduler)) for name in jobs}
    batch = {name: records(world, name, job_ids) for name, job_ids in jobs.items()}

    results = scheduler.run({
        **{name: (lambda name=name: handle_batch(batch[name], up[name], 60.0)) for name in up},
        "pool": lambda: run_adjust_pool({"poolSize": pool_size}, PoolDeps(
            **world.adapters(scheduler, "adjust_pool"), capacity=world.capacity(scheduler)),
            60.0),
    })

    assert world.violations == []
    check_messages(world, batch, jobs, results, dropped)
    assert not isinstance(results["pool"], Exception), results["pool"]
