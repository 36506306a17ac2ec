"""GitHub App authentication: installation ids and tokens, signed for with the App's key.

Everything here is cached on the instance, which the wiring keeps for the container's life: a
warm container makes no SSM read and no token call for an installation it already holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.errors import GhrError, PermanentError
from chalicelib.github.app_key import AppCredentials, AppKeyring, app_jwt
from chalicelib.github.errors import AppJwtRejected, AppNotInstalled, GitHubUnauthorized
from chalicelib.github.http import GitHubHttp, github_message
from chalicelib.logs import get_logger
from chalicelib.models import RunnerType

log = get_logger(__name__)

# Installation tokens live one hour; renewing 5 minutes early means no call ever carries a token
# that expires in flight.
TOKEN_RENEW_BEFORE_SECONDS = 300


@dataclass(frozen=True)
class InstallationToken:
    """An installation access token and when it expires (epoch seconds)."""

    installation_id: int
    token: str = field(repr=False)
    expires_at: float


def expiry_epoch(expires_at: str, fallback: float) -> float:
    """Epoch seconds of GitHub's `expires_at` ISO timestamp; `fallback` when unreadable."""
    try:
        return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return fallback


class AppAuth:
    """One App's JWTs, installation ids and cached installation tokens."""

    def __init__(
        self, http: GitHubHttp, keyring: AppKeyring, clock: Callable[[], float],
        permissions: Mapping[str, str] | None = None, index: int = 0,
    ) -> None:
        self.http = http
        self.keyring = keyring
        # The App's place in PARAMETER_GITHUB_APP_ID_NAME's list (0: the webhook's App).
        self.index = index
        self.clock = clock
        # What installation tokens are limited to (None: all the installation grants).
        self.permissions = dict(permissions) if permissions else None
        self._installations: dict[tuple[RunnerType, str], int] = {}
        self._tokens: dict[int, InstallationToken] = {}
        # One mint per installation even when threads ask together (R-AUTH-02).
        self._lock = threading.RLock()

    @property
    def credentials(self) -> AppCredentials:
        """The App credentials, read from SSM on first use and kept for the container's life."""
        return self.keyring.credentials(self.index)

    @property
    def loaded_app_id(self) -> int | None:
        """The App's id if its credentials were read already (None: not yet, nothing asked)."""
        credentials = self.keyring.loaded(self.index)
        return credentials.app_id if credentials else None

    def app_call(self, method: str, template: str, path: Mapping[str, str | int] | None = None,
                 accept: tuple[int, ...] = (), body: Any = None,
                 query: Mapping[str, str | int] | None = None) -> Any:
        """One call authenticated as the App itself (a JWT); a refused key is read again from
        SSM once (see below)."""
        def send() -> Any:
            credentials = self.credentials
            return self.http.request(
                method, template, path, bucket=f"app:{credentials.app_id}", accept=accept,
                body=body, query=query,
                authorization="Bearer " + app_jwt(credentials, self.clock()),
            )

        try:
            return send()
        except GitHubUnauthorized as error:
            rejected = error
        # A key rotation: the operator put a new key in SSM, then deleted the old one on GitHub,
        # while this container still signs with the old one. Read SSM again, and if the key
        # changed, sign with the new one (R-AUTH-04).
        if self._reload_credentials():
            log.warning("github app key reloaded from SSM", call=f"{method} {template}")
            try:
                return send()
            except GitHubUnauthorized as error:
                rejected = error
        log.error("github app authentication failed", call=f"{method} {template}",
                  reason=str(rejected))
        raise AppJwtRejected(str(rejected), rejected.github_message) from rejected

    def _reload_credentials(self) -> bool:
        """Read the App credentials from SSM again; True when they changed."""
        try:
            return self.keyring.reload(self.index)
        except GhrError as error:
            log.warning("github app credentials not reloaded", error=str(error))
            return False

    def installation_id(self, owner: str, runner_type: RunnerType, hint: int = 0) -> int:
        """The App's installation on `owner`: `hint` when non-zero, else looked up and cached."""
        with self._lock:
            if hint:
                self._installations[(runner_type, owner)] = hint
                return hint
            cached = self._installations.get((runner_type, owner))
            if cached:
                return cached
            return self._lookup(owner, runner_type)

    def known_installation(self, owner: str, runner_type: RunnerType) -> int | None:
        """The installation id on `owner` already resolved, without asking GitHub."""
        with self._lock:
            return self._installations.get((runner_type, owner))

    def installations(self) -> set[int]:
        """The installation ids this App resolved or was given."""
        with self._lock:
            return set(self._installations.values()) | set(self._tokens)

    def _lookup(self, owner: str, runner_type: RunnerType) -> int:
        if runner_type == "Org":
            template, path = "/orgs/{org}/installation", {"org": owner}
        else:
            repo_owner, _, repo = owner.partition("/")
            template, path = "/repos/{owner}/{repo}/installation", {"owner": repo_owner,
                                                                    "repo": repo}
        response = self.app_call("GET", template, path, accept=(404,))
        if response.status_code == 404:
            raise AppNotInstalled(f"GET {template}: 404 the GitHub App is not installed on {owner}")
        installation = int(response.json()["id"])
        self._installations[(runner_type, owner)] = installation
        log.info("github installation resolved", owner=owner, installation_id=installation)
        return installation

    def token(self, owner: str, runner_type: RunnerType, hint: int = 0) -> InstallationToken:
        """A valid installation token for `owner`, minted only when none is cached or it expires."""
        with self._lock:
            installation = self.installation_id(owner, runner_type, hint)
            cached = self._tokens.get(installation)
            if cached and cached.expires_at - TOKEN_RENEW_BEFORE_SECONDS > self.clock():
                return cached
            minted = self._mint(installation)
            if minted is None:
                # The id was stale (the App was reinstalled, or the message's id is wrong):
                # resolve it again, once.
                self._installations.pop((runner_type, owner), None)
                fresh = self._lookup(owner, runner_type)
                minted = None if fresh == installation else self._mint(fresh)
                if minted is None:
                    raise AppNotInstalled(
                        "POST /app/installations/{installation_id}/access_tokens: 404 "
                        f"installation of {owner} not found"
                    )
            return minted

    def _mint(self, installation: int) -> InstallationToken | None:
        template = "/app/installations/{installation_id}/access_tokens"
        path = {"installation_id": installation}
        asked = self.permissions
        response = self.app_call("POST", template, path, accept=(404, 422),
                                  body={"permissions": asked} if asked else None)
        if response.status_code == 422 and asked:
            # The App lacks one of them (actions:read while the queued check is on, say): a
            # token of everything the installation grants works as before, just less narrowly.
            log.warning("github token permissions not granted; minting unscoped",
                        installation_id=installation, asked=asked,
                        reason=github_message(response))
            self.permissions = None
            response = self.app_call("POST", template, path, accept=(404,))
        elif response.status_code == 422:
            raise PermanentError(f"POST {template}: 422 {github_message(response)}")
        if response.status_code == 404:
            log.warning("github installation not found", installation_id=installation)
            return None
        body = response.json()
        now = self.clock()
        token = InstallationToken(
            installation_id=installation,
            token=str(body["token"]),
            expires_at=expiry_epoch(str(body.get("expires_at", "")), now + 3600),
        )
        self._tokens[installation] = token
        log.info("github installation token minted", installation_id=installation)
        return token

    def unscope(self) -> bool:
        """Mint tokens of everything the installations grant from now on, and forget the
        narrower ones; False when tokens were not limited."""
        with self._lock:
            if self.permissions is None:
                return False
            self.permissions = None
            self._tokens.clear()
            return True

    def invalidate(self, installation: int) -> None:
        """Forget the cached token of `installation` (GitHub rejected it)."""
        with self._lock:
            self._tokens.pop(installation, None)

    def any_cached_token(self) -> InstallationToken | None:
        """Some still-valid cached installation token, for calls any installation may make."""
        with self._lock:
            now = self.clock()
            for token in self._tokens.values():
                if token.expires_at - TOKEN_RENEW_BEFORE_SECONDS > now:
                    return token
            return None
