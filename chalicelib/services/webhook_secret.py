"""The webhook secret, read from an SSM SecureString and cached per container.

The parameter may hold several secrets separated by commas: while a secret is rotated, GitHub
may sign with either, and a delivery is authentic when any one matches. The cache expires, so a
warm container sees a rotation within minutes; a signature mismatch may also re-read it early,
at most once a minute, so a forged delivery cannot turn into an SSM call per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, PermanentError

TTL_SECONDS = 300.0
MIN_REFRESH_SECONDS = 60.0


def split_secrets(value: str) -> tuple[str, ...]:
    """The secrets listed in a parameter value: comma-separated, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class WebhookSecrets:
    """Reads the webhook secret parameter through the SSM adapter and caches it."""

    def __init__(self, ssm: Ssm, parameter_name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ssm = ssm
        self._name = parameter_name
        self._clock = clock
        self._secrets: tuple[str, ...] = ()
        self._read_at: float | None = None

    def get(self) -> tuple[str, ...]:
        """The current secrets, read from SSM when not cached or older than the TTL."""
        if self._read_at is None or self._clock() - self._read_at >= TTL_SECONDS:
            self._read()
        return self._secrets

    def refresh(self) -> bool:
        """Re-read the parameter unless it was read under a minute ago; True when re-read."""
        if self._read_at is not None and self._clock() - self._read_at < MIN_REFRESH_SECONDS:
            return False
        self._read()
        return True

    def _read(self) -> None:
        # The errors name the parameter and the AWS error code, never a value. A read that may
        # pass stays a RetryableError (the webhook answers 503 and GitHub's delivery fails).
        try:
            value = self._ssm.get_string(self._name)
        except PermanentError as error:
            raise ConfigError(f"webhook secret: {error}") from error
        if value is None:
            raise ConfigError(f"webhook secret parameter {self._name}: ParameterNotFound")
        secrets = split_secrets(value)
        if not secrets:
            raise ConfigError(f"webhook secret parameter {self._name}: empty")
        self._secrets = secrets
        self._read_at = self._clock()
