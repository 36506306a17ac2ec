"""The API plumbing of the GitHub fake: requests, replies, callers, routes, auth, pagination.

The routes themselves (one handler per operation) are in devstack/github_routes.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from devstack.github_auth import MSG_JWT_REQUIRED, MSG_JWT_UNDECODABLE, JwtRejected, verify_app_jwt
from devstack.github_records import ApiError, InstallationRecord, grants

if TYPE_CHECKING:
    from devstack.github_fake import GitHubFake

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


@dataclass(frozen=True)
class ApiRequest:
    """One API call: `path` is relative to `/api/v3`, header names are lower-case."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict[str, Any]:
        """The JSON object body; ApiError 400 if it is not one."""
        try:
            value = json.loads(self.body or b"{}")
        except ValueError as err:
            raise ApiError(400, "Problems parsing JSON") from err
        if not isinstance(value, dict):
            raise ApiError(400, "Problems parsing JSON")
        return value


@dataclass
class ApiReply:
    """An answer: status, JSON body (None for no body) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the App (JWT), an installation (token) or nobody."""

    kind: str  # "app" | "installation" | "anonymous"
    installation: InstallationRecord | None = None
    app: int | None = None  # the App calling with its JWT

    @property
    def app_id(self) -> int | None:
        """The App calling, with its JWT or one of its installations' tokens."""
        return self.installation.app_id if self.installation is not None else self.app

    @property
    def bucket(self) -> tuple[str, int]:
        """The primary rate-limit budget this caller spends (each App has its own)."""
        if self.installation is not None:
            return ("installation", self.installation.id)
        return (self.kind, self.app or 0)


Handler = Callable[["GitHubFake", ApiRequest, dict[str, str], Principal], ApiReply]


@dataclass(frozen=True)
class Route:
    """One operation: method, path template, who may call it, and its handler."""

    method: str
    template: str
    auth: str  # "jwt" | "token" | "public"
    handler: Handler
    # What an installation token must carry: (permission, "read" | "write").
    permission: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        """ "METHOD /template", the route's name everywhere in the fake."""
        return f"{self.method} {self.template}"

    @property
    def pattern(self) -> re.Pattern[str]:
        """The regular expression of the template."""
        return re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template)) + "$"
        )


def authenticate(fake: GitHubFake, route: Route, headers: dict[str, str]) -> Principal:
    """The caller of `route` given its Authorization header; ApiError 401 when refused."""
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    credential = credential.strip() if scheme.lower() in ("bearer", "token") else ""
    if route.auth == "jwt":
        if not credential:
            raise ApiError(401, MSG_JWT_REQUIRED)
        if credential.count(".") != 2:
            raise ApiError(401, MSG_JWT_UNDECODABLE)
        app = fake.app_for_jwt(credential)
        try:
            claims = verify_app_jwt(credential, list(app.keys), app.app_id, app.client_id,
                                    fake.clock())
        except JwtRejected as err:
            raise ApiError(401, err.message) from None
        with fake.lock:
            fake.jwt_ids.append(claims.get("jti"))
        return Principal("app", app=app.app_id)
    if not credential:
        if route.auth == "public":
            return Principal("anonymous")
        raise ApiError(401, "Requires authentication")
    installation = fake.token_installation(credential)
    if route.permission is not None and not grants(fake.token_permissions(credential),
                                                   *route.permission):
        raise ApiError(403, "Resource not accessible by integration")
    return Principal("installation", installation)


def caller_app(fake: GitHubFake, headers: dict[str, str]) -> int | None:
    """The App a request comes from, for the request log, whether or not it was refused: the App
    its JWT names, or the App of its installation token; None when neither is known."""
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() not in ("bearer", "token") or not credential:
        return None
    if credential.count(".") == 2:
        return fake.app_for_jwt(credential).app_id
    with fake.lock:
        minted = fake.installation_tokens.get(credential)
        record = fake.installation_by_id(minted.installation_id) if minted else None
    return record.app_id if record else None


def paginate(
    fake: GitHubFake, request: ApiRequest, items: list[Any]
) -> tuple[list[Any], dict[str, str]]:
    """The requested page of `items` and GitHub's RFC 5988 `Link` header for the others."""
    per_page = query_int(request.query, "per_page", DEFAULT_PER_PAGE)
    per_page = min(per_page, MAX_PER_PAGE) if per_page >= 1 else DEFAULT_PER_PAGE
    page = max(query_int(request.query, "page", 1), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)

    def url(number: int) -> str:
        query = {**request.query, "per_page": str(per_page), "page": str(number)}
        return f"{fake.api_url}{request.path}?{urlencode(query)}"

    links = []
    if page > 1:
        links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links.append(f'<{url(1)}>; rel="first"')
    chunk = items[(page - 1) * per_page : page * per_page]
    return chunk, ({"Link": ", ".join(links)} if links else {})


def query_int(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        return default
