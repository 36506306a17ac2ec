"""Which GitHub App serves an owner's next call, when several are configured (REFERENCE §10).

Pure: the App selection (github/apps.py) hands in what it has seen of each App on the owner (the
x-ratelimit-* headers of its last answer, when it was skipped until) and the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# An App that failed an owner (not installed there, its key refused, a 401/403) is left out for
# that long, then tried again: an App installed or a key fixed meanwhile is picked up.
SKIP_SECONDS = 3600.0


@dataclass(frozen=True)
class AppStanding:
    """What is known of one App on one owner."""

    index: int  # place in the configured list: 0 is the webhook's App
    remaining: int | None = None  # x-ratelimit-remaining last seen on its installation there
    reset: float | None = None  # when that budget refills (epoch seconds)
    skipped_until: float = 0.0  # epoch seconds; 0: not skipped

    def budget(self, now: float) -> float:
        """The requests it has left: its last figure, or full (infinite) when none was seen yet
        or its hour has passed since."""
        if self.remaining is None or (self.reset is not None and now >= self.reset):
            return math.inf
        return float(self.remaining)


def app_order(standings: Sequence[AppStanding], now: float) -> tuple[int, ...]:
    """The Apps to try for one call, best first: those not skipped, the most remaining budget
    first, ties in list order. When every App is skipped, all of them in list order: the call is
    tried anyway, as it would be with one App, rather than refused without asking GitHub."""
    usable = [s for s in standings if s.skipped_until <= now]
    if not usable:
        return tuple(s.index for s in sorted(standings, key=lambda s: s.index))
    return tuple(s.index for s in sorted(usable, key=lambda s: (-s.budget(now), s.index)))
