"""Watch the world between steps: what changed since the last look becomes the live view's event
lines, and each look becomes one sample of the recorded series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from demo.recording import Sample

ACTIVE_STATES = ("pending", "running")


@dataclass(frozen=True)
class Event:
    """One decision or state change, at `t` simulated seconds."""

    t: float
    kind: str  # launched | registered | job started | deregistered | terminated | ...
    text: str


@dataclass
class _Seen:
    instances: dict[str, str] = field(default_factory=dict)  # id -> owner tag
    runners: dict[str, bool] = field(default_factory=dict)  # name -> busy
    started: set[int] = field(default_factory=set)
    completed: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)  # failed or cancelled: their runner was lost
    reruns: set[int] = field(default_factory=set)


class Observer:
    """Snapshots devstack (EC2 instances, GitHub runners and jobs) and diffs each with the last."""

    def __init__(self, stack: Any, speed: float, environment: str) -> None:
        self.stack = stack
        self.speed = speed
        self.environment = environment
        self.seen = _Seen()
        self.launched = 0
        self.terminated = 0
        self.waits: dict[int, float] = {}

    def instances(self) -> dict[str, str]:
        """Running and pending instances of the deployment: id -> `ghr:Owner`."""
        found: dict[str, str] = {}
        pages = self.stack.boto("ec2").get_paginator("describe_instances").paginate(Filters=[
            {"Name": "tag:ghr:environment", "Values": [self.environment]},
            {"Name": "instance-state-name", "Values": list(ACTIVE_STATES)},
        ])
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    found[instance["InstanceId"]] = tags.get("ghr:Owner", "?")
        return found

    def look(self, t: float) -> tuple[Sample, list[Event]]:
        """Take a snapshot at simulated time `t`; return its sample and what changed."""
        instances = self.instances()
        listed = self.stack.github.runners()
        runners = {r.name: r.busy for r in listed}
        online = {r.name for r in listed if r.status == "online"}
        jobs = self.stack.github.jobs
        events: list[Event] = []
        for instance_id in sorted(instances.keys() - self.seen.instances.keys()):
            self.launched += 1
            events.append(Event(t, "launched", f"{instance_id} for {instances[instance_id]}"))
        for job in sorted(jobs.values(), key=lambda j: j.started_at or 0.0):
            if job.started_at is not None and job.id not in self.seen.started:
                self.seen.started.add(job.id)
                wait = max(0.0, (job.started_at - job.created_at) * self.speed)
                self.waits[job.id] = wait
                events.append(Event(t, "job started",
                                    f"{job.full_repo} #{job.id} on {job.runner_name}, "
                                    f"waited {_wait_text(wait)}"))
            events.extend(self._ended(t, job))
        for name in sorted(self.seen.runners.keys() - runners.keys()):
            events.append(Event(t, "deregistered", f"runner {name}"))
        for instance_id in sorted(self.seen.instances.keys() - instances.keys()):
            self.terminated += 1
            events.append(Event(t, "terminated", instance_id))
        self.seen.instances, self.seen.runners = instances, runners
        busy_on_instances = sum(1 for name, busy in runners.items()
                                if busy and any(name.endswith(i) for i in instances))
        # Runners are named <prefix><instance id>: an instance none of whose online runners
        # ends with its id has not registered yet (or its runner is offline).
        booting = sum(1 for i in instances if not any(name.endswith(i) for name in online))
        idle = max(0, len(instances) - busy_on_instances)
        sample = Sample(
            t=t,
            queued=sum(1 for job in jobs.values() if job.status == "queued"),
            busy=busy_on_instances,
            idle=idle,
            instances=len(instances),
            booting=min(booting, idle),
        )
        return sample, events

    def _ended(self, t: float, job: Any) -> list[Event]:
        """A job completed (counted when it succeeded), lost, or re-run as a new attempt."""
        events = []
        if job.rerun_of is not None and job.id not in self.seen.reruns:
            self.seen.reruns.add(job.id)
            events.append(Event(t, "re-run", f"{job.full_repo} #{job.rerun_of} re-run as "
                                             f"#{job.id} (attempt {job.run_attempt})"))
        if job.status != "completed":
            return events
        if job.conclusion == "success":
            self.seen.completed.add(job.id)
        elif job.id not in self.seen.lost:
            self.seen.lost.add(job.id)
            events.append(Event(t, "job lost", f"{job.full_repo} #{job.id} {job.conclusion} "
                                               f"on {job.runner_name}"))
        return events

    @property
    def completed(self) -> int:
        """Jobs completed successfully so far (a lost job counts once its re-run succeeds)."""
        return len(self.seen.completed)

    @property
    def lost(self) -> int:
        """Jobs that failed with their runner lost."""
        return len(self.seen.lost)

    @property
    def reruns(self) -> int:
        """Re-runs GitHub started (new attempts of lost jobs)."""
        return len(self.seen.reruns)


def _wait_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
