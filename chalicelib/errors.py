"""The project's small error vocabulary; adapters translate outside errors into it."""

from __future__ import annotations


class GhrError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(GhrError):
    """The configuration (environment or SSM parameters) is missing or malformed."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class RetryableError(GhrError):
    """A call failed for a reason that may pass: throttling, 5xx, capacity, a timeout."""


class PermanentError(GhrError):
    """A call failed for a reason that retrying will not fix: bad input, not found, forbidden."""
