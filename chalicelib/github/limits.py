"""Pure rules of GitHub traffic: API base URL, backoff, rate-limit classification, write pacing.

No I/O and no clock of their own: callers pass `now`, so every rule is a plain unit-tested function.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

GITHUB_API = "https://api.github.com"

# Full-jitter exponential backoff for 5xx and network errors (AWS architecture blog
# "Exponential Backoff And Jitter"): spreads concurrent Lambdas' retries instead of
# synchronising them on the same instants.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# GitHub: "otherwise wait at least one minute" for a secondary limit without retry-after.
SECONDARY_DEFAULT_WAIT_SECONDS = 60.0
# Seconds added to x-ratelimit-reset: the reset epoch has one-second resolution and the
# local clock may lag GitHub's a little; a request sent early costs another 403.
PRIMARY_RESET_SLACK_SECONDS = 1.0
# GitHub's secondary limit: 900 points per minute per REST endpoint; a write costs 5 points.
# The window is one second longer than GitHub's: the pacer stamps a write when it is sent,
# GitHub counts it when it arrives, so a slow request could otherwise be the 181st.
WRITES_PER_WINDOW = 180
WRITE_WINDOW_SECONDS = 61.0


def api_base_url(ghes_url: str | None) -> str:
    """The REST API root for `GHES_URL`: github.com, `<GHES>/api/v3`, or `api.<host>` on ghe.com."""
    if not ghes_url:
        return GITHUB_API
    parts = urlsplit(ghes_url.strip().rstrip("/"))
    host = (parts.hostname or "").lower()
    if host.endswith(".ghe.com"):
        # GitHub Enterprise Cloud with data residency serves its API from api.<subdomain>.ghe.com.
        netloc = parts.netloc if host.startswith("api.") else f"api.{parts.netloc}"
        return f"{parts.scheme}://{netloc}"
    return f"{parts.scheme}://{parts.netloc}{parts.path}/api/v3"


def backoff_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """Full-jitter delay before retry `attempt` (0-based): uniform in [0, min(cap, base * 2^n)]."""
    return rand() * min(cap, base * 2.0 ** max(0, attempt))


@dataclass(frozen=True)
class RateLimitHit:
    """A rate-limited answer and how long GitHub asks us to stay away."""

    kind: Literal["primary", "secondary"]
    wait_seconds: float


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def classify_rate_limit(
    status: int, headers: Mapping[str, str], message: str, now: float, earlier_hits: int = 0
) -> RateLimitHit | None:
    """Whether a 403/429 is a rate limit, and the wait GitHub's rules ask for; None otherwise.

    `headers` must look names up case-insensitively (requests' headers do). `earlier_hits` counts
    secondary limits already met by this request: each one doubles the wait (GitHub: "then back
    off exponentially").
    """
    if status not in (403, 429):
        return None
    remaining = _number(headers, "x-ratelimit-remaining")
    reset = _number(headers, "x-ratelimit-reset")
    retry_after = _number(headers, "retry-after")
    if remaining == 0 and reset is not None:
        wait = max(0.0, reset - now) + PRIMARY_RESET_SLACK_SECONDS
        return RateLimitHit("primary", max(wait, retry_after or 0.0))
    lowered = message.lower()
    is_secondary = (
        retry_after is not None
        or status == 429
        or "secondary rate limit" in lowered
        or "abuse" in lowered
    )
    if not is_secondary:
        return None  # a plain 403: permissions, not pacing
    first = retry_after if retry_after is not None else SECONDARY_DEFAULT_WAIT_SECONDS
    return RateLimitHit("secondary", max(0.0, first) * 2.0 ** max(0, earlier_hits))


def unauthorized_hint(message: str) -> str:
    """The likely cause of a 401, named for the operator (clock skew, key, token)."""
    lowered = message.lower()
    if "'expiration time' claim" in lowered or "'issued at' claim" in lowered:
        return "JWT rejected ('exp'/'iat' out of range): check the host clock"
    if "json web token" in lowered or "jwt" in lowered or "integration" in lowered:
        return "App JWT rejected: check the App id, or rotate the App key"
    return "credentials rejected"


class SlidingWindowPacer:
    """At most `limit` events per key in any sliding `window` seconds; thread-safe.

    Bursts up to `limit` pass at full speed; the next one waits until the oldest leaves the window.
    """

    def __init__(
        self, limit: int = WRITES_PER_WINDOW, window: float = WRITE_WINDOW_SECONDS
    ) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def wait_time(self, key: str, now: float) -> float:
        """Seconds until one more event for `key` fits in the window (0 when it fits now)."""
        with self._lock:
            events = self._trim(key, now)
            if len(events) < self.limit:
                return 0.0
            return events[len(events) - self.limit] + self.window - now

    def capacity(self, key: str, now: float, within: float = 0.0) -> int:
        """How many more events for `key` can pass from `now` until `now + within`."""
        with self._lock:
            events = self._trim(key, now)
            horizon = now + within - self.window
            still_counted = sum(1 for moment in events if moment > horizon)
            return max(0, self.limit - still_counted)

    def try_acquire(self, key: str, now: float) -> float:
        """Record an event when it fits and return 0; else record nothing and return the wait."""
        with self._lock:
            events = self._trim(key, now)
            if len(events) < self.limit:
                events.append(now)
                return 0.0
            return events[len(events) - self.limit] + self.window - now
