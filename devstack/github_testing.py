"""Helpers to call the GitHub fake as a GitHub App would: App JWTs and an HTTP session.

For the fake's own contract tests and for scripts that poke at it; the system under test has its
own client in chalicelib.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import TYPE_CHECKING, Any

import jwt
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key

if TYPE_CHECKING:
    from devstack.github_fake import GitHubFake


def app_jwt(
    fake: GitHubFake,
    *,
    now: float | None = None,
    iat_offset: int = -60,
    lifetime: int = 600,
    iss: Any = None,
    private_key_pem: str | None = None,
    jti: str | None = "auto",
) -> str:
    """An RS256 App JWT: `iat` = now + iat_offset, `exp` = iat + lifetime (GitHub's usual form)."""
    issued = int((fake.clock() if now is None else now) + iat_offset)
    claims: dict[str, Any] = {
        "iat": issued,
        "exp": issued + lifetime,
        "iss": str(fake.app_id) if iss is None else iss,
    }
    if jti is not None:
        claims["jti"] = uuid.uuid4().hex if jti == "auto" else jti
    # PyJWT refuses a non-string `iss`; sign the raw JSON so an integer `iss` can be tested too.
    payload = json.dumps(claims, separators=(",", ":")).encode()
    key = _private_key(private_key_pem or fake.private_key_pem)
    return jwt.api_jws.encode(payload, key, algorithm="RS256", headers={"typ": "JWT"})


@functools.lru_cache(maxsize=8)
def _private_key(pem: str) -> Any:
    # Loading an RSA key checks it (tens of milliseconds); sign many JWTs with one load.
    return load_pem_private_key(pem.encode(), password=None)


class FakeGitHubClient:
    """A requests session on the fake's API (`/api/v3`) with App and installation auth."""

    def __init__(self, fake: GitHubFake) -> None:
        self.fake = fake
        self.session = requests.Session()

    def call(
        self, method: str, path: str, token: str | None = None, scheme: str = "token", **kwargs: Any
    ) -> requests.Response:
        """`method` the API path (relative to /api/v3), authenticated with `token` if given."""
        headers = dict(kwargs.pop("headers", {}))
        headers.setdefault("Accept", "application/vnd.github+json")
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}"
        url = path if path.startswith("http") else f"{self.fake.api_url}{path}"
        return self.session.request(method, url, headers=headers, timeout=10, **kwargs)

    def as_app(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call with a fresh App JWT."""
        return self.call(method, path, app_jwt(self.fake), scheme="Bearer", **kwargs)

    def installation_token(self, owner: str) -> str:
        """An installation token for `owner`, obtained over HTTP as an App does."""
        found = self.as_app("GET", f"/users/{owner}/installation")
        found.raise_for_status()
        minted = self.as_app("POST", f"/app/installations/{found.json()['id']}/access_tokens")
        minted.raise_for_status()
        token: str = minted.json()["token"]
        return token

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()
