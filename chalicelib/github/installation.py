"""Calls as an App installation: the token of the owner's installation, renewed once when GitHub
rejects it, and lists read across every page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from chalicelib.github.auth import AppAuth, InstallationToken
from chalicelib.github.errors import GitHubForbidden, GitHubUnauthorized, InstallationRejected
from chalicelib.github.http import GitHubHttp
from chalicelib.logs import get_logger
from chalicelib.models import RunnerType

log = get_logger(__name__)

PER_PAGE = 100
# 100 pages of 100: far above any installation's runner count; stops a pagination loop on a
# misbehaving server.
MAX_PAGES = 100


class InstallationCalls:
    """One call, or one paginated list, authenticated as an owner's installation."""

    def __init__(self, http: GitHubHttp, auth: AppAuth) -> None:
        self.http = http
        self.auth = auth

    def send(self, token: InstallationToken, method: str, template: str,
              path: Mapping[str, str | int], **options: Any) -> requests.Response:
        return self.http.request(method, template, path, authorization="Bearer " + token.token,
                                 bucket=f"installation:{token.installation_id}", **options)

    def call(self, owner: str, runner_type: RunnerType, installation_id: int, method: str,
              template: str, path: Mapping[str, str | int], **options: Any) -> requests.Response:
        """One call as `owner`'s installation; a rejected token is renewed and retried once."""
        token = self.auth.token(owner, runner_type, installation_id)
        try:
            return self.send(token, method, template, path, **options)
        except GitHubForbidden:
            # A limited token may lack what this call needs (runners of the other type left
            # from an earlier configuration, a GHES with other permission names): tokens of
            # everything the installation grants from now on, as before R-AUTH-05.
            if not self.auth.unscope():
                raise
            log.warning("github token permissions too narrow; minting unscoped",
                        call=f"{method} {template}", installation_id=token.installation_id)
            token = self.auth.token(owner, runner_type, token.installation_id)
            return self.send(token, method, template, path, **options)
        except GitHubUnauthorized:
            # Revoked or expired early (FI-06, BI-26): one fresh token, one more try.
            log.warning("github installation token rejected", call=f"{method} {template}",
                        installation_id=token.installation_id)
            self.auth.invalidate(token.installation_id)
        token = self.auth.token(owner, runner_type, token.installation_id)
        try:
            return self.send(token, method, template, path, **options)
        except GitHubUnauthorized as error:
            self.auth.invalidate(token.installation_id)
            log.error("github authentication failed", call=f"{method} {template}",
                      installation_id=token.installation_id)
            raise InstallationRejected(
                f"{method} {template}: 401 installation token rejected after a refresh "
                "(App key revoked or installation suspended?)"
            ) from error

    def pages(self, owner: str, runner_type: RunnerType, installation_id: int, template: str,
               path: Mapping[str, str | int], key: str) -> list[Mapping[str, Any]]:
        """Every item of a paginated list (`per_page=100`), deduplicated by id."""
        items: dict[Any, Mapping[str, Any]] = {}
        for page in range(1, MAX_PAGES + 1):
            response = self.call(owner, runner_type, installation_id, "GET", template, path,
                                  query={"per_page": PER_PAGE, "page": page})
            body = response.json()
            batch = body.get(key) or []
            for item in batch:
                # A runner registering mid-listing shifts the pages; the id keeps one copy.
                items[item.get("id")] = item
            total = body.get("total_count")
            if response.links:
                more = "next" in response.links
            else:
                more = len(batch) == PER_PAGE and not (isinstance(total, int)
                                                       and len(items) >= total)
            if not more:
                break
        return list(items.values())
