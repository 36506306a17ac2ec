"""The GitHub App's credentials: read from SSM, checked, and the App JWTs they sign."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
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


def load_app_credentials(ssm: Ssm, id_name: str, key_name: str) -> AppCredentials:
    """Read and validate the App id and key in one SSM GetParameters call with decryption.

    A read that may pass raises RetryableError; one refused for good (access denied, a bad
    name) is the deployment's to fix: a ConfigError.
    """
    try:
        values = ssm.get_strings([id_name, key_name])
    except PermanentError as error:
        raise ConfigError(str(error)) from error
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
