"""Spot interruptions played against the runner simulation (devstack/spot.py): EC2's notice,
then two minutes later the instance taken back and its job failed as GitHub reports a lost
runner."""

from __future__ import annotations

from typing import Any

from test_runner_sim import (
    Clock,
    clock,
    config_args,
    github,
    launch,
    make_sim,
    put_config,
    state_of,
)

from devstack.github_fake import GitHubFake
from devstack.spot import SpotInterruptions

__all__ = ["clock", "github"]


def test_a_busy_runner_is_warned_then_taken_back_and_its_job_fails(
        stack: Any, github: GitHubFake, clock: Clock) -> None:
    sim = make_sim(stack, clock)
    spot = SpotInterruptions(sim, notice_seconds=120)
    instance = launch(stack)
    put_config(stack, instance, config_args(github, extra=""))
    sim.step()
    job = github.add_job("acme", "app", ["self-hosted", "linux"], duration=600)
    sim.step()
    assert spot.busy_instances() == [instance]
    completed: list[dict[str, Any]] = []
    github.on_job_event = lambda action, body: completed.append(body) \
        if action == "completed" else None

    warning = spot.interrupt(instance)
    clock.now += 119
    assert spot.step() == [] and github.jobs[job].status == "in_progress"
    clock.now += 1
    [(_, kind, detail)] = spot.step()
    sim.step()

    assert (warning["detail-type"], warning["detail"]["instance-id"]) == (
        "EC2 Spot Instance Interruption Warning", instance)
    assert kind == "spot reclaimed" and str(job) in detail
    assert (github.jobs[job].status, github.jobs[job].conclusion) == ("completed", "failure")
    assert [body["id"] for body in completed] == [job]
    assert state_of(stack, instance) in ("shutting-down", "terminated")
    assert [runner.status for runner in github.runners("acme")] == ["offline"]
    events = spot.take_events()
    assert [(e["detail-type"], e["detail"].get("state")) for e in events] == [
        ("EC2 Spot Instance Interruption Warning", None),
        ("EC2 Instance State-change Notification", "shutting-down"),
        ("EC2 Instance State-change Notification", "terminated")]
    assert spot.take_events() == [] and spot.lost_jobs == [job]
