"""GitHub App credentials of the fake: the App's RSA key, App JWT verification, minted secrets.

The checks and messages follow what GitHub answers (401 with these exact `message` strings), so the
system's error handling is exercised against the real wording.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# GitHub refuses an App JWT that lives longer than ten minutes.
MAX_JWT_LIFETIME = 600

MSG_JWT_REQUIRED = "A JSON web token is required to access this endpoint."
MSG_JWT_UNDECODABLE = "A JSON web token could not be decoded"
MSG_EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
MSG_EXP_INVALID = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
    "the assertion expires"
)
MSG_IAT_INVALID = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
    "was issued"
)
MSG_ISS_MISSING = "Missing 'issuer' claim ('iss') in assertion"
MSG_ISS_INVALID = "'Issuer' claim ('iss') must be an Integer"
MSG_ISS_UNKNOWN = "Integration not found"


class JwtRejected(Exception):
    """An App JWT GitHub would refuse; `message` is GitHub's wording (never contains the JWT)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AppKey:
    """The App's RSA key pair: the private half as PKCS#1 PEM, the public half to verify JWTs."""

    private_key_pem: str
    public_key: rsa.RSAPublicKey

    @classmethod
    def generate(cls) -> AppKey:
        """A fresh 2048-bit key, as GitHub issues when an App key is created."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, "BEGIN RSA PRIVATE KEY"
            serialization.NoEncryption(),
        ).decode("ascii")
        return cls(private_key_pem=pem, public_key=key.public_key())


@dataclass
class FakeApp:
    """One GitHub App of the fake: its id, client id and active keys (the first, `key`, is the
    one it was created with; GitHub allows several, so a key can be rotated without downtime)."""

    app_id: int
    key: AppKey
    client_id: str = field(default_factory=lambda: "Iv1." + secrets.token_hex(8))
    keys: list[AppKey] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys.append(self.key)

    @property
    def private_key_pem(self) -> str:
        """The App's first private key, PKCS#1 PEM (what GitHub lets an App owner download)."""
        return self.key.private_key_pem

    def issued(self, iss: Any) -> bool:
        """Whether a JWT's `iss` claim names this App (its id, as text or number, or client id)."""
        return str(iss) in (str(self.app_id), self.client_id)


def unverified_issuer(token: str) -> Any:
    """The `iss` claim of a JWT, read without checking anything (to pick the App that must
    verify it); None when the token cannot be read."""
    try:
        payload = jwt.api_jws.decode_complete(token, options={"verify_signature": False})
        return json.loads(payload["payload"]).get("iss")
    except (jwt.InvalidTokenError, ValueError, AttributeError, TypeError):
        return None


def verify_app_jwt(
    token: str, keys: Sequence[AppKey], app_id: int, client_id: str, now: float
) -> dict[str, Any]:
    """The claims of a valid App JWT for this App at time `now`, signed by one of its active
    `keys`; raises JwtRejected otherwise."""
    claims: dict[str, Any] | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["RS256"],
                # Times are checked below against the fake's injectable clock, not the wall clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
            break
        except jwt.InvalidTokenError:
            continue
    if claims is None:
        raise JwtRejected(MSG_JWT_UNDECODABLE)
    iss = claims.get("iss")
    if iss is None:
        raise JwtRejected(MSG_ISS_MISSING)
    if iss != client_id:
        if isinstance(iss, bool) or not str(iss).isdigit():
            raise JwtRejected(MSG_ISS_INVALID)
        if int(iss) != app_id:
            raise JwtRejected(MSG_ISS_UNKNOWN)
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now:
        raise JwtRejected(MSG_IAT_INVALID)
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
        raise JwtRejected(MSG_EXP_INVALID)
    if exp - iat > MAX_JWT_LIFETIME or exp > now + MAX_JWT_LIFETIME:
        raise JwtRejected(MSG_EXP_TOO_FAR)
    return claims


def random_token(prefix: str, length: int = 36) -> str:
    """A secret shaped like GitHub's (`ghs_...` installation tokens, `A...` registration tokens)."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))
