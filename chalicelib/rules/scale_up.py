"""Pure decisions of scale-up: whose runner a job needs, how many to launch, what to retry.

No I/O, no clock, no settings object: inputs are plain values, outputs are frozen plans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chalicelib.messages import JobMessage
from chalicelib.models import RunnerType

# Why a message was consumed without a runner; each is logged with the message id.
USER_OWNED_REPO = "user-owned repository with organization runners"
NOT_QUEUED = "job no longer queued"
DUPLICATE_JOB = "another message of the batch carries the same job"
LAUNCHED_BEFORE = "a runner was launched for this job already"
OVER_CAP_REUSE = "over the cap; a running reuse runner will take the job"


@dataclass(frozen=True)
class Group:
    """The jobs of one owner, decided and launched together."""

    owner: str
    runner_type: RunnerType
    jobs: tuple[JobMessage, ...]

    @property
    def message_ids(self) -> tuple[str, ...]:
        """The SQS message ids of the group's jobs."""
        return tuple(job.message_id for job in self.jobs)

    @property
    def installation_id(self) -> int:
        """The first known installation id among the jobs (0: look it up)."""
        return next((job.installation_id for job in self.jobs if job.installation_id), 0)


@dataclass(frozen=True)
class Dropped:
    """A message consumed on purpose, and the logged reason."""

    message_id: str
    job_id: int
    reason: str


def owner_of(job: JobMessage, organization_runners: bool) -> tuple[str, RunnerType] | None:
    """The runner owner and type for `job`; None when org runners cannot serve a user's repo."""
    if not organization_runners:
        return job.full_repo, "Repo"
    if (job.repo_owner_type or "").lower() == "user":
        return None
    return job.repository_owner, "Org"


def group_jobs(jobs: Iterable[JobMessage], organization_runners: bool,
               ) -> tuple[tuple[Group, ...], tuple[Dropped, ...]]:
    """Group jobs by owner (in arrival order; names compare case-insensitively, as GitHub's
    do); drop user repos (org runners) and repeats of a job in the batch."""
    groups: dict[tuple[str, RunnerType], list[JobMessage]] = {}
    spelling: dict[tuple[str, RunnerType], str] = {}
    dropped: list[Dropped] = []
    seen: set[tuple[str, int]] = set()
    for job in jobs:
        owner = owner_of(job, organization_runners)
        if owner is None:
            dropped.append(Dropped(job.message_id, job.id, USER_OWNED_REPO))
            continue
        if (job.full_repo.lower(), job.id) in seen:
            # At-least-once delivery: one runner per job, whichever copy came first (P4).
            dropped.append(Dropped(job.message_id, job.id, DUPLICATE_JOB))
            continue
        seen.add((job.full_repo.lower(), job.id))
        key = (owner[0].lower(), owner[1])
        spelling.setdefault(key, owner[0])
        groups.setdefault(key, []).append(job)
    return (tuple(Group(spelling[key], key[1], tuple(items)) for key, items in groups.items()),
            tuple(dropped))


@dataclass(frozen=True)
class ScaleUpPlan:
    """One owner's decision: which messages get a runner, which are retried or consumed."""

    owner: str
    runner_type: RunnerType
    queued: int
    launch: tuple[str, ...]
    retry: tuple[str, ...] = ()
    consume: tuple[str, ...] = ()

    @property
    def launching(self) -> int:
        """Runners to launch."""
        return len(self.launch)


def plan_scale_up(owner: str, runner_type: RunnerType, queued_ids: Sequence[str], granted: int,
                  ephemeral: bool, reuse_runner_available: bool = True) -> ScaleUpPlan:
    """Give the `granted` places under the cap (docs/REFERENCE.md §5.1) to the first queued
    jobs of one owner and place the remainder.

    Each ephemeral runner takes one job, so a job skipped for the cap is retried. A reuse
    runner takes job after job, so a skipped job is left to the runners already there, but
    only when one of them is registered or still booting (`reuse_runner_available`): instances
    that never registered take no job, and the message is retried instead.
    """
    count = max(0, min(granted, len(queued_ids)))
    rest = tuple(queued_ids[count:])
    consume = not ephemeral and reuse_runner_available
    return ScaleUpPlan(owner=owner, runner_type=runner_type, queued=len(queued_ids),
                       launch=tuple(queued_ids[:count]), retry=() if consume else rest,
                       consume=rest if consume else ())


@dataclass(frozen=True)
class Settlement:
    """The fate of the messages a plan launched for, once the fleet has answered."""

    launched: tuple[str, ...]
    retry: tuple[str, ...]


def settle(message_ids: Sequence[str], ready: int) -> Settlement:
    """Give the `ready` runners to the first messages; the rest are retried, whatever the
    reason capacity is missing: a permanent fleet error (a bad template, a refused permission
    after a stack update) is an operator's to fix, and its messages wait for the fix in the
    queue, then in the dead-letter queue, rather than being lost (docs/REFERENCE.md §5.3)."""
    ready = max(0, min(ready, len(message_ids)))
    return Settlement(launched=tuple(message_ids[:ready]), retry=tuple(message_ids[ready:]))


def client_token(deliveries: Iterable[tuple[str, int]], count: int, capacity_type: str) -> str:
    """The CreateFleet ClientToken of one group's launch (64 hex characters, EC2's maximum).

    Built from the sorted (message id, receive count) pairs, the count and the capacity type:
    a call that botocore repeats after a timeout or throttle carries the same token and so
    cannot launch twice (R-Q-06). The receive count changes on every SQS redelivery, so a
    message returned after its instance was terminated gets a fresh fleet rather than EC2's
    replay of the terminated one.
    """
    key = "|".join(f"{mid}#{n}" for mid, n in sorted(deliveries))
    return hashlib.sha256(f"{key}|{count}|{capacity_type}".encode()).hexdigest()
