"""What this container launched recently: instances, counted against the cap until EC2 lists
them, and the jobs they were launched for, not launched for twice.

DescribeInstances is eventually consistent: just after CreateFleet it can leave the new instances
out (R-UP-03, FI-25), and a scale-up that trusted it alone would launch past
RUNNERS_MAXIMUM_COUNT. A job's event can also come twice, in separate batches: a delivery GitHub
counted as failed after the webhook had queued it, then redelivered (R-Q-05). The deployed
defaults run one scale-up at a time, so the container that launched is the one that sees what
comes next. No API call is spent; a cold container starts with an empty ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from chalicelib.models import RunnerType

# EC2 usually lists a new instance within a few seconds; a minute covers the lag with room to
# spare, while an instance that ended within it (a spot reclaim) holds back a launch that long.
WINDOW_SECONDS = 60.0
# A repeat of a job's event comes within minutes (webhook redeliveries look back 15). Past this a
# job's copy is launched for again: the runner launched for it may be gone (a spot reclaim).
JOB_WINDOW_SECONDS = 600.0


class LaunchLedger:
    """Launch times of recent instances by owner; safe to share between threads."""

    def __init__(self, window: float = WINDOW_SECONDS,
                 job_window: float = JOB_WINDOW_SECONDS) -> None:
        self.window = window
        self.job_window = job_window
        self._launched: dict[tuple[str, RunnerType], dict[str, float]] = {}
        self._jobs: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def record_jobs(self, jobs: Iterable[tuple[str, int]], now: float) -> None:
        """Remember the `(repository, job id)`s launched for at `now`."""
        with self._lock:
            for job in jobs:
                self._jobs[job] = now

    def recent_jobs(self, now: float) -> frozenset[tuple[str, int]]:
        """The jobs launched for within the job window; older ones are forgotten."""
        with self._lock:
            for job in [j for j, at in self._jobs.items() if now - at >= self.job_window]:
                del self._jobs[job]
            return frozenset(self._jobs)

    def record(self, owner: str, runner_type: RunnerType, instance_ids: Iterable[str],
               now: float) -> None:
        """Remember `instance_ids` as launched for `owner` at `now` (a monotonic time)."""
        with self._lock:
            launched = self._launched.setdefault((owner, runner_type), {})
            self._forget(launched, now)  # with no cap, nothing else reads (and prunes) it
            for instance_id in instance_ids:
                launched[instance_id] = now

    def unlisted(self, owner: str, runner_type: RunnerType, listed: Iterable[str],
                 now: float) -> int:
        """How many of `owner`'s instances launched within the window EC2 left out of
        `listed` (the ids it described); older entries are forgotten."""
        seen = set(listed)
        with self._lock:
            launched = self._launched.get((owner, runner_type), {})
            self._forget(launched, now)
            return sum(1 for instance_id in launched if instance_id not in seen)

    def _forget(self, launched: dict[str, float], now: float) -> None:
        for instance_id in [i for i, at in launched.items() if now - at >= self.window]:
            del launched[instance_id]
