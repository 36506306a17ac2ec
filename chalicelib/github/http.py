"""The one HTTP path to GitHub's REST API: session, timeouts, retries, rate limits, write pacing.

Every failure leaves here as `RetryableError` or `PermanentError` whose message starts with the
call ("POST /orgs/{org}/actions/runners/generate-jitconfig: 502 ..."). Credentials travel only in
the Authorization header, which is never logged nor put in a message.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from chalicelib.errors import PermanentError, RetryableError
from chalicelib.github import limits
from chalicelib.github.errors import GitHubForbidden as GitHubForbidden
from chalicelib.github.errors import GitHubUnauthorized as GitHubUnauthorized
from chalicelib.github.errors import PrimaryRateLimited, refusal
from chalicelib.logs import get_logger

log = get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0
# Attempts for 5xx and network errors (the first try included), like @octokit/plugin-retry.
MAX_ATTEMPTS = 4
# Rate-limit waits one request may take before giving up with a RetryableError (R-RL-02).
MAX_RATE_LIMIT_WAITS = 3
# Kept free at the end of the invocation: enough to report batch failures and log a summary.
DEADLINE_MARGIN_SECONDS = 5.0
# Longest single wait when no deadline was set (a CLI, a test): never sleep for an hour.
MAX_WAIT_WITHOUT_DEADLINE = 120.0
# Below GitHub's 100-concurrent-requests secondary limit even with several threads (R-RL-04).
MAX_CONCURRENT_REQUESTS = 10
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RATE_HEADERS = ("remaining", "limit", "reset", "resource", "used")
_HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "github-runner-chalice",
}


def github_message(response: requests.Response) -> str:
    """GitHub's `message` field of an error body, shortened; never the request's credentials."""
    try:
        body = response.json()
    except ValueError:
        return (response.reason or "")[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return (response.reason or "")[:200]


class GitHubHttp:
    """Sends one REST call to GitHub with the project's timeouts, retry and rate-limit rules."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool = True,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pacer: limits.SlidingWindowPacer | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Only this client's requests carry verify=False (GHES_SSL_VERIFY), never the session's
        # default, so no other host loses certificate checks.
        self.verify = verify
        self.session = session or requests.Session()
        self.clock = clock
        self.sleep = sleep
        self.pacer = pacer or limits.SlidingWindowPacer()
        self._rand = rand or random.random
        self._deadline: float | None = None
        self._blocked_until: dict[str, float] = {}
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT_REQUESTS)
        self.last_rate_limit: dict[str, int | str] = {}
        # Per bucket: the last x-ratelimit-remaining and -reset seen, most recent last; and the
        # requests sent. Read by the App selection (github/apps.py), never asked for.
        self.budgets: dict[str, tuple[int, float]] = {}
        self.requests_by_bucket: Counter[str] = Counter()
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0, "waited_seconds": 0}

    def set_deadline(self, remaining_seconds: float) -> None:
        """Bound every later wait and retry by the invocation's remaining time, minus a margin."""
        self._deadline = self.clock() + remaining_seconds - DEADLINE_MARGIN_SECONDS

    def time_left(self) -> float | None:
        """Seconds before the deadline (may be negative), or None when no deadline is set."""
        return None if self._deadline is None else self._deadline - self.clock()

    def _wait(self, seconds: float, call: str, reason: str,
              error: type[RetryableError] = RetryableError) -> None:
        """Sleep `seconds` if the budget allows it, else raise `error` naming the call."""
        left = self.time_left()
        allowed = MAX_WAIT_WITHOUT_DEADLINE if left is None else left
        if seconds > allowed:
            raise error(
                f"{call}: {reason}; waiting {seconds:.0f}s would exceed the time left "
                f"({max(0.0, allowed):.0f}s)"
            )
        if seconds > 0:
            self.stats["waited_seconds"] += round(seconds)
            self.sleep(seconds)

    def _backoff(self, call: str, attempt: int, failure: str) -> None:
        """Wait before retry `attempt` of a 5xx/network failure, or raise when out of tries."""
        if attempt + 1 >= MAX_ATTEMPTS:
            raise RetryableError(f"{call}: {failure} (after {MAX_ATTEMPTS} attempts)")
        delay = limits.backoff_delay(attempt, rand=self._rand)
        log.warning("github retry", call=call, failure=failure, attempt=attempt + 1,
                    delay_seconds=round(delay, 2))
        self.stats["retries"] += 1
        self._wait(delay, call, failure)

    def _read_timeout(self) -> float:
        left = self.time_left()
        # A response that would arrive after the deadline is no use: stop waiting for it sooner.
        return READ_TIMEOUT_SECONDS if left is None else max(1.0, min(READ_TIMEOUT_SECONDS, left))

    def _record_rate_limit(self, response: requests.Response, bucket: str) -> None:
        headers = response.headers
        if "x-ratelimit-remaining" not in headers:
            return  # GHES with rate limiting off sends none
        seen: dict[str, int | str] = {}
        for name in _RATE_HEADERS:
            value = headers.get(f"x-ratelimit-{name}")
            if value is not None:
                seen[name] = value if name == "resource" else _int(value)
        seen["bucket"] = bucket
        self.last_rate_limit = seen
        remaining, reset = seen.get("remaining"), seen.get("reset")
        if isinstance(remaining, int) and isinstance(reset, int):
            self.budgets.pop(bucket, None)
            self.budgets[bucket] = (remaining, float(reset))
        if seen.get("remaining") == 0 and response.status_code < 300 and "reset" in seen:
            # The budget is spent: the next call would only earn a 403 (R-RL-01).
            self._blocked_until[bucket] = float(seen["reset"]) + limits.PRIMARY_RESET_SLACK_SECONDS

    def _respect_block(self, bucket: str, call: str) -> None:
        until = self._blocked_until.get(bucket)
        if until is None:
            return
        wait = until - self.clock()
        if wait <= 0:
            del self._blocked_until[bucket]
            return
        self._wait(wait, call, "primary rate limit exhausted until x-ratelimit-reset",
                   PrimaryRateLimited)
        self._blocked_until.pop(bucket, None)

    def write_capacity(self, method: str, template: str) -> int:
        """Writes of `method template` that can be sent before the deadline without GitHub's
        secondary limit refusing them (all of a fresh window when no deadline is set)."""
        left = self.time_left()
        within = 0.0 if left is None else max(0.0, left)
        return self.pacer.capacity(f"{method} {template}", self.clock(), within)

    def _pace(self, call: str) -> None:
        while (wait := self.pacer.try_acquire(call, self.clock())) > 0:
            self._wait(wait, call, "write pacing (GitHub secondary limit: 900 points/min)")

    def request(
        self,
        method: str,
        template: str,
        path: Mapping[str, str | int] | None = None,
        *,
        authorization: str | None = None,
        bucket: str = "anonymous",
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """Send `method template` (an OpenAPI path template) and return a 2xx or accepted answer."""
        outgoing = _Outgoing(
            method=method,
            call=f"{method} {template}",
            url=self.base_url + template.format(
                **{key: quote(str(value), safe="") for key, value in (path or {}).items()}
            ),
            headers={**_HEADERS, **({"Authorization": authorization} if authorization else {})},
            bucket=bucket,
            query=query,
            body=body,
        )
        call = outgoing.call
        attempt = 0
        rate_hits = 0
        while True:
            try:
                response = self._send(outgoing)
            except (requests.ConnectionError, requests.Timeout) as error:
                self._backoff(call, attempt, type(error).__name__)
                attempt += 1
                continue
            status = response.status_code
            if status < 300 or status in accept:
                return response
            message = github_message(response)
            hit = limits.classify_rate_limit(
                status, response.headers, message, self.clock(), rate_hits
            )
            if hit is not None:
                self._rate_limited(call, bucket, status, hit, rate_hits)
                rate_hits += 1
                continue
            if status >= 500:
                self._backoff(call, attempt, f"{status} {message}")
                attempt += 1
                continue
            raise refusal(call, status, message)

    def _send(self, outgoing: _Outgoing) -> requests.Response:
        """One attempt, after any rate-limit block and write pacing; network failures (to retry)
        raise as `requests` raises them, every other request failure as PermanentError."""
        call = outgoing.call
        self._respect_block(outgoing.bucket, call)
        if outgoing.method in WRITE_METHODS:
            self._pace(call)
        try:
            with self._slots:
                self.stats["requests"] += 1
                self.requests_by_bucket[outgoing.bucket] += 1
                response = self.session.request(
                    outgoing.method, outgoing.url, params=outgoing.query, json=outgoing.body,
                    headers=outgoing.headers,
                    timeout=(CONNECT_TIMEOUT_SECONDS, self._read_timeout()), verify=self.verify,
                )
        except requests.exceptions.SSLError as error:
            # SSLError is a ConnectionError, but retrying cannot fix a certificate.
            raise PermanentError(
                f"{call}: TLS verification failed (GHES_SSL_VERIFY=false accepts a "
                "self-signed certificate)"
            ) from error
        except (requests.ConnectionError, requests.Timeout):
            raise  # the caller backs off and retries these
        except requests.RequestException as error:
            raise PermanentError(f"{call}: {type(error).__name__}") from error
        self._record_rate_limit(response, outgoing.bucket)
        return response

    def _rate_limited(
        self, call: str, bucket: str, status: int, hit: limits.RateLimitHit, earlier: int
    ) -> None:
        self.stats["rate_limited"] += 1
        reason = f"{status} {hit.kind} rate limit"
        log.warning("github rate limited", call=call, kind=hit.kind, status=status,
                    wait_seconds=round(hit.wait_seconds, 1), bucket=bucket)
        if hit.kind == "primary":
            # Remember it for the other calls of this container too (R-RL-01).
            self._blocked_until[bucket] = self.clock() + hit.wait_seconds
        error = PrimaryRateLimited if hit.kind == "primary" else RetryableError
        if earlier >= MAX_RATE_LIMIT_WAITS:
            raise error(f"{call}: {reason} (gave up after {earlier} waits)")
        self._wait(hit.wait_seconds, call, reason, error)
        self._blocked_until.pop(bucket, None)


@dataclass(frozen=True)
class _Outgoing:
    """One REST call as sent, whatever the attempt."""

    method: str
    call: str
    url: str
    headers: Mapping[str, str]
    bucket: str
    query: Mapping[str, str | int] | None
    body: Any


def _int(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text
