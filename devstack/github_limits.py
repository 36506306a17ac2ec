"""Rate limits and fault injection of the GitHub fake.

Primary limit: a budget of requests per hour for each installation (and one for the App's JWT and
one for anonymous calls), reported in the `x-ratelimit-*` headers of every response. Secondary
limit: GitHub's 900 points per minute per REST endpoint, a GET costing 1 point and a write 5, over
a sliding 60 s window.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

PRIMARY_WINDOW = 3600.0
SECONDARY_WINDOW = 60.0
SECONDARY_POINTS = 900
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Budgets per hour (GitHub's numbers for installation tokens and unauthenticated callers).
INSTALLATION_LIMIT = 5000
ANONYMOUS_LIMIT = 60

BucketKey = tuple[str, int]  # ("installation", id) | ("app", app_id) | ("anonymous", 0)


def points(method: str) -> int:
    """Secondary-limit cost of one request: 5 for a write, 1 otherwise."""
    return 5 if method.upper() in WRITE_METHODS else 1


@dataclass
class Bucket:
    """One primary budget: `remaining` of `limit` until epoch `reset`."""

    limit: int
    remaining: int
    reset: float

    @property
    def used(self) -> int:
        """Requests counted in the current window."""
        return max(self.limit - self.remaining, 0)

    def headers(self, remaining: int | None = None, reset: float | None = None) -> dict[str, str]:
        """The `x-ratelimit-*` headers GitHub sends with this budget."""
        left = self.remaining if remaining is None else remaining
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-used": str(max(self.limit - left, 0)),
            "x-ratelimit-reset": str(int(self.reset if reset is None else reset)),
            "x-ratelimit-resource": "core",
        }


@dataclass
class RateLimits:
    """Primary budgets by bucket and secondary sliding windows by route."""

    buckets: dict[BucketKey, Bucket] = field(default_factory=dict)
    windows: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def bucket(self, key: BucketKey, now: float) -> Bucket:
        """The budget of `key`, refilled when its hour has passed."""
        bucket = self.buckets.get(key)
        if bucket is None or now >= bucket.reset:
            limit = ANONYMOUS_LIMIT if key[0] == "anonymous" else INSTALLATION_LIMIT
            if bucket is not None:
                limit = bucket.limit
            bucket = Bucket(limit=limit, remaining=limit, reset=math.floor(now) + PRIMARY_WINDOW)
            self.buckets[key] = bucket
        return bucket

    def set_budget(self, key: BucketKey, remaining: int, reset: float, limit: int | None) -> None:
        """Force a budget (test hook)."""
        current = self.buckets.get(key)
        total = limit or (current.limit if current else INSTALLATION_LIMIT)
        self.buckets[key] = Bucket(limit=total, remaining=remaining, reset=reset)

    def secondary_retry_after(self, route: str, method: str, now: float) -> int | None:
        """Seconds to wait if this request would pass 900 points within 60 s; else record it."""
        window = self.windows.setdefault(route, deque())
        while window and window[0][0] <= now - SECONDARY_WINDOW:
            window.popleft()
        cost = points(method)
        spent = sum(p for _, p in window)
        if spent + cost <= SECONDARY_POINTS:
            window.append((now, cost))
            return None
        # The first moment enough old points leave the window for this request to fit.
        excess = spent + cost - SECONDARY_POINTS
        for stamp, spent_points in window:
            excess -= spent_points
            if excess <= 0:
                return max(1, math.ceil(stamp + SECONDARY_WINDOW - now))
        return math.ceil(SECONDARY_WINDOW)


@dataclass
class Fault:
    """One injected answer for the next call of a route."""

    kind: str  # "fail" | "secondary" | "primary"
    remaining: int
    status: int = 502
    seconds: int = 0


@dataclass
class Faults:
    """Injected failures and latencies, by route key ("METHOD /template" or "*" for every route)."""

    pending: dict[str, deque[Fault]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)

    def add(self, route: str, fault: Fault) -> None:
        """Queue `fault` for the next `fault.remaining` calls of `route`."""
        if fault.remaining > 0:
            self.pending.setdefault(route, deque()).append(fault)

    def take(self, route: str) -> Fault | None:
        """The fault to apply to this call of `route`, consuming one use of it."""
        for key in (route, "*"):
            queue = self.pending.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.popleft()
                return fault
        return None

    def delay(self, route: str) -> float:
        """Seconds to hold this call of `route` before answering."""
        return self.latency.get(route, 0.0) + self.latency.get("*", 0.0)
