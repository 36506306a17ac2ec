"""Pure decisions of scale-up: whose runner a job needs, how many to launch, what to retry.

No I/O, no clock, no settings object: inputs are plain values, outputs are frozen plans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from chalicelib.messages import JobMessage
from chalicelib.models import RunnerType

NO_CAP = -1
# Why a message was consumed without a runner; each is logged with the message id.
USER_OWNED_REPO = "user-owned repository with organization runners"
NOT_QUEUED = "job no longer queued"
DUPLICATE_JOB = "another message of the batch carries the same job"
LAUNCHED_BEFORE = "a runner was launched for this job minutes ago"
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
               launched_before: Collection[tuple[str, int]] = (),
               ) -> tuple[tuple[Group, ...], tuple[Dropped, ...]]:
    """Group jobs by owner (in arrival order); drop user repos (org runners) and repeats, in the
    batch or of the `(repository, job id)`s `launched_before`."""
    groups: dict[tuple[str, RunnerType], list[JobMessage]] = {}
    dropped: list[Dropped] = []
    seen: set[tuple[str, int]] = set()
    for job in jobs:
        owner = owner_of(job, organization_runners)
        if owner is None:
            dropped.append(Dropped(job.message_id, job.id, USER_OWNED_REPO))
            continue
        if (job.full_repo, job.id) in launched_before:
            dropped.append(Dropped(job.message_id, job.id, LAUNCHED_BEFORE))
            continue
        if (job.full_repo, job.id) in seen:
            # At-least-once delivery: one runner per job, whichever copy came first (P4).
            dropped.append(Dropped(job.message_id, job.id, DUPLICATE_JOB))
            continue
        seen.add((job.full_repo, job.id))
        groups.setdefault(owner, []).append(job)
    return (tuple(Group(owner, kind, tuple(items)) for (owner, kind), items in groups.items()),
            tuple(dropped))


def launchable(queued: int, current: int | None, cap: int) -> int:
    """How many runners to launch: `max(0, min(queued, cap - current))`; all with no cap."""
    if cap == NO_CAP or current is None:
        return max(0, queued)
    return max(0, min(queued, cap - current))


@dataclass(frozen=True)
class ScaleUpPlan:
    """One owner's decision: which messages get a runner, which are retried or consumed."""

    owner: str
    runner_type: RunnerType
    queued: int
    current: int | None
    cap: int
    launch: tuple[str, ...]
    retry: tuple[str, ...] = ()
    consume: tuple[str, ...] = ()

    @property
    def launching(self) -> int:
        """Runners to launch."""
        return len(self.launch)


def plan_scale_up(owner: str, runner_type: RunnerType, queued_ids: Sequence[str],
                  current: int | None, cap: int, ephemeral: bool) -> ScaleUpPlan:
    """Clamp the queued jobs of one owner to the cap (Guarantee 1) and place the remainder.

    Each ephemeral runner takes one job, so a job skipped for the cap is retried; a reuse
    runner takes job after job, so a skipped job is left to the runners already running.
    """
    count = launchable(len(queued_ids), current, cap)
    rest = tuple(queued_ids[count:])
    return ScaleUpPlan(owner=owner, runner_type=runner_type, queued=len(queued_ids),
                       current=current, cap=cap, launch=tuple(queued_ids[:count]),
                       retry=rest if ephemeral else (), consume=() if ephemeral else rest)


@dataclass(frozen=True)
class Settlement:
    """The fate of the messages a plan launched for, once the fleet has answered."""

    launched: tuple[str, ...]
    retry: tuple[str, ...]
    consume: tuple[str, ...]


def settle(message_ids: Sequence[str], ready: int, retryable_shortfall: int) -> Settlement:
    """Give the `ready` runners to the first messages; the retryable part of the rest is
    retried, the remainder (missing for a permanent reason) is consumed."""
    ready = max(0, min(ready, len(message_ids)))
    rest = tuple(message_ids[ready:])
    retry_count = max(0, min(retryable_shortfall, len(rest)))
    return Settlement(launched=tuple(message_ids[:ready]), retry=rest[:retry_count],
                      consume=rest[retry_count:])


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
