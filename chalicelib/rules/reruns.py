"""Re-running jobs lost to spot interruptions (docs/REFERENCE.md §9): what a `workflow_job`
delivery says about a runner and its job, which failed jobs qualify, and the state table keys.

Pure: payload dictionaries in, small frozen values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.rules.removals import instance_id_of

# A job a spot interruption took down: GitHub reports it failed or cancelled once the runner
# is gone (lost communication, or the runner's shutdown signal).
LOST_CONCLUSIONS = ("failure", "cancelled")
# How long scale-down keeps asking for a re-run GitHub refused while the run was still going.
RERUN_WINDOW_SECONDS = 6 * 3600
# What is recorded lives a day: interruptions, bindings, claims (a claim must outlive its
# window, so that a late `completed` delivery does not claim the job a second time).
RECORD_SECONDS = 24 * 3600
# Claim states: asked of GitHub again by scale-down only while pending.
PENDING, REQUESTED, REFUSED, EXPIRED = "pending", "requested", "refused", "expired"


@dataclass(frozen=True)
class JobRun:
    """A job on a runner, as a `workflow_job` delivery tells it."""

    repository: str  # owner/repo
    job_id: int
    run_id: int
    runner_name: str
    installation_id: int = 0
    conclusion: str | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def job_run(payload: Mapping[str, Any]) -> JobRun | None:
    """The job, its run and its runner in a delivery; None when one of them is missing."""
    job = payload.get("workflow_job")
    repository = payload.get("repository")
    installation = payload.get("installation")
    if not isinstance(job, dict) or not isinstance(repository, dict):
        return None
    name, full_name = job.get("runner_name"), repository.get("full_name")
    job_id, run_id = _int(job.get("id")), _int(job.get("run_id"))
    if not isinstance(name, str) or not name or not isinstance(full_name, str) \
            or "/" not in full_name or job_id is None or run_id is None:
        return None
    conclusion = job.get("conclusion")
    installation_id = _int(installation.get("id")) if isinstance(installation, dict) else None
    return JobRun(full_name, job_id, run_id, name[:200], installation_id or 0,
                  conclusion if isinstance(conclusion, str) else None)


def ours(run: JobRun, prefix: str) -> str | None:
    """The instance id of the run's runner when this deployment named it, else None."""
    return instance_id_of(run.runner_name, prefix)


def lost(run: JobRun) -> bool:
    """Whether the job ended as a lost runner leaves it (worth a re-run when interrupted)."""
    return run.conclusion in LOST_CONCLUSIONS


def interrupted_key(environment: str, instance_id: str) -> tuple[str, str]:
    """The record of an interrupted instance (written by ec2_events)."""
    return f"interrupted#{environment}", instance_id


def binding_key(runner_name: str) -> tuple[str, str]:
    """The record of the job a runner runs (written by the webhook on `in_progress`)."""
    return f"run#{runner_name}", "job"


def claim_key(environment: str, repository: str, job_id: int) -> tuple[str, str]:
    """The claim of one job's re-run; one partition per deployment, so that scale-down reads
    every claim with one Query."""
    return f"rerun#{environment}", f"{repository.lower()}#{job_id}"


def due(claim: Mapping[str, Any], now: float) -> str | None:
    """What scale-down does with a claim: "retry" (pending, within the window), "expire"
    (pending, past it) or None (decided already)."""
    if claim.get("state") != PENDING:
        return None
    claimed = claim.get("claimedAt")
    if not isinstance(claimed, int | float) or now - claimed > RERUN_WINDOW_SECONDS:
        return "expire"
    return "retry"
