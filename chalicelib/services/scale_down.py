"""The scale-down service: snapshot AWS and GitHub, plan, mark, deregister, terminate, clean
tokens.

Order of a run, and why:
1. One paginated DescribeInstances of every runner configuration's environment (§6) in every
   state: the live instances are decided on; the dead ones name owners whose ghost runners need
   deregistering.
2. One paginated runner listing per owner (owners compare without case). An owner whose listing
   fails is skipped whole: no decision is made on GitHub state we do not know (FI-26); the other
   owners go on.
3. The pure plan of each configuration (`rules/scale_down_scopes.py`), logged once each, and
   merged. Runners naming instances outside the listing
   get a second look first: one DescribeInstances by id, and the state table's absence marks
   when EC2 does not know some (`rules/ghosts.py`).
4. Marks: instances first seen without a runner are tagged `ghr:orphan-suspected` (one
   CreateTags), instances whose runner is listed again lose the tag, absences are recorded
   (`services/scale_down_marks.py`).
5. Each removal deregisters first; only "deleted" lets its instance be terminated. A 422 (the
   runner took a job since the listing) or any failure keeps the instance (R-DOWN-02). An orphan
   without a runner is terminated only when a direct look-up of its runner finds none.
6. All terminations in one TerminateInstances call; then stale tokens are deleted, and re-runs
   GitHub refused while the job's run went on are asked again (§9). Limitation: owners are learnt
   from instances (live or recently dead) and `RUNNER_OWNER`: an owner without any is not seen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from chalicelib import metrics
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.ssm import Ssm
from chalicelib.aws.state import StateTable
from chalicelib.errors import GhrError, RetryableError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.models import LIVE_STATES, Instance, Runner
from chalicelib.rules.ghosts import GhostFacts
from chalicelib.rules.scale_down import (
    OwnerKey,
    Removal,
    ScaleDownPlan,
    plan_stale_tokens,
)
from chalicelib.rules.scale_down_scopes import merge_plans, plan_scopes, scope_owners
from chalicelib.runner_configs import RunnerConfigs
from chalicelib.services.rerun import retry_pending
from chalicelib.services.scale_down_marks import AbsenceMarks, mark_orphans, unmark_orphans
from chalicelib.services.scale_down_removals import confirm_orphan, deregister
from chalicelib.settings import Settings

log = get_logger(__name__)

# Every state, so that one DescribeInstances also yields recently dead instances (ghosts' owners).
ALL_STATES = ("pending", "running", "shutting-down", "stopping", "stopped", "terminated")
RESERVE_SECONDS = 10.0  # kept from deregistrations at the end for TerminateInstances, tokens


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
    # The absence marks of ghost candidates (`gone#<ENVIRONMENT>`).
    state: StateTable
    # The runner configurations, each a scope of the run (§6); None: the one of `settings`.
    configs: RunnerConfigs | None = None


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
        """False when a whole step failed: listings, orphan marks, terminate, tokens."""
        return not self.failed_steps


class _Run:
    """One scale-down run: its dependencies, deadline and what it has done so far."""

    def __init__(self, settings: Settings, github: GitHubClient, ec2: Ec2, ssm: Ssm,
                 remaining_seconds: float, now: datetime,
                 absence: AbsenceMarks | None = None, scopes: Sequence[Settings] = ()) -> None:
        self.settings, self.github, self.ec2, self.ssm, self.now = settings, github, ec2, ssm, now
        self.absence = absence
        self.scopes = tuple(scopes) or (settings,)
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
        """Snapshot the owners' runners and plan each scope; take the second look the plans
        ask for; log each scope's plan."""
        owners = scope_owners(instances, self.scopes)
        runners = self.list_runners(sorted(owners))
        if owners and not runners:
            self.failed_steps.append("github")
        plans = plan_scopes(instances, runners, self.scopes, self.now)
        unknown = merge_plans(plans).unknown_instance_ids
        if unknown:
            plans = plan_scopes(instances, runners, self.scopes, self.now,
                                ghost_facts=self.ghost_facts(unknown))
        for scope, plan in zip(self.scopes, plans, strict=True):
            scoped = {"environment": scope.environment} if len(self.scopes) > 1 else {}
            log.info("scale-down plan", **plan.summary(), **scoped)
        return merge_plans(plans)

    def ghost_facts(self, instance_ids: Sequence[str]) -> GhostFacts | None:
        """The instances `instance_ids` in any environment, and the absence marks of those EC2
        does not know; None when EC2 cannot say (no ghost of them this run)."""
        try:
            found = self.ec2.instances_by_id(instance_ids)
        except GhrError as error:
            log.warning("instance lookup failed", error=str(error), count=len(instance_ids))
            return None
        absent = set(instance_ids) - set(found)
        marks = (self.absence.read(self.now) if self.absence else None) if absent else {}
        return GhostFacts(found, frozenset(instance_ids), marks)

    def mark(self, plan: ScaleDownPlan) -> None:
        """Write the plan's marks: suspected orphans, and absent instances."""
        if not mark_orphans(self.ec2, plan.mark, self.now):
            self.failed_steps.append("orphan marks")
        unmark_orphans(self.ec2, plan.unmark)
        if self.absence is not None:
            self.absence.record(plan.mark_absent, self.now)
            self.absence.forget(plan.clear_absent)

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
            runner_id = removal.runner_id
            outcome = (confirm_orphan(self.github, removal) if runner_id is None
                       else deregister(self.github, removal, runner_id))
            if outcome in ("deleted", "absent"):
                if runner_id is not None:
                    deregistered.append(runner_id)
                if removal.instance_id is not None:
                    terminate.append(removal.instance_id)
            elif outcome == "busy" and runner_id is not None:
                kept_busy.append(runner_id)
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
            # A scope without a token path (the top level, when every configuration sets its
            # own) has no tokens: listing "" would list every parameter of the region.
            paths = dict.fromkeys(s.ssm_token_path for s in self.scopes
                                  if s.ssm_token_path.strip("/"))
            parameters = [p for path in paths for p in self.ssm.parameters_under(path)]
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
    scopes = deps.configs.scopes if deps.configs is not None else (settings,)
    run = _Run(settings, github, deps.ec2, deps.ssm, remaining_seconds, now or utcnow(),
               AbsenceMarks(deps.state, settings.environment), scopes)
    try:
        # One listing of every configuration's environment (§6).
        instances = run.ec2.runner_instances(
            [s.environment for s in scopes] if len(scopes) > 1 else scopes[0].environment,
            states=ALL_STATES)
    except GhrError as error:
        # Without the instances nothing can be decided safely, tokens included.
        log.error("instance listing failed", error=str(error))
        raise RetryableError(f"scale-down snapshot failed: {error}") from error
    plan = run.plan(instances)
    run.mark(plan)
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
        from chalicelib.services.redelivery import redelivery_step

        redelivery_step(github.webhook_deliveries(), run.now)
    if settings.enable_spot_interruption_rerun:  # re-runs GitHub refused while runs went on
        retry_pending(deps.state, github, settings, run.now.timestamp())
    github.log_summary()
    return report


def _subject(removal: Removal) -> int | str:
    return removal.instance_id or removal.runner_id or ""

