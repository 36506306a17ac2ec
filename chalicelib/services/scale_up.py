"""scale_up: from a batch of build-queue messages to launched, registered runners.

Parse → group by owner → per group: queued check, count, plan, launch, settle. Returns the
message ids to retry (the Lambda's `batchItemFailures`); everything else was launched for or
consumed with a logged reason (Guarantee 3).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import Any

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, GhrError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.messages import JobMessage, parse_batch
from chalicelib.models import RunnerType
from chalicelib.rules.scale_up import (
    NOT_QUEUED,
    OVER_CAP_REUSE,
    Group,
    client_token,
    group_jobs,
    plan_scale_up,
    settle,
)
from chalicelib.services.launch_ledger import LaunchLedger
from chalicelib.services.launcher import Launcher, LaunchRequest, image_id, parallel
from chalicelib.settings import Settings

log = get_logger(__name__)

# Time kept back from GitHub waits and from starting a group: enough to return the batch
# response before the function times out (a timeout would retry every message). A quarter
# of the time left when that is less (a short test or local invocation).
RESERVE_SECONDS = 5.0
# Owners handled side by side; each also runs a few parallel calls (see launcher.WORKERS).
GROUP_WORKERS = 4


def _reserve(remaining_seconds: float) -> float:
    return min(RESERVE_SECONDS, max(0.0, remaining_seconds) / 4)


@dataclass(frozen=True)
class ScaleUpDeps:
    """The adapters scale-up works with (built by `wiring.scale_up`)."""

    settings: Settings
    ec2: Ec2
    ssm: Ssm
    github: GitHubClient
    # The container's recent launches, kept across invocations.
    ledger: LaunchLedger = field(default_factory=LaunchLedger)


def handle_batch(records: Sequence[Mapping[str, Any]], deps: ScaleUpDeps,
                 remaining_seconds: float) -> list[str]:
    """Launch runners for a batch of SQS records; return the message ids to retry."""
    deps.github.set_deadline(max(1.0, remaining_seconds - _reserve(remaining_seconds)))
    service = ScaleUp(deps.settings, deps.ec2, deps.ssm, deps.github, ledger=deps.ledger)
    return service.run(records, remaining_seconds)


class ScaleUp:
    """One invocation's scale-up over its adapters."""

    def __init__(self, settings: Settings, ec2: Ec2, ssm: Ssm, github: GitHubClient,
                 clock: Callable[[], float] = time.monotonic,
                 ledger: LaunchLedger | None = None) -> None:
        self.settings = settings
        self.ec2 = ec2
        self.ssm = ssm
        self.github = github
        self.clock = clock
        # The container's recent launches (kept across invocations by handle_batch).
        self.ledger = ledger or LaunchLedger()
        self._image: tuple[str | None] | None = None
        self._lock = threading.RLock()
        self._shared_count = False
        self._listed: dict[tuple[str, RunnerType], list[str]] | None = None

    def run(self, records: Sequence[Mapping[str, Any]], remaining_seconds: float) -> list[str]:
        """Handle one batch; return the message ids to retry, each once."""
        deadline = self.clock() + remaining_seconds - _reserve(remaining_seconds)
        batch = parse_batch(records)
        if batch.ignored:
            log.warning("records ignored", count=batch.ignored,
                        reason="no message id or not from SQS")
        retry: list[str] = []
        for rejected in batch.rejected:
            log.error("malformed message", message_id=rejected.message_id,
                      problems=list(rejected.problems), body_excerpt=rejected.excerpt)
            metrics.put("MessagesMalformed", 1)
            retry.append(rejected.message_id)
        metrics.put("JobsReceived", len(batch.received))
        receive_counts = {r.job.message_id: r.receive_count for r in batch.received}
        groups, dropped = group_jobs((r.job for r in batch.received),
                                     self.settings.enable_organization_runners,
                                     launched_before=self.ledger.recent_jobs(self.clock()))
        for item in dropped:
            log.info("message dropped", message_id=item.message_id, job_id=item.job_id,
                     reason=item.reason)
            metrics.put("JobsDropped", 1, reason=item.reason)
        # One count of the environment's instances serves every owner of a many-owner batch.
        self._shared_count = len(groups) > 1
        # Owners are independent (each has its own cap), so their groups run side by side.
        with ThreadPoolExecutor(max_workers=max(1, min(GROUP_WORKERS, len(groups)))) as pool:
            futures = [pool.submit(copy_context().run, self.safe_group, group, receive_counts,
                                   deadline) for group in groups]
            for future in futures:
                retry.extend(future.result())
        metrics.put("JobsRetried", len(retry))
        return list(dict.fromkeys(retry))

    def safe_group(self, group: Group, receive_counts: Mapping[str, int],
                   deadline: float) -> list[str]:
        """`handle_group`, with any failure turned into a retry of this group's messages."""
        if self.clock() > deadline:
            log.warning("no time left for group", owner=group.owner,
                        message_ids=list(group.message_ids))
            return list(group.message_ids)
        try:
            return self.handle_group(group, receive_counts)
        except ConfigError as error:
            # Launches of the other owners that already succeeded stand; this one waits.
            log.error("configuration error", owner=group.owner, problems=error.problems,
                      retrying=len(group.jobs))
        except GhrError as error:
            log.warning("scale-up group failed", owner=group.owner, error=str(error),
                        error_type=type(error).__name__, retrying=len(group.jobs))
        except Exception:
            # A bug or an unforeseen answer: this owner's messages only, the rest go on.
            log.error("scale-up group failed unexpectedly", exc_info=True, owner=group.owner,
                      retrying=len(group.jobs))
        return list(group.message_ids)

    def handle_group(self, group: Group, receive_counts: Mapping[str, int]) -> list[str]:
        """Decide and launch for one owner; return the group's message ids to retry."""
        settings = self.settings
        queued = self.still_queued(group)
        cap = settings.runners_maximum_count
        current = None
        if cap != -1 and queued:
            current = self.current(group)
        plan = plan_scale_up(group.owner, group.runner_type,
                             [job.message_id for job in queued], current, cap,
                             settings.enable_ephemeral_runners)
        log.info("scale-up plan", owner=group.owner, runner_type=group.runner_type,
                 received=len(group.jobs), queued=plan.queued, current=plan.current, cap=cap,
                 launching=plan.launching, retrying=len(plan.retry),
                 consuming=len(plan.consume))
        for message_id in plan.consume:
            log.info("message dropped", message_id=message_id, reason=OVER_CAP_REUSE)
            metrics.put("JobsDropped", 1, reason=OVER_CAP_REUSE)
        if not plan.launch:
            return list(plan.retry)
        token = client_token([(m, receive_counts.get(m, 1)) for m in plan.launch],
                             plan.launching, settings.instance_target_capacity_type)
        outcome = Launcher(settings, self.ec2, self.ssm, self.github).launch(LaunchRequest(
            owner=group.owner, runner_type=group.runner_type, count=plan.launching,
            installation_id=group.installation_id, client_token=token, image_id=self.image_id(),
        ))
        self.ledger.record(group.owner, group.runner_type, outcome.running, self.clock())
        result = settle(plan.launch, len(outcome.ready), outcome.retryable_shortfall)
        jobs = {job.message_id: (job.full_repo, job.id) for job in group.jobs}
        self.ledger.record_jobs((jobs[m] for m in result.launched), self.clock())
        log.info("scale-up result", owner=group.owner, launched=len(result.launched),
                 instance_ids=list(outcome.ready), retrying=len(result.retry),
                 consumed=len(result.consume), terminated=list(outcome.terminated),
                 fleet_errors=[e.code for e in outcome.errors])
        for message_id in result.consume:
            log.error("message dropped", message_id=message_id,
                      reason="capacity refused for a permanent reason",
                      codes=[e.code for e in outcome.errors])
            metrics.put("JobsDropped", 1, reason="permanent fleet error")
        metrics.put("RunnersLaunched", len(result.launched))
        return [*plan.retry, *result.retry]

    def still_queued(self, group: Group) -> list[JobMessage]:
        """The group's jobs GitHub still reports as queued (all of them when the check is off)."""
        jobs = group.jobs
        if not self.settings.enable_job_queued_check:
            return list(jobs)

        def status(job: JobMessage) -> str:
            try:
                return self.github.job_status(job.full_repo, job.id, job.installation_id,
                                              group.runner_type)
            except GhrError as error:
                # Fail open (R-UP-05): a surplus runner is reclaimed by scale-down, a lost job
                # is not.
                log.warning("queued check failed; assuming queued", job_id=job.id,
                            repository=job.full_repo, error=str(error))
                return "queued"

        queued: list[JobMessage] = []
        for job, state in zip(jobs, parallel(status, list(jobs)), strict=True):
            if state == "queued":
                queued.append(job)
            else:
                log.info("message dropped", message_id=job.message_id, job_id=job.id,
                         status=state, reason=NOT_QUEUED)
                metrics.put("JobsDropped", 1, reason=NOT_QUEUED)
        return queued

    def current(self, group: Group) -> int:
        """Running and pending instances of the group's owner: one DescribeInstances for the
        owner, or one for the whole batch when it holds several owners, plus the container's
        recent launches EC2 does not list yet."""
        key = (group.owner, group.runner_type)
        if not self._shared_count:
            listed = [i.instance_id for i in self.ec2.runner_instances(
                self.settings.environment, group.owner, group.runner_type)]
        else:
            with self._lock:
                if self._listed is None:
                    self._listed = {}
                    for instance in self.ec2.runner_instances(self.settings.environment):
                        self._listed.setdefault((instance.owner, instance.runner_type),
                                                []).append(instance.instance_id)
                listed = self._listed.get(key, [])
        unlisted = self.ledger.unlisted(*key, listed, self.clock())
        if unlisted:
            log.info("recent launches not listed by EC2 yet", owner=group.owner,
                     runner_type=group.runner_type, listed=len(listed), unlisted=unlisted)
        return len(listed) + unlisted

    def image_id(self) -> str | None:
        """The AMI from `AMI_ID_SSM_PARAMETER_NAME`, read once per invocation; None when unset."""
        with self._lock:
            if self._image is None:
                self._image = (image_id(self.settings.ami_id_ssm_parameter_name, self.ssm),)
            return self._image[0]
