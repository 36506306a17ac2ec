"""GitHub's webhook delivery headers, signed as GitHub signs them (HMAC-SHA256 of the body)."""

from __future__ import annotations

import hashlib
import hmac
import uuid


def signed_headers(body: bytes, secret: str, event: str = "workflow_job") -> dict[str, str]:
    """The headers of one delivery of `body`: event, a fresh delivery id, the signature."""
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/devstack",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
    }
