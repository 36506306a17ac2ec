"""One owner's part of a scale-up batch: queued check, reservation, launch, settlement.

The reservation (services/capacity.py) and the claims of the jobs it is for
(services/job_claims.py) are one transaction: capacity is held exactly for the jobs claimed.
What the launch does not turn into runners is given back: the unused part of the reservation,
and the claims of the jobs retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib import metrics
from chalicelib.aws.state import TransactionConflict, Write
from chalicelib.errors import GhrError
from chalicelib.logs import get_logger
from chalicelib.messages import JobMessage
from chalicelib.models import Instance
from chalicelib.rules.runners import runners_by_name
from chalicelib.rules.scale_up import (
    LAUNCHED_BEFORE,
    NOT_QUEUED,
    OVER_CAP_REUSE,
    Group,
    client_token,
    plan_scale_up,
    settle,
)
from chalicelib.services.capacity import CapacityLedger, Reservation
from chalicelib.services.job_claims import claim_writes, release_claims
from chalicelib.services.job_retry import JobRetries, retried_status
from chalicelib.services.launcher import Launcher, LaunchOutcome, LaunchRequest, parallel
from chalicelib.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class GroupContext:
    """What every owner's launch of one batch shares."""

    settings: Settings
    launcher: Launcher
    capacity: CapacityLedger
    # The owner's live instances as EC2 lists them (one listing serves the batch).
    live: Callable[[Group], list[Instance]]
    image_id: Callable[[], str | None]
    receive_counts: Mapping[str, int]
    clock: Callable[[], float] = time.time
    # Job retry (§8): what is consumed as queued goes back to the build queue, delayed.
    retries: JobRetries | None = None
    # The runner configuration whose settings these are (§6).
    config_id: str = "default"


def _drop(job: JobMessage, reason: str, **fields: object) -> None:
    log.info("message dropped", message_id=job.message_id, job_id=job.id, reason=reason,
             **fields)
    metrics.put("JobsDropped", 1, reason=reason)


def handle_group(group: Group, context: GroupContext) -> list[str]:
    """Decide and launch for one owner; return the group's message ids to retry."""
    settings = context.settings
    jobs, unanswered = still_queued(group, context)
    cap = settings.runners_maximum_count
    live = context.live(group) if jobs and cap != -1 else []
    reservation, jobs = _reserve(group, jobs, live, context)
    reuse = True
    if not settings.enable_ephemeral_runners and len(jobs) > reservation.count:
        reuse = reuse_runner_available(group, live, context)
    plan = plan_scale_up(group.owner, group.runner_type, [job.message_id for job in jobs],
                         reservation.count, settings.enable_ephemeral_runners, reuse)
    log.info("scale-up plan", owner=group.owner, runner_type=group.runner_type,
             received=len(group.jobs), queued=plan.queued, current=reservation.current,
             cap=cap,
             launching=plan.launching, retrying=len(plan.retry), consuming=len(plan.consume))
    for job in jobs:
        if job.message_id in plan.consume:
            _drop(job, OVER_CAP_REUSE)
    if not plan.launch:
        _send_back(group, jobs, plan.consume, context)
        return [*unanswered, *plan.retry]
    outcome = _launch(group, plan.launch, reservation, context)
    result = settle(plan.launch, len(outcome.ready))
    context.capacity.release(reservation, used=len(outcome.running))
    release_claims(context.capacity.table,
                   [job for job in jobs if job.message_id in result.retry])
    log.info("scale-up result", owner=group.owner, launched=len(result.launched),
             instance_ids=list(outcome.ready), retrying=len(result.retry),
             terminated=list(outcome.terminated), fleet_errors=[e.code for e in outcome.errors])
    if outcome.permanent_shortfall:
        # An operator's to fix (a template, a permission): the messages wait for the fix.
        log.error("capacity refused for a permanent reason; messages retried",
                  owner=group.owner, codes=[e.code for e in outcome.errors],
                  message_ids=list(result.retry))
    metrics.put("RunnersLaunched", len(result.launched))
    _send_back(group, jobs, (*plan.consume, *result.launched), context)
    return [*unanswered, *plan.retry, *result.retry]


def _send_back(group: Group, jobs: Sequence[JobMessage], consumed: Sequence[str],
               context: GroupContext) -> None:
    """Job retry (§8): the jobs launched for or left to a reuse runner go back, delayed."""
    if context.retries is not None:
        context.retries.send_back(group.owner, [j for j in jobs if j.message_id in consumed])


def _reserve(group: Group, jobs: list[JobMessage], live: list[Instance],
             context: GroupContext) -> tuple[Reservation, list[JobMessage]]:
    """Reserve capacity for the first jobs and claim them in one transaction; jobs another
    launch claimed already are dropped, and the rest reserved for again."""
    settings = context.settings
    while True:
        now = int(context.clock())

        def claims(count: int, now: int = now, pending: list[JobMessage] = jobs) -> list[Write]:
            return claim_writes(pending[:count], now, by="scale-up")

        try:
            return context.capacity.reserve(
                group.owner, group.runner_type, len(jobs), settings.runners_maximum_count,
                live, claims=claims), jobs
        except TransactionConflict as conflict:
            taken = {job.message_id for job, failed in zip(jobs, conflict.failed[1:],
                                                            strict=False) if failed}
            for job in jobs:
                if job.message_id in taken:
                    _drop(job, LAUNCHED_BEFORE)
            jobs = [job for job in jobs if job.message_id not in taken]


def _launch(group: Group, message_ids: Sequence[str], reservation: Reservation,
            context: GroupContext) -> LaunchOutcome:
    settings = context.settings
    token = client_token([(m, context.receive_counts.get(m, 1)) for m in message_ids],
                         len(message_ids), settings.instance_target_capacity_type)
    return context.launcher.launch(LaunchRequest(
        owner=group.owner, runner_type=group.runner_type, count=len(message_ids),
        installation_id=group.installation_id, client_token=token,
        image_id=context.image_id(), reservation=reservation.rid or None,
    ))


def still_queued(group: Group, context: GroupContext) -> tuple[list[JobMessage], list[str]]:
    """The group's jobs GitHub still reports as queued (all of them when the check is off),
    and the message ids to retry because GitHub did not say for a retried job (§8)."""
    jobs = group.jobs
    if not context.settings.enable_job_queued_check and not any(j.retry_counter for j in jobs):
        return list(jobs), []
    github = context.launcher.github

    def status(job: JobMessage) -> str | None:
        if job.retry_counter:
            # Asked whatever ENABLE_JOB_QUEUED_CHECK says; no answer: the record is retried.
            return retried_status(github, job, group.runner_type)
        if not context.settings.enable_job_queued_check:
            return "queued"
        try:
            return github.job_status(job.full_repo, job.id, job.installation_id,
                                     group.runner_type)
        except GhrError as error:
            # Fail open (R-UP-05): a surplus runner is reclaimed by scale-down, a lost job
            # is not.
            log.warning("queued check failed; assuming queued", job_id=job.id,
                        repository=job.full_repo, error=str(error))
            return "queued"

    queued: list[JobMessage] = []
    unanswered: list[str] = []
    for job, state in zip(jobs, parallel(status, list(jobs)), strict=True):
        if state == "queued":
            queued.append(job)
        elif state is None:
            unanswered.append(job.message_id)
        else:
            _drop(job, NOT_QUEUED, status=state, retry_counter=job.retry_counter)
    return queued, unanswered


def reuse_runner_available(group: Group, live: Sequence[Instance],
                           context: GroupContext) -> bool:
    """Whether a reuse runner of the owner can take a job left at the cap: an instance still
    booting, or one whose runner GitHub lists. Unknown (GitHub failing) counts as no."""
    settings = context.settings
    boot = timedelta(minutes=settings.runner_boot_time_in_minutes)
    now = datetime.fromtimestamp(context.clock(), UTC)
    if any(now - instance.launch_time < boot for instance in live):
        return True
    try:
        runners = runners_by_name(context.launcher.github.list_runners(group.owner,
                                                                       group.runner_type))
    except GhrError as error:
        log.warning("runner listing failed; jobs over the cap retried", owner=group.owner,
                    error=str(error))
        return False
    return any(settings.runner_name_prefix + i.instance_id in runners for i in live)
