"""The instances this container launched recently: counted against the cap until EC2 lists them.

DescribeInstances is eventually consistent: just after CreateFleet it can leave the new instances
out (R-UP-03, FI-25), and a scale-up that trusted it alone would launch past
RUNNERS_MAXIMUM_COUNT. The deployed defaults run one scale-up at a time, so the container that
launched is the one that counts next: it adds what it launched in the last `window` seconds and
EC2 does not list yet. No API call is spent; a cold container starts with an empty ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from chalicelib.models import RunnerType

# EC2 usually lists a new instance within a few seconds; a minute covers the lag with room to
# spare, while an instance that ended within it (a spot reclaim) holds back a launch that long.
WINDOW_SECONDS = 60.0


class LaunchLedger:
    """Launch times of recent instances by owner; safe to share between threads."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._launched: dict[tuple[str, RunnerType], dict[str, float]] = {}
        self._lock = threading.Lock()

    def record(self, owner: str, runner_type: RunnerType, instance_ids: Iterable[str],
               now: float) -> None:
        """Remember `instance_ids` as launched for `owner` at `now` (a monotonic time)."""
        with self._lock:
            launched = self._launched.setdefault((owner, runner_type), {})
            for instance_id in instance_ids:
                launched[instance_id] = now

    def unlisted(self, owner: str, runner_type: RunnerType, listed: Iterable[str],
                 now: float) -> int:
        """How many of `owner`'s instances launched within the window EC2 left out of
        `listed` (the ids it described); older entries are forgotten."""
        seen = set(listed)
        with self._lock:
            launched = self._launched.get((owner, runner_type), {})
            for instance_id in [i for i, at in launched.items() if now - at >= self.window]:
                del launched[instance_id]
            return sum(1 for instance_id in launched if instance_id not in seen)
