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
    in_flight: int = 0  # its calls on the owner started and not answered yet
    # Its installation on the owner is being looked up by a call under way: the others wait
    # for that answer rather than look it up again.
    probing: bool = False

    def budget(self, now: float) -> float:
        """The requests it has left: its last figure less the calls under way, or full
        (infinite) when none was seen yet or its hour has passed since."""
        if self.remaining is None or (self.reset is not None and now >= self.reset):
            return math.inf
        return float(self.remaining - self.in_flight)


def app_order(standings: Sequence[AppStanding], now: float) -> tuple[int, ...]:
    """The Apps to try for one call, best first: those not skipped, the most remaining budget
    first, then the fewest calls under way (concurrent calls spread before any budget is seen),
    ties in list order; an App whose installation is being looked up comes last. When every App
    is skipped, all of them in list order: the call is tried anyway, as it would be with one
    App, rather than refused without asking GitHub."""
    usable = [s for s in standings if s.skipped_until <= now]
    if not usable:
        return tuple(s.index for s in sorted(standings, key=lambda s: s.index))
    return tuple(s.index for s in sorted(usable, key=lambda s: (s.probing, -s.budget(now),
                                                                 s.in_flight, s.index)))
