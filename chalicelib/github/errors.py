"""The GitHub adapter's errors: what GitHub refused, and why another App may still serve a call.

Each is a `PermanentError` or a `RetryableError` (chalicelib/errors.py), so callers that only
know those two keep working; the App selection (github/apps.py) tells them apart to decide
whether a call moves to another App (docs/REFERENCE.md §10).
"""

from __future__ import annotations

from chalicelib.errors import PermanentError, RetryableError
from chalicelib.github import limits


class GitHubUnauthorized(PermanentError):
    """GitHub answered 401: the credential sent was rejected (the caller may refresh once)."""

    def __init__(self, text: str, github_message: str) -> None:
        super().__init__(text)
        self.github_message = github_message


class GitHubForbidden(PermanentError):
    """GitHub answered 403 for another reason than a rate limit: the credential sent may not do
    this (an installation token without the permission, for one)."""


class PrimaryRateLimited(RetryableError):
    """A bucket's primary budget is spent until a reset farther than the time left to wait."""


class AppJwtRejected(GitHubUnauthorized):
    """GitHub refused the App's JWT, even signed with the key SSM holds now (a revoked key, a
    wrong App id, a host clock out of range): the App can make no call until that is fixed."""


class AppNotInstalled(PermanentError):
    """The App has no installation on the owner (GitHub's 404 on the installation lookup)."""


class InstallationRejected(PermanentError):
    """GitHub refused the owner's installation token even after a fresh one was minted."""


def refusal(call: str, status: int, message: str) -> PermanentError:
    """The error for a 4xx that is not a rate limit: retrying would get the same answer."""
    if status == 401:
        hint = limits.unauthorized_hint(message)
        return GitHubUnauthorized(f"{call}: 401 {message} ({hint})", message)
    if status == 403:
        return GitHubForbidden(f"{call}: 403 {message}")
    return PermanentError(f"{call}: {status} {message}")
