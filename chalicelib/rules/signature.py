"""GitHub webhook signatures: `X-Hub-Signature-256` is `sha256=` + hex HMAC-SHA256(secret, body).

Pure functions over bytes. Verification never raises and compares in constant time, as GitHub's
"Validating webhook deliveries" asks (never a plain `==` on digests).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="
_HEX_LENGTH = hashlib.sha256().digest_size * 2
_HEADER_LENGTH = len(PREFIX) + _HEX_LENGTH
_HEX_DIGITS = frozenset("0123456789abcdef")


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def is_well_formed(header: str | None) -> bool:
    """True when `header` has the form `sha256=<64 hex digits>` (checked before any HMAC)."""
    if not isinstance(header, str) or len(header) != _HEADER_LENGTH:
        return False
    if not header.startswith(PREFIX):
        return False
    return set(header[len(PREFIX):].lower()) <= _HEX_DIGITS


def verify(secrets: Iterable[str], body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of `body` under any of `secrets` (rotation)."""
    try:
        if header is None or not is_well_formed(header):
            return False
        if not isinstance(body, bytes | bytearray):
            return False
        received = header.lower().encode("ascii")
        # Every secret is tried, not just up to the first match, so the time taken does not
        # depend on which of the rotated secrets signed the delivery.
        matches = [hmac.compare_digest(sign(secret, bytes(body)).encode("ascii"), received)
                   for secret in secrets if isinstance(secret, str) and secret]
        return any(matches)
    except Exception:  # the verifier answers False, never raises, whatever it is given
        return False
