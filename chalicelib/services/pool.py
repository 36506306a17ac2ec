"""The pool service: keep `poolSize` org runners of `RUNNER_OWNER` ready for jobs.

Snapshot (the owner's live instances, its GitHub runners), the pure plan (`pool_plan`), then a
launch through the same fleet and registration path as scale-up, tagged
`ghr:created_by=pool-lambda`. Without the owner's runner list nothing is launched: the number
of idle runners would be a guess, and a guess could only overshoot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.sqs import BuildQueue
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, GhrError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.rules.pool import PoolPlan, plan_pool
from chalicelib.runner_configs import single
from chalicelib.services.capacity import CapacityLedger
from chalicelib.services.images import ImageResolver
from chalicelib.services.launcher import Launcher, LaunchRequest
from chalicelib.services.runner_configs import RunnerConfigSource
from chalicelib.services.write_budget import WriteBudget
from chalicelib.settings import Settings

log = get_logger(__name__)

CREATED_BY = "pool-lambda"


def utcnow() -> datetime:
    """The current time in UTC (a seam the tests may move)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class PoolDeps:
    """The adapters the pool works with (built by `wiring.adjust_pool`)."""

    settings: Settings
    ec2: Ec2
    ssm: Ssm
    github: GitHubClient
    # The container's view of the shared cap (reservations in the state table).
    capacity: CapacityLedger
    # The build queue, whose backlog the pool leaves room for; None when its URL is not set.
    queue: BuildQueue | None = None
    # GitHub's write budget shared by the deployment's containers (JIT configs).
    write_budget: WriteBudget | None = None
    # The container's AMI resolver (SSM parameter, filter, or the launch template's).
    images: ImageResolver | None = None
    # The runner configurations (§6); None: the one of `settings`.
    configs: RunnerConfigSource | None = None


@dataclass(frozen=True)
class PoolReport:
    """What one pool adjustment decided and launched."""

    plan: PoolPlan
    launched: tuple[str, ...] = ()
    shortfall: int = 0


def pool_size_of(event: Mapping[str, Any]) -> int:
    """`poolSize` of the EventBridge event; ConfigError when missing or not a count."""
    value = event.get("poolSize") if isinstance(event, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        # The rule's input comes from pool_config: a bad one is a deployment error.
        raise ConfigError(f"poolSize: expected a non-negative integer, got {value!r}")
    return value


def config_of(event: Mapping[str, Any], deps: PoolDeps) -> Settings:
    """The settings of the event's `runnerConfig` (absent: the first configuration); an id
    unknown even after a fresh read of the list is a deployment error (ConfigError)."""
    config_id = event.get("runnerConfig") if isinstance(event, Mapping) else None
    if config_id is not None and not isinstance(config_id, str):
        raise ConfigError(f"runnerConfig: expected a configuration id, got {config_id!r}")
    if deps.configs is None:
        configs = single(deps.settings)
    else:
        configs = deps.configs.get()
        if configs.get(config_id) is None:
            configs = deps.configs.get(fresh=True)
    config = configs.get(config_id)
    if config is None:
        raise ConfigError(f"runnerConfig: no runner configuration {config_id!r}, known: "
                          + ", ".join(c.id for c in configs.configs))
    return config.settings


def run_adjust_pool(event: Mapping[str, Any], deps: PoolDeps, remaining_seconds: float,
                    now: datetime | None = None) -> PoolReport:
    """Top up `RUNNER_OWNER`'s pool of org runners to the event's `poolSize`, with the
    settings of its `runnerConfig`."""
    ec2, ssm, github = deps.ec2, deps.ssm, deps.github
    pool_size = pool_size_of(event)
    settings = config_of(event, deps)
    owner = str(settings.runner_owner)  # required by adjust_pool's settings
    github.set_deadline(remaining_seconds)
    # Owners compare case-insensitively (GitHub's names do; EC2's tag filters do not).
    instances = [i for i in ec2.runner_instances(settings.environment)
                 if i.owner.lower() == owner.lower() and i.runner_type == "Org"]
    runners = github.list_runners(owner, "Org")
    moment = now or utcnow()
    plan = plan_pool(owner, pool_size, instances, runners, settings, moment)
    if plan.launch > 0 and plan.maximum >= 0:
        # Scale-up launches for the queued jobs against the same cap, maybe at this very moment
        # (REFERENCE.md §5.1): the pool leaves them their places. The queue holds every owner's
        # jobs, so this errs on the side of fewer pool runners.
        backlog = _build_backlog(deps.queue)
        if backlog:
            plan = plan_pool(owner, pool_size, instances, runners, settings, moment, backlog)
    log.info("pool plan", owner=owner, pool_size=pool_size, idle_online=plan.idle_online,
             booting=plan.booting, current=plan.current, maximum=plan.maximum,
             reserved=plan.reserved, launching=plan.launch)
    if plan.launch < 1:
        return PoolReport(plan=plan)
    # The same reservation as scale-up's: the pool and concurrent scale-ups share one cap.
    capacity = deps.capacity.for_environment(settings.environment)
    reservation = capacity.reserve(owner, "Org", plan.launch, plan.maximum, instances)
    if reservation.count < 1:
        log.info("pool launch deferred: the cap is reserved", owner=owner)
        return PoolReport(plan=plan)
    outcome = Launcher(settings, ec2, ssm, github, deps.write_budget).launch(LaunchRequest(
        owner=owner, runner_type="Org", count=reservation.count, created_by=CREATED_BY,
        image_id=(deps.images or ImageResolver(ec2, ssm)).image_id(settings),
        reservation=reservation.rid,
    ))
    capacity.release(reservation, used=len(outcome.running))
    shortfall = outcome.retryable_shortfall + outcome.permanent_shortfall
    log.info("pool result", owner=owner, launched=len(outcome.ready),
             instance_ids=list(outcome.ready), shortfall=shortfall,
             fleet_errors=[e.code for e in outcome.errors])
    metrics.put("PoolRunnersLaunched", len(outcome.ready))
    if shortfall:
        # The next scheduled adjustment tries again; the metric makes a lasting gap visible.
        metrics.put("PoolShortfall", shortfall)
    return PoolReport(plan=plan, launched=outcome.ready, shortfall=shortfall)


def _build_backlog(queue: BuildQueue | None) -> int:
    """Jobs waiting or in flight in the build queue; 0 when unknown (no queue URL, or the queue
    could not be read: the pool then tops up as it would without it)."""
    if queue is None:
        return 0
    try:
        return queue.backlog()
    except GhrError as error:
        log.warning("build queue not read; topping up", error=str(error))
        return 0
