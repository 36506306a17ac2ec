"""GitHub's limit on writes, shared by every container of the deployment (docs/REFERENCE.md §7).

Each JIT runner configuration is a write that GitHub's secondary limit counts: 900 points a
minute, 5 per write, so 180 a minute (github/limits.py). The HTTP client paces its own writes;
with several scale-up containers at once that is not enough, so the launches take their writes
from a budget kept in the state table before they start. The budget is counted in windows of
WINDOW_SECONDS, each allowed a share of the per-minute limit such that no 60 seconds (which
span at most 60 / WINDOW_SECONDS + 1 windows) can hold more than the limit. A grant costs one
conditional update, two when the window is nearly spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib.aws.state import StateTable
from chalicelib.github.limits import WRITES_PER_WINDOW

WINDOW_SECONDS = 15
PER_WINDOW = WRITES_PER_WINDOW // (60 // WINDOW_SECONDS + 1)


class WriteBudget:
    """JIT configuration writes granted per window, across containers."""

    def __init__(self, table: StateTable, environment: str, per_window: int = PER_WINDOW,
                 clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.key = f"pacer#{environment}#jit"
        self.per_window = per_window
        self.clock = clock

    def take(self, wanted: int) -> int:
        """Grant up to `wanted` writes from the current window (0 when it is spent); a failing
        table raises RetryableError, and nothing is launched (fail closed)."""
        if wanted < 1:
            return 0
        window = int(self.clock() // WINDOW_SECONDS)
        asked = min(wanted, self.per_window)
        for _ in range(2):
            ok, item = self.table.update(
                self.key, f"window#{window}", "ADD #used :n SET #ttl = :exp",
                condition="attribute_not_exists(#used) OR #used <= :most",
                names={"#used": "used", "#ttl": "expiresAt"},
                values={":n": asked, ":most": self.per_window - asked,
                        ":exp": (window + 2) * WINDOW_SECONDS + 60})
            if ok:
                return asked
            used = int((item or {}).get("used", self.per_window))
            asked = min(asked, self.per_window - used)
            if asked < 1:
                return 0
        return 0
