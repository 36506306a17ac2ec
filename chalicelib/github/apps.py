"""Several GitHub Apps installed on the same owners, to spread GitHub's rate limit (REFERENCE §10).

Each call of an owner goes to the App whose installation there last reported the most
`x-ratelimit-remaining` (rules/github_apps.py), read from the headers of answers already seen:
choosing costs no call. The first App is the webhook's (a message's installation id is its);
the others' installations are looked up on first use and cached, with their tokens, for the
container's life. An App that cannot serve an owner (not installed there, its key or token
refused, a 403) is skipped for that owner for an hour and the call moves to the next App at once;
an answer about the call itself (a 404 runner or job, a 422) is returned as one App would.

With one App every call goes straight to it, as before: no selection, no skip, no other call.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from chalicelib.errors import GhrError
from chalicelib.github.app_key import AppKeyring
from chalicelib.github.auth import AppAuth
from chalicelib.github.errors import (
    AppJwtRejected,
    AppNotInstalled,
    GitHubForbidden,
    GitHubUnauthorized,
    InstallationRejected,
    PrimaryRateLimited,
)
from chalicelib.github.http import GitHubHttp
from chalicelib.github.installation import InstallationCalls
from chalicelib.logs import get_logger
from chalicelib.models import RunnerType
from chalicelib.rules.github_apps import SKIP_SECONDS, AppStanding, app_order

log = get_logger(__name__)
T = TypeVar("T")

# What says that this App cannot serve this owner, while another may (REFERENCE §10).
_APP_FAILURES = (AppNotInstalled, GitHubUnauthorized, InstallationRejected, GitHubForbidden)
# (App index, runner type, owner) skipped for an owner; (App index, None, "") for every owner.
_SkipKey = tuple[int, RunnerType | None, str]


@dataclass(frozen=True)
class _App:
    auth: AppAuth
    calls: InstallationCalls


class GitHubApps:
    """The configured Apps; `call` and `pages` as `InstallationCalls` has them, served by the
    App with the most budget left on the owner."""

    def __init__(self, http: GitHubHttp, keyring: AppKeyring, clock: Callable[[], float],
                 permissions: Mapping[str, str] | None = None) -> None:
        self.http = http
        self.clock = clock
        auths = [AppAuth(http, keyring, clock, permissions, index=index)
                 for index in range(max(1, len(keyring.apps)))]
        self.apps = tuple(_App(auth, InstallationCalls(http, auth)) for auth in auths)
        self._skipped: dict[_SkipKey, float] = {}
        # Owner -> App index -> calls served since the last summary (the invocation's log line).
        self._served: dict[str, Counter[int]] = {}
        self._lock = threading.Lock()
        self._in_flight: Counter[tuple[str, int]] = Counter()  # (owner, App index): under way

    @property
    def primary(self) -> AppAuth:
        """The first App: the webhook's, whose installation ids the messages carry."""
        return self.apps[0].auth

    def call(self, owner: str, runner_type: RunnerType, installation_id: int, method: str,
             template: str, path: Mapping[str, str | int], **options: Any) -> requests.Response:
        """One call as `owner`'s installation of the App chosen for it."""
        return self._serve(owner, runner_type, installation_id, lambda calls, hint: calls.call(
            owner, runner_type, hint, method, template, path, **options))

    def pages(self, owner: str, runner_type: RunnerType, installation_id: int, template: str,
              path: Mapping[str, str | int], key: str) -> list[Mapping[str, Any]]:
        """Every item of a paginated list, all its pages read through one App."""
        return self._serve(owner, runner_type, installation_id, lambda calls, hint: calls.pages(
            owner, runner_type, hint, template, path, key))

    def _serve(self, owner: str, runner_type: RunnerType, hint: int,
               work: Callable[[InstallationCalls, int], T]) -> T:
        if len(self.apps) == 1:
            result = work(self.apps[0].calls, hint)
            self._count(owner, self.apps[0])
            return result
        order = self._order(owner, runner_type)  # its first App's call counted under way
        failure: GhrError | None = None
        for place, app in enumerate(order):
            if place:
                self._flight(owner, app, 1)
            try:
                # The message's installation id is the webhook App's; the others look theirs up.
                result = work(app.calls, hint if app.auth.index == 0 else 0)
            except PrimaryRateLimited as error:
                if place == len(order) - 1:
                    raise
                log.warning("github app rate limited; next app", owner=owner,
                            app_id=self._app_id(app), error=str(error))
                failure = failure or error
                continue
            except _APP_FAILURES as error:
                self._skip(app, owner, runner_type, error)
                failure = failure or error
                continue
            finally:
                self._flight(owner, app, -1)
            self._count(owner, app)
            return result
        assert failure is not None
        raise failure

    def _count(self, owner: str, app: _App) -> None:
        with self._lock:
            self._served.setdefault(owner, Counter())[app.auth.index] += 1

    def _flight(self, owner: str, app: _App, change: int) -> None:
        with self._lock:
            self._in_flight[(owner, app.auth.index)] += change

    def _order(self, owner: str, runner_type: RunnerType) -> list[_App]:
        """The Apps to try, best first; the first one's call is counted under way at once, so
        that concurrent calls choose with it."""
        now = self.clock()
        budgets = dict(self.http.budgets)
        installations = [app.auth.known_installation(owner, runner_type) for app in self.apps]
        with self._lock:
            standings = []
            for app, installation in zip(self.apps, installations, strict=True):
                index = app.auth.index
                seen = budgets.get(f"installation:{installation}") if installation else None
                until = max(self._skipped.get((index, None, ""), 0.0),
                            self._skipped.get((index, runner_type, owner), 0.0))
                standings.append(AppStanding(
                    index, remaining=seen[0] if seen else None, reset=seen[1] if seen else None,
                    skipped_until=until, in_flight=self._in_flight[(owner, index)],
                    # The first App's installation comes with the message: never probed.
                    probing=index > 0 and installation is None
                    and self._in_flight[(owner, index)] > 0))
            order = [self.apps[index] for index in app_order(standings, now)]
            self._in_flight[(owner, order[0].auth.index)] += 1
        return order

    def _skip(self, app: _App, owner: str, runner_type: RunnerType, error: GhrError) -> None:
        # A refused JWT fails the App on every owner (its key, its id or the clock); the rest
        # concern its installation on this owner only.
        every_owner = isinstance(error, AppJwtRejected)
        key: _SkipKey = (app.auth.index, None, "") if every_owner else (
            app.auth.index, runner_type, owner)
        with self._lock:
            self._skipped[key] = self.clock() + SKIP_SECONDS
        log.warning("github app skipped", app_id=self._app_id(app),
                    owner="*" if every_owner else owner, minutes=round(SKIP_SECONDS / 60),
                    reason=str(error))

    @staticmethod
    def _app_id(app: _App) -> int | None:
        return app.auth.loaded_app_id

    def _bucket_apps(self) -> dict[str, int]:
        """The App id each request bucket spends (the App's JWT, its installations)."""
        owners: dict[str, int] = {}
        for app in self.apps:
            app_id = app.auth.loaded_app_id
            if app_id is None:
                continue
            owners[f"app:{app_id}"] = app_id
            for installation in app.auth.installations():
                owners[f"installation:{installation}"] = app_id
        return owners

    def remaining_by_app(self) -> dict[int, int]:
        """Per App id, the x-ratelimit-remaining its installations reported last."""
        apps = self._bucket_apps()
        found: dict[int, int] = {}
        for bucket, (remaining, _) in dict(self.http.budgets).items():  # oldest first
            if bucket.startswith("installation:") and bucket in apps:
                found[apps[bucket]] = remaining
        return found

    def summary(self) -> dict[str, Any]:
        """Log fields: requests per App id, and the App ids each owner's calls went to since the
        last summary (then forgotten), with their counts."""
        apps = self._bucket_apps()
        requests_by_app: Counter[int] = Counter()
        for bucket, count in dict(self.http.requests_by_bucket).items():
            if bucket in apps:
                requests_by_app[apps[bucket]] += count
        with self._lock:
            served, self._served = self._served, {}
        ids = {app.auth.index: app.auth.loaded_app_id for app in self.apps}
        return {
            "app_requests": {str(app_id): n for app_id, n in sorted(requests_by_app.items())},
            "owner_apps": {owner: {str(ids[index]): n for index, n in sorted(counts.items())}
                           for owner, counts in sorted(served.items())},
        }
