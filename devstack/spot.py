"""Spot interruptions played against the runner simulation, as EC2 and GitHub would show them.

`interrupt(instance_id)` is EC2's two-minute notice: an `EC2 Spot Instance Interruption Warning`
event for the ec2_events function. `notice_seconds` later (simulated; 120 on EC2) `step()` takes
the instance back: its runner is lost in the GitHub fake (offline; the job it ran completes with
conclusion `failure`, as GitHub reports a lost runner, which sends the `completed` webhook), the
instance is terminated in moto, and the state-change events (`shutting-down`, `terminated`) are
queued. The events wait in `take_events()` for whoever plays EventBridge (a test, the demo).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from devstack.runner_sim import Event, RunnerSimulation

REGION = "eu-west-1"
ACCOUNT = "123456789012"
WARNING = "EC2 Spot Instance Interruption Warning"
STATE_CHANGE = "EC2 Instance State-change Notification"


def ec2_event(detail_type: str, detail: dict[str, Any], at: float) -> dict[str, Any]:
    """An EventBridge event of source aws.ec2, as EC2 sends it."""
    instance_id = str(detail.get("instance-id", ""))
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
        "source": "aws.ec2", "account": ACCOUNT,
        "time": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"],
        "detail": detail,
    }


class SpotInterruptions:
    """Interruptions of a simulation's instances: the warning, then the instance taken back."""

    def __init__(self, simulation: RunnerSimulation, notice_seconds: float = 120.0,
                 conclusion: str = "failure") -> None:
        self.simulation = simulation
        self.notice_seconds = notice_seconds
        self.conclusion = conclusion
        self.due: dict[str, float] = {}  # instance id -> when EC2 takes it back
        self.interrupted: list[str] = []
        self.lost_jobs: list[int] = []
        self._events: list[dict[str, Any]] = []

    def busy_instances(self) -> list[str]:
        """The simulation's instances whose runner runs a job now, not interrupted already."""
        busy = {r.id for r in self.simulation.github.runners() if r.busy}
        return [i for i, runner in self.simulation.registered.items()
                if runner in busy and i not in self.due]

    def interrupt(self, instance_id: str) -> dict[str, Any]:
        """EC2's two-minute notice for `instance_id`; returns the warning event."""
        now = self.simulation.clock()
        self.due[instance_id] = now + self.notice_seconds
        self.interrupted.append(instance_id)
        event = ec2_event(WARNING, {"instance-id": instance_id, "instance-action": "terminate"},
                          now)
        self._events.append(event)
        return event

    def step(self) -> list[Event]:
        """Take back the instances whose notice has run out; the simulation's events."""
        now = self.simulation.clock()
        happened: list[Event] = []
        for instance_id, at in sorted(self.due.items(), key=lambda item: item[1]):
            if at > now or at < 0:
                continue
            self.due[instance_id] = -1.0  # done
            runner = self.simulation.registered.get(instance_id)
            job = self.simulation.github.lose_runner(runner, self.conclusion) \
                if runner is not None else None
            if job is not None:
                self.lost_jobs.append(job.id)
            self.simulation.ec2.terminate_instances(InstanceIds=[instance_id])
            for state in ("shutting-down", "terminated"):
                self._events.append(ec2_event(STATE_CHANGE, {"instance-id": instance_id,
                                                             "state": state}, now))
            detail = f"{instance_id} taken back" + (f"; job {job.id} lost" if job else "")
            happened.append((now, "spot reclaimed", detail))
        return happened

    def take_events(self) -> list[dict[str, Any]]:
        """The EventBridge events since the last call, oldest first."""
        events, self._events = self._events, []
        return events
