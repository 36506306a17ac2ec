"""How long jobs wait for a runner, and how long they run, from `workflow_job` events.

`in_progress` carries `created_at` (when the job was queued) and `started_at` (when a runner
picked it up): their difference is the queue time a platform team is judged on. `completed`
adds `completed_at`, giving the run time. Both are reported by label set, the unit a runner
configuration serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import logs, metrics

QUEUED_METRIC = "JobQueuedSeconds"
RUN_METRIC = "JobRunSeconds"
LABELS_DIMENSION = "Labels"

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class JobTiming:
    """The durations one `in_progress` or `completed` event tells, where it tells them."""

    job_id: int | None
    action: str
    label_set: str
    queued_seconds: float | None = None
    run_seconds: float | None = None
    runner_name: str | None = None
    conclusion: str | None = None


def label_set(labels: Iterable[str]) -> str:
    """A job's labels as one stable dimension value: lower case, unique, sorted, comma-joined."""
    return ",".join(sorted({label.lower() for label in labels}))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp of a payload (`2021-08-05T10:33:58Z`), or None if absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _seconds(start: Any, end: Any) -> float | None:
    begin, finish = parse_time(start), parse_time(end)
    if begin is None or finish is None:
        return None
    seconds = (finish - begin).total_seconds()
    # A negative span is bad data (clock skew between GitHub services), not a measurement.
    return seconds if seconds >= 0 else None


def job_timing(action: str, workflow_job: Mapping[str, Any]) -> JobTiming | None:
    """The timing an `in_progress` or `completed` event reports; None for other actions."""
    if action not in ("in_progress", "completed"):
        return None
    labels = workflow_job.get("labels")
    names = [name for name in labels if isinstance(name, str)] if isinstance(labels, list) else []
    job_id = workflow_job.get("id")
    runner_name = workflow_job.get("runner_name")
    runner = runner_name if isinstance(runner_name, str) and runner_name else None
    queued = run = None
    if action == "in_progress":
        queued = _seconds(workflow_job.get("created_at"), workflow_job.get("started_at"))
    elif runner is not None:
        # A job cancelled while queued completes without ever having had a runner: no run time.
        run = _seconds(workflow_job.get("started_at"), workflow_job.get("completed_at"))
    conclusion = workflow_job.get("conclusion")
    return JobTiming(
        job_id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None,
        action=action,
        label_set=label_set(names),
        queued_seconds=queued,
        run_seconds=run,
        runner_name=runner,
        conclusion=conclusion if isinstance(conclusion, str) else None,
    )


def record(timing: JobTiming, repository: str | None = None) -> None:
    """Put the timing's metrics (by label set) and log it with the runner that took the job."""
    if timing.queued_seconds is not None:
        metrics.put(QUEUED_METRIC, timing.queued_seconds, unit="Seconds",
                    **{LABELS_DIMENSION: timing.label_set})
    if timing.run_seconds is not None:
        metrics.put(RUN_METRIC, timing.run_seconds, unit="Seconds",
                    **{LABELS_DIMENSION: timing.label_set})
    log.info("job timing", job_id=timing.job_id, action=timing.action, labels=timing.label_set,
             repository=repository, runner_name=timing.runner_name,
             queued_seconds=timing.queued_seconds, run_seconds=timing.run_seconds,
             conclusion=timing.conclusion)
