"""Watch the world between steps: what changed since the last look becomes the live view's event
lines, and each look becomes one sample of the recorded series."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from demo.recording import ConfigSample, Sample

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

    def __init__(self, stack: Any, speed: float, environment: str | Mapping[str, str]) -> None:
        """`environment`: the deployment's `ghr:environment`, or with several runner
        configurations (REFERENCE §6) a mapping of each one's `ghr:environment` to its id."""
        self.stack = stack
        self.speed = speed
        self.configs: dict[str, str] = {} if isinstance(environment, str) else dict(environment)
        self.environments = [environment] if isinstance(environment, str) else list(self.configs)
        self.environment = self.environments[0]
        self.seen = _Seen()
        self.launched = 0
        self.terminated = 0
        self.waits: dict[int, float] = {}
        # With several configurations: the one of each instance seen, of each job (the webhook's
        # choice, told by the engine), the instances launched for each, the jobs completed.
        self.instance_config: dict[str, str] = {}
        self.job_config: dict[int, str] = {}
        self.launched_by_config: Counter[str] = Counter()

    def instances(self) -> dict[str, str]:
        """Running and pending instances of the deployment: id -> `ghr:Owner`."""
        found: dict[str, str] = {}
        pages = self.stack.boto("ec2").get_paginator("describe_instances").paginate(Filters=[
            {"Name": "tag:ghr:environment", "Values": self.environments},
            {"Name": "instance-state-name", "Values": list(ACTIVE_STATES)},
        ])
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    found[instance["InstanceId"]] = tags.get("ghr:Owner", "?")
                    config = self.configs.get(tags.get("ghr:environment", ""))
                    if config is not None:
                        self.instance_config[instance["InstanceId"]] = config
        return found

    def config_of_job(self, job: Any) -> str | None:
        """The configuration a job was routed to (a re-run: its first attempt's)."""
        config = self.job_config.get(job.id)
        if config is None and job.rerun_of is not None:
            config = self.job_config.get(job.rerun_of)
            if config is not None:
                self.job_config[job.id] = config
        return config

    def waits_by_config(self) -> dict[str, list[float]]:
        """The waits of the jobs started, by the configuration they were routed to."""
        found: dict[str, list[float]] = {}
        for job_id, wait in self.waits.items():
            config = self.job_config.get(job_id)
            if config is not None:
                found.setdefault(config, []).append(wait)
        return found

    def completed_by_config(self) -> Counter[str]:
        """Jobs completed successfully, by the configuration they were routed to."""
        return Counter(self.job_config[job_id] for job_id in self.seen.completed
                       if job_id in self.job_config)

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
            config = self.instance_config.get(instance_id)
            which = f" ({config})" if config else ""
            if config:
                self.launched_by_config[config] += 1
            events.append(Event(t, "launched",
                                f"{instance_id}{which} for {instances[instance_id]}"))
        for job in sorted(jobs.values(), key=lambda j: j.started_at or 0.0):
            self.config_of_job(job)
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
            configs=self._by_config(instances, runners, online),
        )
        return sample, events

    def _by_config(self, instances: dict[str, str], runners: dict[str, bool],
                   online: set[str]) -> tuple[ConfigSample, ...]:
        """Each configuration's part of a sample, in list order (none with one configuration)."""
        parts = []
        for config in dict.fromkeys(self.configs.values()):
            mine = [i for i in instances if self.instance_config.get(i) == config]
            busy = sum(1 for name, running in runners.items()
                       if running and any(name.endswith(i) for i in mine))
            booting = sum(1 for i in mine if not any(name.endswith(i) for name in online))
            idle = max(0, len(mine) - busy)
            parts.append(ConfigSample(config, busy, idle, len(mine), min(booting, idle)))
        return tuple(parts)

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
