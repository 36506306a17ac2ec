"""ec2_events (docs/REFERENCE.md §9): spot interruption warnings and instances ending.

EventBridge events carry no tags, so each event costs one DescribeInstances (by id) to tell
whether the instance is this deployment's runner; any other instance, and a malformed event, is
logged and ignored. For one of ours:

- an interruption warning (two minutes before EC2 takes the instance back) tags the instance
  `ghr:interrupted=<event time>`, records the interruption in the state table for a day (the
  webhook re-runs the job it kills, services/rerun.py), deletes its token parameter if it is
  still there, and deregisters its runner at once when idle, so that no job lands on it in its
  last two minutes; a busy runner is left (GitHub would answer 422). It emits
  `SpotInterruptionWarning` with the instance type and availability zone.
- a state change to shutting-down or terminated deregisters its runner and deletes its token
  within the invocation; a 422 (still busy) is left to scale-down, the backstop of every event.

No step fails the invocation: each failure is logged, and scale-down cleans up what is left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.ssm import Ssm
from chalicelib.aws.state import StateTable
from chalicelib.errors import GhrError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.models import TAG_ENVIRONMENT, TAG_INTERRUPTED, TAG_RUNNER_ID, Instance, Runner
from chalicelib.rules import reruns
from chalicelib.rules.ec2_events import Ec2Event, Ignored, is_ours, parse_event
from chalicelib.rules.removals import mark_value
from chalicelib.runner_configs import RunnerConfigs, single
from chalicelib.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Ec2EventsDeps:
    """The adapters ec2_events works with (built by `wiring.ec2_events`)."""

    settings: Settings
    ec2: Ec2
    ssm: Ssm
    github: GitHubClient
    # Interruptions recorded (`interrupted#<ENVIRONMENT>`), bindings read (`run#<runner>`).
    state: StateTable
    # The runner configurations (§6): an instance of any of them is ours; None: `settings`.
    configs: RunnerConfigs | None = None


@dataclass(frozen=True)
class Ec2EventOutcome:
    """What one event did: `ignored`, `interrupted` or `ended`, and to its runner."""

    action: str
    instance_id: str | None = None
    runner: str = "none"  # deleted | busy | not_found | kept | error | none
    reason: str | None = None


def handle_event(event: Any, deps: Ec2EventsDeps, remaining_seconds: float,
                 now: float | None = None) -> Ec2EventOutcome:
    """Act on one EventBridge event; never raises for an event or a failing call."""
    parsed = parse_event(event)
    if isinstance(parsed, Ignored):
        return _ignored(None, parsed)
    deps.github.set_deadline(remaining_seconds)
    try:
        instance = deps.ec2.instances_by_id([parsed.instance_id]).get(parsed.instance_id)
    except GhrError as error:
        log.error("instance lookup failed; event left to scale-down",
                  instance_id=parsed.instance_id, error=str(error))
        return Ec2EventOutcome("ignored", parsed.instance_id, reason="lookup failed")
    # Ours: tagged with the environment of one of the configurations (§6), whose settings
    # (runner name prefix, token path) then apply.
    configs = deps.configs or single(deps.settings)
    scope = configs.scope_for(instance.tag(TAG_ENVIRONMENT)) if instance else None
    if instance is None or scope is None or not is_ours(instance, configs.environments):
        return _ignored(parsed.instance_id, Ignored("not an instance of this deployment"))
    moment = now if now is not None else time.time()
    if parsed.kind == "interruption":
        return _interruption(parsed, instance, deps, moment, scope)
    return _ending(parsed, instance, deps, scope)


def _ignored(instance_id: str | None, ignored: Ignored) -> Ec2EventOutcome:
    level = log.warning if ignored.malformed else log.info
    level("ec2 event ignored", instance_id=instance_id, reason=ignored.reason,
          malformed=ignored.malformed)
    metrics.put("Ec2EventsIgnored", 1, malformed=str(ignored.malformed).lower())
    return Ec2EventOutcome("ignored", instance_id, reason=ignored.reason)


def _interruption(event: Ec2Event, instance: Instance, deps: Ec2EventsDeps,
                  now: float, scope: Settings) -> Ec2EventOutcome:
    """Tag, record, drop the token, deregister an idle runner; the metric."""
    since = event.time or mark_value(datetime.fromtimestamp(now, UTC))
    name = scope.runner_name_prefix + instance.instance_id
    try:
        deps.ec2.tag_instances([instance.instance_id], TAG_INTERRUPTED, since)
    except GhrError as error:
        log.warning("interruption tag not written", instance_id=instance.instance_id,
                    error=str(error))
    runner, outcome = _runner(deps, instance, name)
    if runner is not None and not runner.busy and outcome == "found":
        outcome = "kept" if instance.bypass_removal else _deregister(deps, instance, runner)
    elif runner is not None and runner.busy:
        outcome = "busy"
    job = _record(deps, instance, name, since, now, busy=outcome == "busy")
    token = _delete_token(deps, scope, instance.instance_id)
    metrics.put("SpotInterruptionWarning", 1, InstanceType=instance.instance_type or "unknown",
                AvailabilityZone=instance.availability_zone or "unknown")
    log.info("spot interruption warning", instance_id=instance.instance_id, owner=instance.owner,
             instance_type=instance.instance_type, availability_zone=instance.availability_zone,
             runner_name=name, runner=outcome, token_deleted=token, since=since, **job)
    return Ec2EventOutcome("interrupted", instance.instance_id, runner=outcome)


def _ending(event: Ec2Event, instance: Instance, deps: Ec2EventsDeps,
            scope: Settings) -> Ec2EventOutcome:
    """Deregister the runner of an instance going away and delete its token."""
    name = scope.runner_name_prefix + instance.instance_id
    runner, outcome = _runner(deps, instance, name)
    if runner is not None and outcome == "found":
        outcome = _deregister(deps, instance, runner)
    token = _delete_token(deps, scope, instance.instance_id)
    log.info("runner instance ending", instance_id=instance.instance_id, state=event.state,
             owner=instance.owner, runner_name=name, runner=outcome, token_deleted=token)
    metrics.put("InstanceEndings", 1, runner=outcome)
    return Ec2EventOutcome("ended", instance.instance_id, runner=outcome)


def _runner(deps: Ec2EventsDeps, instance: Instance,
            name: str) -> tuple[Runner | None, str]:
    """The instance's runner: by its `ghr:github_runner_id` tag, else by name; (None, "none")
    when GitHub has none, (None, "error") when it cannot say."""
    github, owner, kind = deps.github, instance.owner, instance.runner_type
    if not owner:
        return None, "none"
    try:
        tagged = instance.tag(TAG_RUNNER_ID)
        runner = (github.get_runner(owner, kind, int(tagged)) if tagged and tagged.isdigit()
                  else github.find_runner(owner, kind, name))
    except GhrError as error:
        log.error("runner look-up failed; left to scale-down", instance_id=instance.instance_id,
                  owner=owner, error=str(error))
        return None, "error"
    return runner, "found" if runner is not None else "none"


def _deregister(deps: Ec2EventsDeps, instance: Instance, runner: Runner) -> str:
    """DELETE the runner: "deleted", "busy" (422: it took a job; scale-down's), "not_found",
    or "error"."""
    try:
        return str(deps.github.delete_runner(instance.owner, instance.runner_type, runner.id))
    except GhrError as error:
        log.error("runner deregistration failed; left to scale-down",
                  instance_id=instance.instance_id, runner_id=runner.id, error=str(error))
        return "error"


def _record(deps: Ec2EventsDeps, instance: Instance, name: str, since: str, now: float,
            busy: bool) -> dict[str, Any]:
    """Record the interruption for the webhook's re-run (a day); the job a busy runner runs,
    as the webhook bound it on `in_progress`, for the log."""
    job: dict[str, Any] = {}
    environment = deps.settings.environment
    try:
        binding = deps.state.get(*reruns.binding_key(name)) if busy else None
        if binding is not None:
            job = {"job_id": binding.get("jobId"), "repository": binding.get("repository")}
        deps.state.put(*reruns.interrupted_key(environment, instance.instance_id),
                       {"since": since, "owner": instance.owner, "runnerName": name,
                        "instanceType": instance.instance_type,
                        "availabilityZone": instance.availability_zone,
                        **({"jobId": job["job_id"]} if job else {})},
                       expires_at=int(now) + reruns.RECORD_SECONDS)
    except GhrError as error:
        # Without the record the job it kills is not re-run: the operator's to do.
        log.error("interruption not recorded; its job will not be re-run",
                  instance_id=instance.instance_id, error=str(error))
    return job


def _delete_token(deps: Ec2EventsDeps, scope: Settings, instance_id: str) -> bool:
    """Delete the instance's registration parameter (no error when it is gone already)."""
    try:
        deps.ssm.delete_parameters([f"{scope.ssm_token_path}/{instance_id}"])
    except GhrError as error:
        log.warning("token parameter not deleted; left to scale-down", instance_id=instance_id,
                    error=str(error))
        return False
    return True
