"""scale_up: from a batch of build-queue messages to launched, registered runners.

Parse → sort by runner configuration (§6) → group each configuration's jobs by owner → per
group, with its configuration's settings (services/scale_up_group.py): queued check,
reservation of capacity and claims of the jobs, plan, launch, settle. Returns the message ids
to retry (the Lambda's `batchItemFailures`); everything else was launched for or consumed with
a logged reason (docs/REFERENCE.md §5.3).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from typing import Any

from chalicelib import logs, metrics
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.sqs import BuildQueue
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, GhrError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.messages import Received, parse_batch
from chalicelib.models import TAG_ENVIRONMENT, Instance
from chalicelib.rules.scale_up import Group, group_jobs
from chalicelib.runner_configs import RunnerConfig, single
from chalicelib.services.capacity import CapacityLedger
from chalicelib.services.images import ImageResolver
from chalicelib.services.job_retry import JobRetries
from chalicelib.services.launcher import Launcher
from chalicelib.services.runner_configs import RunnerConfigSource
from chalicelib.services.scale_up_group import GroupContext, handle_group
from chalicelib.services.write_budget import WriteBudget
from chalicelib.settings import Settings

log = get_logger(__name__)

# Time kept back from GitHub waits and from starting a group: enough to return the batch
# response before the function times out (a timeout would retry every message). A quarter
# of the time left when that is less (a short test or local invocation).
RESERVE_SECONDS = 5.0
# Owners handled side by side; each also runs a few parallel calls (see launcher.WORKERS).
GROUP_WORKERS = 4
# How old the batch's instance listing may be when a group reserves against it: well under a
# reservation's lifetime (services/capacity.py).
LISTING_MAX_AGE = 60.0


def _reserve(remaining_seconds: float) -> float:
    return min(RESERVE_SECONDS, max(0.0, remaining_seconds) / 4)


@dataclass(frozen=True)
class ScaleUpDeps:
    """The adapters scale-up works with (built by `wiring.scale_up`)."""

    settings: Settings
    ec2: Ec2
    ssm: Ssm
    github: GitHubClient
    # The container's view of the shared cap (reservations in the state table).
    capacity: CapacityLedger
    # GitHub's write budget shared by the deployment's containers (JIT configs).
    write_budget: WriteBudget | None = None
    # The container's AMI resolver (SSM parameter, filter, or the launch template's).
    images: ImageResolver | None = None
    # The build queue, where job retry (§8) sends consumed messages back (None: retry off).
    queue: BuildQueue | None = None
    # The runner configurations (§6); None: the one of `settings`.
    configs: RunnerConfigSource | None = None


def handle_batch(records: Sequence[Mapping[str, Any]], deps: ScaleUpDeps,
                 remaining_seconds: float) -> list[str]:
    """Launch runners for a batch of SQS records; return the message ids to retry."""
    deps.github.set_deadline(max(1.0, remaining_seconds - _reserve(remaining_seconds)))
    try:
        return ScaleUp(deps).run(records, remaining_seconds)
    finally:
        # Each invocation's log names the App each owner's calls went to (REFERENCE.md §10).
        deps.github.log_summary()


class ScaleUp:
    """One invocation's scale-up over its adapters."""

    def __init__(self, deps: ScaleUpDeps, clock: Callable[[], float] = time.monotonic) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.clock = clock
        self._images: dict[str, str | None] = {}
        self._lock = threading.RLock()
        self._listed: tuple[float, list[Instance]] | None = None
        self._environments: tuple[str, ...] = ()

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
        by_config, unknown = self.by_config(batch.received)
        retry.extend(unknown)
        self._environments = tuple(config.settings.environment for config, _ in by_config)
        work = [item for config, received in by_config
                for item in self.groups_of(config, received)]
        # Owners are independent (each has its own cap), so their groups run side by side.
        with ThreadPoolExecutor(max_workers=max(1, min(GROUP_WORKERS, len(work)))) as pool:
            futures = [pool.submit(copy_context().run, self.safe_group, group, context,
                                   deadline) for group, context in work]
            for future in futures:
                retry.extend(future.result())
        metrics.put("JobsRetried", len(retry))
        return list(dict.fromkeys(retry))

    def by_config(self, received: Sequence[Received]) -> tuple[
            list[tuple[RunnerConfig, list[Received]]], list[str]]:
        """The batch's messages by runner configuration (§6), and the message ids naming one
        unknown even after a fresh read of the list (retried, so they end in the DLQ)."""
        source = self.deps.configs
        configs = source.get() if source is not None else single(self.settings)
        found: dict[str, tuple[RunnerConfig, list[Received]]] = {}
        unknown: list[str] = []
        fresh = False
        for item in received:
            config = configs.get(item.job.runner_config)
            if config is None and source is not None and not fresh:
                configs, fresh = source.get(fresh=True), True
                config = configs.get(item.job.runner_config)
            if config is None:
                log.error("unknown runner configuration; message retried",
                          message_id=item.job.message_id, job_id=item.job.id,
                          runner_config=item.job.runner_config,
                          known=[c.id for c in configs.configs])
                metrics.put("MessagesUnknownConfig", 1)
                unknown.append(item.job.message_id)
                continue
            found.setdefault(config.id, (config, []))[1].append(item)
        return list(found.values()), unknown

    def groups_of(self, config: RunnerConfig,
                  received: Sequence[Received]) -> list[tuple[Group, GroupContext]]:
        """One configuration's messages by owner, each with what its launch works with."""
        settings, deps = config.settings, self.deps
        groups, dropped = group_jobs((r.job for r in received),
                                     settings.enable_organization_runners)
        for item in dropped:
            log.info("message dropped", message_id=item.message_id, job_id=item.job_id,
                     reason=item.reason, runner_config=config.id)
            metrics.put("JobsDropped", 1, reason=item.reason)
        context = GroupContext(
            settings=settings, capacity=deps.capacity.for_environment(settings.environment),
            live=lambda group: self.live(group, settings.environment),
            launcher=Launcher(settings, deps.ec2, deps.ssm, deps.github, deps.write_budget),
            image_id=lambda: self.image_id(settings),
            receive_counts={r.job.message_id: r.receive_count for r in received},
            retries=JobRetries(settings.job_retry_config, deps.queue), config_id=config.id)
        return [(group, context) for group in groups]

    def safe_group(self, group: Group, context: GroupContext, deadline: float) -> list[str]:
        """`handle_group`, with any failure turned into a retry of this group's messages."""
        logs.bind(runner_config=context.config_id)  # this group's thread only
        if self.clock() > deadline:
            log.warning("no time left for group", owner=group.owner,
                        message_ids=list(group.message_ids))
            return list(group.message_ids)
        try:
            return handle_group(group, context)
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

    def live(self, group: Group, environment: str) -> list[Instance]:
        """The group's owner's running and pending instances of `environment`. One
        DescribeInstances of every environment of the batch serves every owner (owners compare
        case-insensitively), and is made again when older than LISTING_MAX_AGE: a reservation
        is checked against a listing younger than any other launch's reservation lifetime."""
        with self._lock:
            if self._listed is None or self.clock() - self._listed[0] > LISTING_MAX_AGE:
                self._listed = (self.clock(), self.deps.ec2.runner_instances(
                    self._environments or (environment,)))
            listed = self._listed[1]
        owner = group.owner.lower()
        return [i for i in listed if i.owner.lower() == owner
                and i.runner_type == group.runner_type
                and i.tag(TAG_ENVIRONMENT) in (None, environment)]

    def image_id(self, settings: Settings) -> str | None:
        """The AMI to launch with `settings` (services/images.py), resolved once per
        invocation and configuration; None for the launch template's."""
        with self._lock:
            if settings.environment not in self._images:
                images = self.deps.images or ImageResolver(self.deps.ec2, self.deps.ssm)
                self._images[settings.environment] = images.image_id(settings)
            return self._images[settings.environment]
