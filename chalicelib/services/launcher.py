"""Launch runner instances and hand each its registration, shared by scale-up and the pool.

One instant fleet per call (with an on-demand retry of missing spot capacity when configured),
then per instance a SecureString `<SSM_TOKEN_PATH>/<instance-id>` holding the `config.sh`
arguments or a JIT config. An instance whose configuration could not be written is terminated:
no instance is left waiting for a token that never comes (R-UP-06).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, replace
from typing import TypeVar

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2, FleetError, FleetRequest, FleetResult
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, GhrError, PermanentError, RetryableError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.models import TAG_RESERVATION, TAG_RUNNER_ID, RunnerType
from chalicelib.rules.launch import (
    config_arguments,
    runner_tags,
    shortfall_retryable,
    wants_on_demand_failover,
)
from chalicelib.services.write_budget import WriteBudget
from chalicelib.settings import Settings

log = get_logger(__name__)

# Registration tokens live one hour. A cached one is handed out for 20 minutes at most, so an
# instance booting within RUNNER_BOOT_TIME still registers with 40 minutes to spare (BI-27).
REGISTRATION_TOKEN_REUSE_SECONDS = 20 * 60
# Parallel SSM writes and JIT calls per launch: well under Parameter Store's ~40 TPS and
# GitHub's concurrency guidance; the GitHub client paces writes on top of this.
WORKERS = 8
# Repository runners have no runner groups; GitHub's default group has id 1.
DEFAULT_RUNNER_GROUP_ID = 1

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class LaunchOutcome:
    """What one launch achieved: instances ready to register, and the shortfall by kind."""

    ready: tuple[str, ...]
    retryable_shortfall: int = 0
    permanent_shortfall: int = 0
    errors: tuple[FleetError, ...] = ()
    terminated: tuple[str, ...] = ()
    launched: tuple[str, ...] = ()

    @property
    def running(self) -> tuple[str, ...]:
        """The instances launched and not terminated again (ready or not)."""
        return tuple(i for i in self.launched if i not in self.terminated)


def parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`function` over `items` on a few threads, each with the caller's log context."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        futures = [pool.submit(copy_context().run, function, item) for item in items]
        return [future.result() for future in futures]


@dataclass(frozen=True)
class LaunchRequest:
    """One launch: how many runners of which owner, and how to tell them apart."""

    owner: str
    runner_type: RunnerType
    count: int
    created_by: str = "scale-up-lambda"
    installation_id: int = 0
    # The CreateFleet idempotency token (see rules.scale_up.client_token).
    client_token: str | None = None
    # Overrides the launch template's AMI when set.
    image_id: str | None = None
    # The cap reservation the instances are launched under (tag ghr:reservation).
    reservation: str | None = None


@dataclass(frozen=True)
class _Registration:
    """What every instance of one launch registers with: `config.sh` arguments holding a
    registration token, or (JIT) the runner group each JIT config is created in."""

    arguments: str | None = None
    group_id: int = DEFAULT_RUNNER_GROUP_ID


class Launcher:
    """Launches runners over the adapters: budget, registration, fleet, configuration."""

    def __init__(self, settings: Settings, ec2: Ec2, ssm: Ssm, github: GitHubClient,
                 write_budget: WriteBudget | None = None) -> None:
        self.settings, self.ec2, self.ssm, self.github = settings, ec2, ssm, github
        # The deployment's shared budget of GitHub writes (JIT configs); None: this
        # container's own pacing only.
        self.write_budget = write_budget

    @property
    def jit(self) -> bool:
        """Whether each runner gets a just-in-time configuration of its own."""
        return self.settings.enable_ephemeral_runners and self.settings.enable_jit_config

    def launch(self, request: LaunchRequest) -> LaunchOutcome:
        """Launch `request.count` runners and write each one's registration into SSM.

        The caller has already clamped the count to the cap. A registration prerequisite that
        fails (token, runner group) raises before any instance exists; a fleet call that fails
        becomes a shortfall, retryable or permanent.
        """
        count, deferred = self._budget(request)
        if count < 1:
            return LaunchOutcome(ready=(), retryable_shortfall=deferred)
        registration = self._registration(request)
        try:
            fleet = self._fleet(replace(request, count=count))
        except RetryableError as error:
            log.warning("fleet launch failed", owner=request.owner, count=count, error=str(error))
            metrics.put("FleetErrors", 1, code="call_failed")
            return LaunchOutcome(ready=(), retryable_shortfall=count + deferred)
        except PermanentError as error:
            log.error("fleet launch rejected", owner=request.owner, count=count, error=str(error))
            metrics.put("FleetErrors", 1, code="call_rejected")
            return LaunchOutcome(ready=(), retryable_shortfall=deferred, permanent_shortfall=count)
        return self._configure(request, fleet, count, registration, deferred)

    def _budget(self, request: LaunchRequest) -> tuple[int, int]:
        """How many to launch now, and how many wait for GitHub's write budget (JIT only)."""
        if not self.jit or request.count < 1:
            return request.count, 0
        # Each instance needs a JIT config, a write GitHub allows 180 a minute: launch only
        # what can be configured before the deadline; the rest of the jobs wait in the queue
        # instead of becoming instances that are terminated for want of a config.
        allowed = min(request.count, self.github.jit_capacity(request.runner_type))
        if self.write_budget is not None:
            # Other containers write too: take this launch's writes from the shared budget.
            allowed = self.write_budget.take(allowed)
        if allowed >= request.count:
            return request.count, 0
        deferred = request.count - allowed
        log.warning("JIT budget short; jobs wait", owner=request.owner, requested=request.count,
                    launching=allowed)
        metrics.put("JitConfigsDeferred", deferred)
        return allowed, deferred

    def _registration(self, request: LaunchRequest) -> _Registration:
        if self.jit:
            if request.runner_type != "Org":
                return _Registration()
            return _Registration(group_id=self.github.runner_group_id(
                request.owner, self.settings.runner_group_name, request.installation_id))
        token = self.github.registration_token(request.owner, request.runner_type,
                                               request.installation_id,
                                               reuse_for=REGISTRATION_TOKEN_REUSE_SECONDS)
        return _Registration(arguments=config_arguments(self.settings, request.owner,
                                                        request.runner_type, token))

    def _fleet(self, request: LaunchRequest) -> FleetResult:
        """Launch one instant fleet, with one on-demand retry of missing spot capacity when
        configured."""
        settings = self.settings
        fleet = FleetRequest(
            launch_template_name=settings.launch_template_name, subnet_ids=settings.subnet_ids,
            instance_types=settings.instance_types, count=request.count,
            tags=(*runner_tags(settings, request.owner, request.runner_type, request.created_by),
                  *(((TAG_RESERVATION, request.reservation),) if request.reservation else ())),
            capacity_type=settings.instance_target_capacity_type,
            allocation_strategy=settings.instance_allocation_strategy,
            max_spot_price=settings.instance_max_spot_price, image_id=request.image_id,
            client_token=request.client_token,
        )
        result = self.ec2.launch(fleet)
        missing = fleet.count - len(result.instance_ids)
        codes = [error.code for error in result.errors]
        for code in codes:
            metrics.put("FleetErrors", 1, code=code)
        if missing > 0 and wants_on_demand_failover(
                fleet.capacity_type, codes, settings.enable_on_demand_failover_for_errors):
            log.info("on-demand failover", owner=request.owner, missing=missing, codes=codes)
            token = f"{fleet.client_token[:60]}-od" if fleet.client_token else None
            on_demand = self.ec2.launch(replace(fleet, count=missing, capacity_type="on-demand",
                                                client_token=token))
            for error in on_demand.errors:
                metrics.put("FleetErrors", 1, code=error.code)
            # The on-demand answer decides whether what is still missing is worth a retry.
            result = FleetResult(result.instance_ids + on_demand.instance_ids,
                                 on_demand.errors or result.errors)
        return result

    def _configure(self, request: LaunchRequest, fleet: FleetResult, count: int,
                   registration: _Registration, deferred: int) -> LaunchOutcome:
        """Write each launched instance's registration; terminate those left without one."""
        instance_ids = fleet.instance_ids[:count]
        missing = count - len(instance_ids)
        if missing:
            log.warning("fleet short of capacity", owner=request.owner, requested=count,
                        launched=len(instance_ids), codes=[e.code for e in fleet.errors])
        retryable = shortfall_retryable([error.retryable for error in fleet.errors])
        try:
            written = parallel(lambda i: self._write_config(request, i, registration),
                               list(instance_ids))
        except BaseException:
            # Whatever broke (a configuration error, a bug), no instance may wait for a
            # registration that will never be written.
            _terminate(self.ec2, fleet.instance_ids, request.owner)
            raise
        ready = tuple(i for i, ok in zip(instance_ids, written, strict=True) if ok)
        failed = [i for i, ok in zip(instance_ids, written, strict=True) if not ok]
        # EC2 never launches more than asked for an unweighted instant fleet; if it did, the
        # extra instances have no job and no registration.
        terminated = _terminate(self.ec2, [*failed, *fleet.instance_ids[count:]], request.owner)
        return LaunchOutcome(
            ready=ready,
            retryable_shortfall=len(failed) + (missing if retryable else 0) + deferred,
            permanent_shortfall=0 if retryable else missing,
            errors=fleet.errors, terminated=terminated, launched=tuple(fleet.instance_ids),
        )

    def _write_config(self, request: LaunchRequest, instance_id: str,
                      registration: _Registration) -> bool:
        """Write one instance's registration; False (logged) when it could not be written."""
        settings = self.settings
        name = f"{settings.ssm_token_path}/{instance_id}"
        runner_id = None
        try:
            if registration.arguments is None:
                jit = self.github.jit_config(
                    request.owner, request.runner_type, settings.runner_name_prefix + instance_id,
                    registration.group_id, settings.default_labels, request.installation_id)
                value, runner_id = jit.encoded_jit_config, jit.runner_id
            else:
                value = registration.arguments
            self.ssm.put_runner_config(name, value, tags={"InstanceId": instance_id},
                                       key_id=settings.runner_token_kms_key_id)
        except ConfigError:
            raise  # every instance fails alike: the launch terminates them and re-raises
        except GhrError as error:
            log.error("runner configuration not written", owner=request.owner,
                      instance_id=instance_id, error=str(error))
            return False
        if runner_id is not None:
            try:
                # Lets scale-down find the JIT runner by id; the runner itself works without it.
                self.ec2.tag(instance_id, {TAG_RUNNER_ID: str(runner_id)})
            except GhrError as error:
                log.warning("runner id tag not written", instance_id=instance_id,
                            error=str(error))
        return True


def _terminate(ec2: Ec2, instance_ids: Sequence[str], owner: str) -> tuple[str, ...]:
    """Terminate instances left without a configuration; a failure is logged, not raised.

    Such an instance never registers, so scale-down removes it as an orphan after the boot
    time even when this call fails.
    """
    if not instance_ids:
        return ()
    try:
        ec2.terminate(instance_ids)
    except GhrError as error:
        log.error("unconfigured instances not terminated", owner=owner,
                  instance_ids=list(instance_ids), error=str(error))
        return ()
    metrics.put("RunnersTerminatedUnconfigured", len(instance_ids))
    return tuple(instance_ids)
