"""The GitHub fake's installations of its Apps and their access tokens, with permissions.

An owner may have several Apps installed, each installation with its own id, tokens and rate-limit
budget; without an `app_id`, the hooks mean the first App (the webhook's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from devstack.github_auth import FakeApp, random_token
from devstack.github_records import (
    APP_PERMISSIONS,
    LEVELS,
    ApiError,
    Counters,
    InstallationRecord,
    InstallationToken,
    grants,
)

TOKEN_TTL = 3600.0  # installation, registration and remove tokens all live one hour


class GitHubInstallations:
    """Installations and installation tokens; the state itself lives in GitHubState."""

    lock: threading.RLock
    clock: Callable[[], float]
    counters: Counters
    apps: list[FakeApp]
    # (App id, owner in lower case) -> the App's installation on that owner.
    installations: dict[tuple[int, str], InstallationRecord]
    installation_tokens: dict[str, InstallationToken]

    def _app_id(self, app_id: int | None) -> int:
        return self.apps[0].app_id if app_id is None else app_id

    def add_installation(
        self, owner: str, account_type: str = "Organization", installation_id: int | None = None,
        permissions: dict[str, str] | None = None, app_id: int | None = None,
    ) -> int:
        """Install App `app_id` (the first by default) on `owner`, granting all the App asks
        for, or `permissions`; returns the installation id."""
        if account_type not in ("Organization", "User"):
            raise ValueError("account_type must be 'Organization' or 'User'")
        with self.lock:
            app = self._app_id(app_id)
            new_id = installation_id or self.counters.next("installation")
            self.installations[(app, owner.lower())] = InstallationRecord(
                id=new_id,
                owner=owner,
                account_type=account_type,
                account_id=self._account_id(owner, app),
                created_at=self.clock(),
                permissions=dict(APP_PERMISSIONS if permissions is None else permissions),
                app_id=app,
            )
            return new_id

    def _account_id(self, owner: str, app_id: int) -> int:
        """The account's id: the one another App's installation on it shows, or a new one."""
        found = next((r.account_id for (app, name), r in self.installations.items()
                      if name == owner.lower() and app != app_id), None)
        return found if found is not None else self.counters.next("account")

    def remove_installation(self, owner: str, app_id: int | None = None) -> None:
        """Uninstall App `app_id` (the first by default) from `owner`; its tokens stop working."""
        with self.lock:
            record = self.installations.pop((self._app_id(app_id), owner.lower()), None)
            if record is not None:
                self.revoke_tokens(record.id)

    def installation_for(self, owner: str, app_id: int | None = None) -> InstallationRecord | None:
        """App `app_id`'s (the first App's by default) installation on `owner`, if any."""
        with self.lock:
            return self.installations.get((self._app_id(app_id), owner.lower()))

    def installation_by_id(self, installation_id: int) -> InstallationRecord | None:
        """The installation with this id, if any."""
        with self.lock:
            return next((i for i in self.installations.values() if i.id == installation_id), None)

    def mint_installation_token(
        self, installation_id: int, permissions: dict[str, str] | None = None,
        app_id: int | None = None,
    ) -> tuple[str, float, dict[str, str]]:
        """A new installation token, its expiry (epoch) and permissions: those asked for, which
        the installation must grant (422 otherwise), or all the installation's. With `app_id`
        (the App asking), another App's installation is not found."""
        with self.lock:
            record = self.installation_by_id(installation_id)
            if record is None or (app_id is not None and record.app_id != app_id):
                raise ApiError(404, "Not Found")
            if permissions is None:
                carried = dict(record.permissions)
            else:
                for name, level in permissions.items():
                    if level not in LEVELS or not grants(record.permissions, name, level):
                        raise ApiError(
                            422, "The permissions requested are not granted to this installation."
                        )
                # Metadata read comes with every token.
                carried = {"metadata": "read", **permissions}
            token = random_token("ghs_")
            expires_at = self.clock() + TOKEN_TTL
            self.installation_tokens[token] = InstallationToken(installation_id, expires_at,
                                                                carried)
            return token, expires_at, dict(carried)

    def token_permissions(self, token: str) -> dict[str, str]:
        """The permissions an installation token carries (none if it is unknown)."""
        with self.lock:
            minted = self.installation_tokens.get(token)
            return dict(minted.permissions) if minted is not None else {}

    def token_installation(self, token: str) -> InstallationRecord:
        """The installation an installation token acts for; ApiError 401 if unknown or expired."""
        with self.lock:
            minted = self.installation_tokens.get(token)
            if minted is None or minted.expires_at <= self.clock():
                raise ApiError(401, "Bad credentials")
            record = self.installation_by_id(minted.installation_id)
            if record is None:
                raise ApiError(401, "Bad credentials")
            return record

    def revoke_tokens(self, installation_id: int) -> None:
        """Invalidate every installation token of `installation_id`."""
        with self.lock:
            for token, minted in list(self.installation_tokens.items()):
                if minted.installation_id == installation_id:
                    del self.installation_tokens[token]
