"""The scale-down service: snapshot AWS and GitHub, plan, deregister, terminate, clean tokens.

Order of a run, and why:
1. One paginated DescribeInstances of this environment in every state: the live instances are
   decided on; the dead ones name owners whose ghost runners need deregistering.
2. One paginated runner listing per owner. An owner whose listing fails is skipped whole: no
   decision is made on GitHub state we do not know (FI-26); the other owners go on.
3. The pure plan (`scale_down_plan`), logged once. Runner-less instances and runners of unknown
   instances get a second look before the final plan (a second listing, an instance lookup).
4. Each removal deregisters first; only "deleted" lets its instance be terminated. A 422 (the
   runner took a job since the listing) or any failure keeps the instance (R-DOWN-02).
5. All terminations in one TerminateInstances call; then stale token parameters are deleted.

Limitation: owners are learnt from instances (live, or dead but still described, about an hour)
and `RUNNER_OWNER`. With no instance at all for an owner, its ghost runners are not seen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import GhrError, RetryableError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.models import LIVE_STATES, Instance, Runner
from chalicelib.rules.scale_down import (
    ABSENT,
    OwnerKey,
    Removal,
    ScaleDownPlan,
    owner_key,
    plan_scale_down,
    plan_stale_tokens,
)
from chalicelib.settings import Settings

log = get_logger(__name__)

# Every state, so that one DescribeInstances also yields recently dead instances (ghosts' owners).
ALL_STATES = ("pending", "running", "shutting-down", "stopping", "stopped", "terminated")
# Kept free of deregistrations at the end of the run: TerminateInstances and the token clean-up
# (a quarter of a short budget).
RESERVE_SECONDS = 10.0


def utcnow() -> datetime:
    """The current time in UTC (a seam the tests may move)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScaleDownDeps:
    """The adapters scale-down works with (built by `wiring.scale_down`)."""

    settings: Settings
    ec2: Ec2
    ssm: Ssm
    github: GitHubClient


@dataclass(frozen=True)
class ScaleDownReport:
    """What one run did: the plan and the outcome of each removal."""

    plan: ScaleDownPlan
    deregistered: tuple[int, ...] = ()
    terminated: tuple[str, ...] = ()
    kept_busy: tuple[int, ...] = ()
    failed: tuple[int | str, ...] = ()
    tokens_deleted: tuple[str, ...] = ()
    owners_failed: tuple[str, ...] = ()
    failed_steps: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """False when a whole step failed: terminate, tokens, or GitHub for every owner."""
        return not self.failed_steps


class _Run:
    """One scale-down run: its dependencies, deadline and what it has done so far."""

    def __init__(self, settings: Settings, github: GitHubClient, ec2: Ec2, ssm: Ssm,
                 remaining_seconds: float, now: datetime) -> None:
        self.settings, self.github, self.ec2, self.ssm, self.now = settings, github, ec2, ssm, now
        reserve = min(RESERVE_SECONDS, remaining_seconds / 4)
        self.deadline = time.monotonic() + remaining_seconds - reserve
        self.owners_failed: list[str] = []
        self.failed_steps: list[str] = []

    def list_runners(self, owners: Sequence[OwnerKey]) -> dict[OwnerKey, list[Runner]]:
        """The runners of each owner; an owner whose listing fails is left out (and logged)."""
        found: dict[OwnerKey, list[Runner]] = {}
        for owner, runner_type in owners:
            try:
                found[(owner, runner_type)] = self.github.list_runners(owner, runner_type)
            except GhrError as error:
                log.error("runner listing failed; owner skipped", owner=owner,
                          runner_type=runner_type, error=str(error))
                metrics.put("ScaleDownOwnerFailures", 1)
                if owner not in self.owners_failed:
                    self.owners_failed.append(owner)
        return found

    def plan(self, instances: Sequence[Instance]) -> ScaleDownPlan:
        """Snapshot the owners' runners and plan; take the second look the plan asks for."""
        owners = {owner_key(i) for i in instances if i.owner}
        if self.settings.runner_owner:
            owners.add((self.settings.runner_owner.lower(), "Org"))
        runners = self.list_runners(sorted(owners))
        if owners and not runners:
            self.failed_steps.append("github")
        plan = plan_scale_down(instances, runners, self.settings, self.now)
        if not plan.needs_confirmation:
            return plan
        again = self.list_runners(plan.suspect_owners)
        merged = {key: _merge(value, again.get(key, [])) for key, value in runners.items()}
        return plan_scale_down(instances, merged, self.settings, self.now,
                               instance_states=self.lookup(plan.unknown_instance_ids),
                               confirmed_owners=frozenset(again))

    def lookup(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """States of instance ids outside this environment; `ABSENT` for ids EC2 does not know."""
        if not instance_ids:
            return {}
        try:
            states = self.ec2.instance_states(instance_ids)
        except GhrError as error:
            # Unknown stays unknown: their runners are simply not treated as ghosts this run.
            log.warning("instance lookup failed", error=str(error), count=len(instance_ids))
            return {}
        return {instance_id: states.get(instance_id, ABSENT) for instance_id in instance_ids}

    def apply(self, plan: ScaleDownPlan) -> ScaleDownReport:
        """Deregister, then terminate what was deregistered (or had no runner) in one call."""
        deregistered: list[int] = []
        kept_busy: list[int] = []
        failed: list[int | str] = []
        terminate: list[str] = []
        broken: set[OwnerKey] = set()
        for removal in plan.removals:
            key = (removal.owner, removal.runner_type)
            if key in broken or time.monotonic() > self.deadline:
                failed.append(_subject(removal))
                continue
            if removal.runner_id is None:
                terminate.append(str(removal.instance_id))
                continue
            outcome = self.deregister(removal, removal.runner_id)
            if outcome == "deleted":
                deregistered.append(removal.runner_id)
                if removal.instance_id is not None:
                    terminate.append(removal.instance_id)
            elif outcome == "busy":
                kept_busy.append(removal.runner_id)
            elif outcome == "error":
                # GitHub already spent its retries on this owner: leave its other removals to
                # the next run instead of burning the invocation's time on them.
                broken.add(key)
                failed.append(_subject(removal))
        if len(failed) > 0:
            log.warning("removals left for the next run", subjects=failed)
            metrics.put("RunnerDeregistrationFailures", len(failed))
        terminated = self.terminate(terminate)
        return ScaleDownReport(plan=plan, deregistered=tuple(deregistered),
                               terminated=tuple(terminated), kept_busy=tuple(kept_busy),
                               failed=tuple(failed))

    def deregister(self, removal: Removal, runner_id: int) -> str:
        """DELETE the runner: "deleted", "busy", "not_found" or "error" (logged with the reason)."""
        try:
            outcome = self.github.delete_runner(removal.owner, removal.runner_type, runner_id)
        except GhrError as error:
            log.error("runner deregistration failed; instance kept", owner=removal.owner,
                      runner_id=removal.runner_id, instance_id=removal.instance_id,
                      kind=removal.kind, error=str(error))
            return "error"
        if outcome == "busy":
            log.info("runner took a job; instance kept", owner=removal.owner,
                     runner_id=removal.runner_id, instance_id=removal.instance_id)
            metrics.put("ScaleDownBusyRaces", 1)
        elif outcome == "not_found" and removal.instance_id is not None:
            # Gone from GitHub since the listing: the instance is judged again next run.
            log.info("runner already gone; instance kept for the next run",
                     runner_id=removal.runner_id, instance_id=removal.instance_id)
        return str(outcome)

    def terminate(self, instance_ids: list[str]) -> list[str]:
        """Terminate every instance of the run in one call; on failure, the next run retries."""
        if not instance_ids:
            return []
        try:
            self.ec2.terminate(instance_ids)
        except GhrError as error:
            # Their runners are deregistered already: next run sees runner-less orphans.
            log.error("instance termination failed", instance_ids=instance_ids, error=str(error))
            self.failed_steps.append("terminate")
            return []
        metrics.put("RunnersTerminated", len(instance_ids))
        return instance_ids

    def clean_tokens(self, live_instance_ids: frozenset[str]) -> tuple[str, ...]:
        """Delete token parameters past their lifetime or whose instance is not live (R-SSM-04)."""
        try:
            parameters = self.ssm.parameters_under(self.settings.ssm_token_path)
            stale = plan_stale_tokens(parameters, live_instance_ids, self.now)
            self.ssm.delete_parameters(stale)
        except GhrError as error:
            log.error("token clean-up failed", error=str(error))
            self.failed_steps.append("tokens")
            return ()
        if stale:
            log.info("stale token parameters deleted", count=len(stale))
            metrics.put("StaleTokensDeleted", len(stale))
        return stale


def run_scale_down(deps: ScaleDownDeps, remaining_seconds: float,
                   now: datetime | None = None) -> ScaleDownReport:
    """One scale-down run against the environment's AWS and GitHub (see the module docstring)."""
    settings, github = deps.settings, deps.github
    github.set_deadline(remaining_seconds)
    run = _Run(settings, github, deps.ec2, deps.ssm, remaining_seconds, now or utcnow())
    try:
        instances = run.ec2.runner_instances(settings.environment, states=ALL_STATES)
    except GhrError as error:
        # Without the instances nothing can be decided safely, tokens included.
        log.error("instance listing failed", error=str(error))
        raise RetryableError(f"scale-down snapshot failed: {error}") from error
    plan = run.plan(instances)
    log.info("scale-down plan", **plan.summary())
    report = run.apply(plan)
    live = frozenset(i.instance_id for i in instances if i.state in LIVE_STATES)
    tokens = run.clean_tokens(live - frozenset(report.terminated))
    report = replace(report, tokens_deleted=tokens, owners_failed=tuple(run.owners_failed),
                     failed_steps=tuple(run.failed_steps))
    log.info("scale-down done", deregistered=len(report.deregistered),
             terminated=len(report.terminated), kept_busy=len(report.kept_busy),
             failed=len(report.failed), tokens_deleted=len(tokens),
             owners_failed=report.owners_failed, failed_steps=report.failed_steps)
    if settings.enable_webhook_redelivery:
        _redeliver_failed_jobs(github, run.now)
    github.log_summary()
    return report


def _redeliver_failed_jobs(github: GitHubClient, now: datetime) -> None:
    """The optional redelivery step (see webhook_redelivery): best effort, never a failed run."""
    from chalicelib.services.redelivery import redeliver_failed_jobs

    try:
        plan = redeliver_failed_jobs(github.webhook_deliveries(), now)
    except GhrError as error:
        log.error("webhook redelivery failed", error=str(error))
        metrics.put("WebhookRedeliveryFailed", 1)
        return
    metrics.put("WebhooksRedelivered", len(plan.redeliver))


def _merge(first: Sequence[Runner], second: Sequence[Runner]) -> list[Runner]:
    """Two listings as one, conservatively: seen in either, busy or online if either says so."""
    merged: dict[int, Runner] = {r.id: r for r in first}
    for runner in second:
        seen = merged.get(runner.id)
        if seen is None:
            merged[runner.id] = runner
        else:
            online = "online" if "online" in (seen.status, runner.status) else runner.status
            merged[runner.id] = replace(runner, busy=seen.busy or runner.busy, status=online)
    return list(merged.values())


def _subject(removal: Removal) -> int | str:
    return removal.instance_id or removal.runner_id or ""

