"""The busy guard and every message under any interleaving of a scale-down run and a scale-up
container, while GitHub hands a job to an idle runner at any one of their outside calls
(docs/REFERENCE.md §5.2, §5.3; the harness: tests/app/interleaving_support.py): no instance is
terminated while its runner runs a job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from interleaving_support import (
    SETTINGS,
    Dropped,
    Scheduler,
    World,
    Yielding,
    check_messages,
    dropped,
    existing_runners,
    fresh,
    quick_github,
    records,
)

from chalicelib.services.scale_down import ScaleDownDeps, run_scale_down
from chalicelib.services.scale_up import ScaleUpDeps, handle_batch

__all__ = ["dropped", "quick_github"]


@SETTINGS
@given(cap=st.integers(1, 3), busy=st.lists(st.booleans(), max_size=3), jobs=st.integers(0, 1),
       choices=st.lists(st.integers(0, 1), max_size=12), dispatch_at=st.integers(0, 8))
def test_no_busy_runner_loses_its_instance_whatever_scale_down_and_scale_up_interleave(
        stack: Any, env: dict[str, str], dropped: Dropped, quick_github: Any, cap: int,
        busy: list[bool], jobs: int, choices: list[int], dispatch_at: int) -> None:
    fresh(stack, quick_github)
    world = World(stack, env, cap)
    busy = busy[:cap]
    runners = existing_runners(stack, world, busy)
    job_ids = {"up-a": [stack.github.add_job(world.owner, "app", ["self-hosted"])
                        for _ in range(jobs)]}
    batch = {"up-a": records(world, "up-a", job_ids["up-a"])}
    later = datetime.now(UTC) + timedelta(minutes=10)

    def dispatch() -> None:  # GitHub hands a job to the first idle runner still registered
        there = {r.id for r in stack.github.runners(world.owner)}
        idle = [r for r, b in zip(runners, busy, strict=True) if not b and r in there]
        if idle:
            stack.github.set_runner_busy(idle[0], True)

    scheduler = Scheduler(choices, events={dispatch_at: dispatch})
    results = scheduler.run({
        "up-a": lambda: handle_batch(batch["up-a"], ScaleUpDeps(
            **world.adapters(scheduler, "scale_up"), capacity=world.capacity(scheduler)), 60.0),
        "down": lambda: run_scale_down(ScaleDownDeps(
            **world.adapters(scheduler, "scale_down"),
            state=Yielding(world.table, scheduler)), 60.0, now=later),  # type: ignore[arg-type]
    })

    assert world.violations == []
    assert not isinstance(results["down"], Exception), results["down"]
    check_messages(world, batch, job_ids, results, dropped)
