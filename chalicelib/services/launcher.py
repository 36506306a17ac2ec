"""Launch runner instances and hand each its registration, shared by scale-up and the pool.

One instant fleet per call (with an on-demand retry of missing spot capacity when configured),
then per instance a SecureString `<SSM_TOKEN_PATH>/<instance-id>` holding the `config.sh`
arguments or a JIT config. An instance whose configuration could not be written is terminated:
no instance is left waiting for a token that never comes (R-UP-06).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2, FleetError, FleetRequest, FleetResult
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, GhrError, PermanentError, RetryableError
from chalicelib.github.limits import web_base_url
from chalicelib.logs import get_logger
from chalicelib.models import (
    APPLICATION,
    TAG_APPLICATION,
    TAG_CREATED_BY,
    TAG_ENVIRONMENT,
    TAG_OWNER,
    TAG_RUNNER_ID,
    TAG_TYPE,
    RunnerType,
)
from chalicelib.rules.scale_up import shortfall_retryable, wants_on_demand_failover
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.github.client import GitHubClient

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


def config_arguments(settings: Settings, owner: str, runner_type: RunnerType, token: str) -> str:
    """The `config.sh` arguments of CONTRACT.md §4, shell-quoted where a value needs it."""
    parts = [f"--url {web_base_url(settings.ghes_url)}/{owner}", f"--token {token}"]
    if settings.runner_labels:
        parts.append("--labels " + shlex.quote(",".join(settings.runner_labels)))
    if runner_type == "Org":
        parts.append("--runnergroup " + shlex.quote(settings.runner_group_name))
    if settings.disable_runner_autoupdate:
        parts.append("--disableupdate")
    if settings.enable_ephemeral_runners:
        parts.append("--ephemeral")
    return " ".join(parts)


def runner_tags(settings: Settings, owner: str, runner_type: RunnerType,
                created_by: str) -> tuple[tuple[str, str], ...]:
    """The CONTRACT.md §4 tags of a runner instance and its volumes."""
    return ((TAG_APPLICATION, APPLICATION), (TAG_ENVIRONMENT, settings.environment),
            (TAG_TYPE, runner_type), (TAG_OWNER, owner), (TAG_CREATED_BY, created_by))


def image_id(parameter: str | None, ssm: Ssm) -> str | None:
    """The AMI id held in `AMI_ID_SSM_PARAMETER_NAME` (it overrides the launch template's);
    None when the setting is unset, ConfigError when the parameter is missing or empty."""
    if not parameter:
        return None
    value = ssm.get_string(parameter)
    if not value or not value.strip():
        raise ConfigError(f"{parameter}: SSM parameter with the runner AMI id not found")
    return value.strip()


def parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`function` over `items` on a few threads, each with the caller's log context."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        futures = [pool.submit(copy_context().run, function, item) for item in items]
        return [future.result() for future in futures]


def _fleet(ec2: Ec2, settings: Settings, request: FleetRequest, owner: str) -> FleetResult:
    """Launch `request`, with one on-demand retry of missing spot capacity when configured."""
    result = ec2.launch(request)
    missing = request.count - len(result.instance_ids)
    codes = [error.code for error in result.errors]
    for code in codes:
        metrics.put("FleetErrors", 1, code=code)
    if missing > 0 and wants_on_demand_failover(request.capacity_type, codes,
                                                settings.enable_on_demand_failover_for_errors):
        log.info("on-demand failover", owner=owner, missing=missing, codes=codes)
        token = f"{request.client_token[:60]}-od" if request.client_token else None
        on_demand = ec2.launch(replace(request, count=missing, capacity_type="on-demand",
                                       client_token=token))
        for error in on_demand.errors:
            metrics.put("FleetErrors", 1, code=error.code)
        # The on-demand answer decides whether what is still missing is worth a retry.
        result = FleetResult(result.instance_ids + on_demand.instance_ids,
                             on_demand.errors or result.errors)
    return result


def launch_runners(
    settings: Settings,
    ec2: Ec2,
    ssm: Ssm,
    github: GitHubClient,
    *,
    owner: str,
    runner_type: RunnerType,
    count: int,
    created_by: str = "scale-up-lambda",
    installation_id: int = 0,
    client_token: str | None = None,
    image_id: str | None = None,
) -> LaunchOutcome:
    """Launch `count` runners for `owner` and write each one's registration into SSM.

    The caller has already clamped `count` to the cap. A registration prerequisite that
    fails (token, runner group) raises before any instance exists; a fleet call that fails
    becomes a shortfall, retryable or permanent.
    """
    jit = settings.enable_ephemeral_runners and settings.enable_jit_config
    deferred = 0
    if jit and count > 0:
        # Each instance needs a JIT config, a write GitHub allows 180 a minute: launch only
        # what can be configured before the deadline; the rest of the jobs wait in the queue
        # instead of becoming instances that are terminated for want of a config.
        allowed = github.jit_capacity(runner_type)
        if allowed < count:
            deferred = count - allowed
            log.warning("JIT budget short; jobs wait", owner=owner, requested=count,
                        launching=allowed)
            metrics.put("JitConfigsDeferred", deferred)
            count = allowed
    if count < 1:
        return LaunchOutcome(ready=(), retryable_shortfall=deferred)
    arguments = group_id = None
    if jit:
        group_id = (github.runner_group_id(owner, settings.runner_group_name, installation_id)
                    if runner_type == "Org" else DEFAULT_RUNNER_GROUP_ID)
    else:
        token = github.registration_token(owner, runner_type, installation_id,
                                          reuse_for=REGISTRATION_TOKEN_REUSE_SECONDS)
        arguments = config_arguments(settings, owner, runner_type, token)
    request = FleetRequest(
        launch_template_name=settings.launch_template_name, subnet_ids=settings.subnet_ids,
        instance_types=settings.instance_types, count=count,
        tags=runner_tags(settings, owner, runner_type, created_by),
        capacity_type=settings.instance_target_capacity_type,
        allocation_strategy=settings.instance_allocation_strategy,
        max_spot_price=settings.instance_max_spot_price, image_id=image_id,
        client_token=client_token,
    )
    try:
        fleet = _fleet(ec2, settings, request, owner)
    except RetryableError as error:
        log.warning("fleet launch failed", owner=owner, count=count, error=str(error))
        metrics.put("FleetErrors", 1, code="call_failed")
        return LaunchOutcome(ready=(), retryable_shortfall=count + deferred)
    except PermanentError as error:
        log.error("fleet launch rejected", owner=owner, count=count, error=str(error))
        metrics.put("FleetErrors", 1, code="call_rejected")
        return LaunchOutcome(ready=(), retryable_shortfall=deferred, permanent_shortfall=count)
    instance_ids = fleet.instance_ids[:count]
    missing = count - len(instance_ids)
    codes = [error.code for error in fleet.errors]
    if missing:
        log.warning("fleet short of capacity", owner=owner, requested=count,
                    launched=len(instance_ids), codes=codes)
    retryable = shortfall_retryable([error.retryable for error in fleet.errors])

    def configure(instance_id: str) -> bool:
        return _write_config(settings, ec2, ssm, github, owner, runner_type, instance_id,
                             arguments, group_id, installation_id)

    try:
        written = parallel(configure, list(instance_ids))
    except BaseException:
        # Whatever broke (a configuration error, a bug), no instance may wait for a
        # registration that will never be written.
        _terminate(ec2, fleet.instance_ids, owner)
        raise
    ready = tuple(i for i, ok in zip(instance_ids, written, strict=True) if ok)
    failed = [i for i, ok in zip(instance_ids, written, strict=True) if not ok]
    # EC2 never launches more than asked for an unweighted instant fleet; if it did, the extra
    # instances have no job and no registration.
    terminated = _terminate(ec2, [*failed, *fleet.instance_ids[count:]], owner)
    return LaunchOutcome(
        ready=ready,
        retryable_shortfall=len(failed) + (missing if retryable else 0) + deferred,
        permanent_shortfall=0 if retryable else missing,
        errors=fleet.errors, terminated=terminated, launched=tuple(fleet.instance_ids),
    )


def _write_config(settings: Settings, ec2: Ec2, ssm: Ssm, github: GitHubClient, owner: str,
                  runner_type: RunnerType, instance_id: str, arguments: str | None,
                  group_id: int | None, installation_id: int) -> bool:
    """Write one instance's registration; False (logged) when it could not be written."""
    name = f"{settings.ssm_token_path}/{instance_id}"
    try:
        runner_id = None
        if arguments is None:
            jit = github.jit_config(owner, runner_type, settings.runner_name_prefix + instance_id,
                                    group_id or DEFAULT_RUNNER_GROUP_ID, settings.default_labels,
                                    installation_id)
            value, runner_id = jit.encoded_jit_config, jit.runner_id
        else:
            value = arguments
        ssm.put_runner_config(name, value, tags={"InstanceId": instance_id})
    except ConfigError:
        raise  # every instance fails alike: launch_runners terminates them and re-raises
    except GhrError as error:
        log.error("runner configuration not written", owner=owner, instance_id=instance_id,
                  error=str(error))
        return False
    if runner_id is not None:
        try:
            # Lets scale-down find the JIT runner by id; the runner itself works without it.
            ec2.tag(instance_id, {TAG_RUNNER_ID: str(runner_id)})
        except GhrError as error:
            log.warning("runner id tag not written", instance_id=instance_id, error=str(error))
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
