"""The GitHub App's credentials: read from SSM, checked, and the App JWTs they sign."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, PermanentError

# GitHub allows exp <= iat-now + 10 min; 60 s back for clock drift and 60 s short of the limit
# so a fast local clock does not earn "'Expiration time' claim is too far in the future".
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 540


@dataclass(frozen=True)
class AppCredentials:
    """The GitHub App's id and PEM private key."""

    app_id: int
    # Parsed once: loading a PEM checks the RSA key (tens of milliseconds), signing is fast.
    private_key: RSAPrivateKey = field(repr=False)


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


# SSM GetParameters takes at most 10 names: the id and key of 5 Apps.
APPS_PER_READ = 5


def load_app_credentials(ssm: Ssm, id_name: str, key_name: str) -> AppCredentials:
    """Read and validate one App's id and key in one SSM GetParameters call with decryption."""
    return load_all_credentials(ssm, [(id_name, key_name)])[0]


def load_all_credentials(ssm: Ssm, apps: Sequence[tuple[str, str]]) -> tuple[AppCredentials, ...]:
    """Read and validate every App's (id, key) parameters: one GetParameters call with decryption
    for up to five Apps, one more for each five after.

    A read that may pass raises RetryableError; one refused for good (access denied, a bad
    name) is the deployment's to fix: a ConfigError, as is any missing or malformed value (every
    problem named at once, never a value).
    """
    values: dict[str, str] = {}
    for start in range(0, len(apps), APPS_PER_READ):
        names = [name for pair in apps[start:start + APPS_PER_READ] for name in pair]
        try:
            values.update(ssm.get_strings(names))
        except PermanentError as error:
            raise ConfigError(str(error)) from error
    problems: list[str] = []
    found: list[AppCredentials] = []
    for id_name, key_name in apps:
        missing = [f"{name}: SSM parameter not found" for name in (id_name, key_name)
                   if name not in values]
        if missing:
            problems.extend(missing)
            continue
        app_id_text = values[id_name].strip()
        if not app_id_text.isdigit() or int(app_id_text) <= 0:
            problems.append(f"{id_name}: GitHub App id must be numeric")
        try:
            key = decode_private_key(values[key_name], key_name)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if not problems:
            found.append(AppCredentials(app_id=int(app_id_text), private_key=key))
    if problems:
        raise ConfigError(problems)
    return tuple(found)


class AppKeyring:
    """Every App's credentials, read together on first use and kept for the container's life;
    read again together when GitHub refuses one App's key (a rotation, R-AUTH-04)."""

    def __init__(self, ssm: Ssm, apps: Sequence[tuple[str, str]]) -> None:
        self.ssm = ssm
        self.apps = tuple(apps)
        self._credentials: tuple[AppCredentials, ...] | None = None
        self._lock = threading.Lock()

    def credentials(self, index: int) -> AppCredentials:
        """The credentials of App `index` (list order), read from SSM on first use."""
        if not self.apps:
            raise ConfigError("PARAMETER_GITHUB_APP_ID_NAME, PARAMETER_GITHUB_APP_KEY_BASE64_NAME: "
                              "not set")
        with self._lock:
            if self._credentials is None:
                self._credentials = load_all_credentials(self.ssm, self.apps)
            return self._credentials[index]

    def loaded(self, index: int) -> AppCredentials | None:
        """App `index`'s credentials if they were read already; never reads them."""
        with self._lock:
            return None if self._credentials is None else self._credentials[index]

    def reload(self, index: int) -> bool:
        """Read every App's credentials again; True when App `index`'s changed. A failed read
        keeps the old ones (logged by the caller as not reloaded) and raises."""
        with self._lock:
            fresh = load_all_credentials(self.ssm, self.apps)
            old, self._credentials = self._credentials, fresh
        if old is None:
            return True
        return not (fresh[index].app_id == old[index].app_id and same_key(fresh[index], old[index]))


def same_key(first: AppCredentials, second: AppCredentials) -> bool:
    """Whether two credentials hold the same RSA key."""
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
