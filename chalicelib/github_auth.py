"""GitHub App authentication: credentials from SSM, App JWTs, installation ids and tokens.

Everything here is cached on the instance, which the wiring keeps for the container's life: a
warm container makes no SSM read and no token call for an installation it already holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from chalicelib.errors import ConfigError, GhrError, PermanentError, RetryableError
from chalicelib.github_http import GitHubHttp, GitHubUnauthorized
from chalicelib.logs import get_logger
from chalicelib.models import RunnerType

log = get_logger(__name__)

# GitHub allows exp <= iat-now + 10 min; 60 s back for clock drift and 60 s short of the limit
# so a fast local clock does not earn "'Expiration time' claim is too far in the future".
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 540
# Installation tokens live one hour; renewing 5 minutes early means no call ever carries a token
# that expires in flight.
TOKEN_RENEW_BEFORE_SECONDS = 300
_SSM_THROTTLING = frozenset({"ThrottlingException", "TooManyUpdates", "InternalServerError"})


@dataclass(frozen=True)
class AppCredentials:
    """The GitHub App's id and PEM private key."""

    app_id: int
    # Parsed once: loading a PEM checks the RSA key (tens of milliseconds), signing is fast.
    private_key: RSAPrivateKey = field(repr=False)


@dataclass(frozen=True)
class InstallationToken:
    """An installation access token and when it expires (epoch seconds)."""

    installation_id: int
    token: str = field(repr=False)
    expires_at: float


def decode_private_key(value: str, parameter: str) -> RSAPrivateKey:
    """The App's RSA key from its base64 (or plain) PEM text; ConfigError naming `parameter`."""
    problem = f"{parameter}: invalid GitHub App private key format (expected base64 of a PEM key)"
    # Keys pasted through shells and templates often carry literal "\n" sequences, in the base64
    # text or in the PEM inside it; both are line breaks in the original.
    text = value.strip().replace("\\n", "\n")
    if not text.startswith("-----BEGIN"):
        try:
            text = base64.b64decode("".join(text.split()), validate=True).decode("ascii")
        except (binascii.Error, ValueError):
            raise ConfigError(problem) from None
        text = text.strip().replace("\\n", "\n")
    try:
        key = load_pem_private_key(text.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError):
        raise ConfigError(problem) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"{parameter}: the GitHub App private key must be an RSA key")
    return key


def load_app_credentials(ssm: Any, id_name: str, key_name: str) -> AppCredentials:
    """Read and validate the App id and key in one SSM GetParameters call with decryption."""
    try:
        answer = ssm.get_parameters(Names=[id_name, key_name], WithDecryption=True)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _SSM_THROTTLING:
            raise RetryableError(f"SSM GetParameters {id_name}, {key_name}: {code}") from error
        raise ConfigError(f"SSM GetParameters {id_name}, {key_name}: {code}") from error
    except BotoCoreError as error:
        raise RetryableError(
            f"SSM GetParameters {id_name}, {key_name}: {type(error).__name__}"
        ) from error
    values = {p["Name"]: p.get("Value", "") for p in answer.get("Parameters", [])}
    problems = [f"{name}: SSM parameter not found" for name in (id_name, key_name)
                if name not in values]
    if problems:
        raise ConfigError(problems)
    app_id_text = values[id_name].strip()
    if not app_id_text.isdigit() or int(app_id_text) <= 0:
        problems.append(f"{id_name}: GitHub App id must be numeric")
    try:
        key = decode_private_key(values[key_name], key_name)
    except ConfigError as error:
        problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return AppCredentials(app_id=int(app_id_text), private_key=key)


def _same_key(first: AppCredentials, second: AppCredentials) -> bool:
    return (first.private_key.public_key().public_numbers()
            == second.private_key.public_key().public_numbers())


def app_jwt(credentials: AppCredentials, now: float) -> str:
    """An RS256 App JWT: iat 60 s back, exp 9 min on, iss the App id, a random jti."""
    issued = int(now) - JWT_BACKDATE_SECONDS
    claims = {
        "iat": issued,
        "exp": int(now) + JWT_LIFETIME_SECONDS,
        "iss": str(credentials.app_id),
        # Concurrent functions signing in the same second would otherwise send byte-identical
        # JWTs, which GitHub has rejected (terraform-aws-github-runner#5056).
        "jti": uuid.uuid4().hex,
    }
    return sign_rs256(claims, credentials.private_key)


def sign_rs256(claims: Mapping[str, Any], key: RSAPrivateKey) -> str:
    """A compact JWS (RFC 7515) of `claims`, RS256-signed.

    Ten lines instead of PyJWT: importing PyJWT pulls in every algorithm it supports (EC,
    EdDSA, X.509), about 50 ms of each cold start, to sign the one kind of token GitHub takes.
    """
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def expiry_epoch(expires_at: str, fallback: float) -> float:
    """Epoch seconds of GitHub's `expires_at` ISO timestamp; `fallback` when unreadable."""
    try:
        return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return fallback


class AppAuth:
    """Mints App JWTs, resolves installation ids and caches installation tokens."""

    def __init__(
        self, http: GitHubHttp, ssm: Any, id_name: str, key_name: str, clock: Callable[[], float]
    ) -> None:
        self.http = http
        self.ssm = ssm
        self.id_name = id_name
        self.key_name = key_name
        self.clock = clock
        self._credentials: AppCredentials | None = None
        self._installations: dict[tuple[RunnerType, str], int] = {}
        self._tokens: dict[int, InstallationToken] = {}
        # One mint per installation even when threads ask together (R-AUTH-02).
        self._lock = threading.RLock()

    @property
    def credentials(self) -> AppCredentials:
        """The App credentials, read from SSM on first use and kept for the container's life."""
        with self._lock:
            if self._credentials is None:
                self._credentials = load_app_credentials(self.ssm, self.id_name, self.key_name)
            return self._credentials

    def _app_call(self, method: str, template: str, path: Mapping[str, str | int],
                  accept: tuple[int, ...] = ()) -> Any:
        def send() -> Any:
            return self.http.request(
                method, template, path, bucket="app", accept=accept,
                authorization="Bearer " + app_jwt(self.credentials, self.clock()),
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
        raise rejected

    def _reload_credentials(self) -> bool:
        """Read the App credentials from SSM again; True when they changed."""
        with self._lock:
            try:
                fresh = load_app_credentials(self.ssm, self.id_name, self.key_name)
            except GhrError as error:
                log.warning("github app credentials not reloaded", error=str(error))
                return False
            old = self._credentials
            if old is not None and fresh.app_id == old.app_id and _same_key(fresh, old):
                return False
            self._credentials = fresh
            return True

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

    def _lookup(self, owner: str, runner_type: RunnerType) -> int:
        if runner_type == "Org":
            template, path = "/orgs/{org}/installation", {"org": owner}
        else:
            repo_owner, _, repo = owner.partition("/")
            template, path = "/repos/{owner}/{repo}/installation", {"owner": repo_owner,
                                                                    "repo": repo}
        response = self._app_call("GET", template, path, accept=(404,))
        if response.status_code == 404:
            raise PermanentError(f"GET {template}: 404 the GitHub App is not installed on {owner}")
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
                    raise PermanentError(
                        "POST /app/installations/{installation_id}/access_tokens: 404 "
                        f"installation of {owner} not found"
                    )
            return minted

    def _mint(self, installation: int) -> InstallationToken | None:
        template = "/app/installations/{installation_id}/access_tokens"
        response = self._app_call("POST", template, {"installation_id": installation},
                                  accept=(404,))
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
