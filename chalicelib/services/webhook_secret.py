"""The webhook secret, read from an SSM SecureString and cached per container.

The parameter holds one secret, exactly as stored: no splitting, no trimming (a comma or a space
is part of the secret). While the secret is rotated, the previous one may sit in a second,
optional parameter (`PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME`); a delivery signed with
either is authentic. The cache expires, so a warm container sees a rotation within minutes; a
signature mismatch may also re-read it early, at most once a minute, so a forged delivery cannot
turn into an SSM call per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, PermanentError

TTL_SECONDS = 300.0
MIN_REFRESH_SECONDS = 60.0
# GitHub signs with whatever it is given; a short secret is guessable offline from any one
# signed delivery. GitHub's own advice is a long random string (docs/DEPLOY.md: 32 bytes hex).
MIN_SECRET_LENGTH = 16


class WebhookSecrets:
    """Reads the webhook secret parameter (and the previous one) through the SSM adapter and
    caches them."""

    def __init__(self, ssm: Ssm, parameter_name: str,
                 clock: Callable[[], float] = time.monotonic,
                 previous_name: str | None = None) -> None:
        self._ssm = ssm
        self._name = parameter_name
        self._previous = previous_name
        self._clock = clock
        self._secrets: tuple[str, ...] = ()
        self._read_at: float | None = None

    def get(self) -> tuple[str, ...]:
        """The current secret (then the previous one, if any), read from SSM when not cached or
        older than the TTL."""
        if self._read_at is None or self._clock() - self._read_at >= TTL_SECONDS:
            self._read()
        return self._secrets

    def refresh(self) -> bool:
        """Re-read the parameters unless they were read under a minute ago; True when re-read."""
        if self._read_at is not None and self._clock() - self._read_at < MIN_REFRESH_SECONDS:
            return False
        self._read()
        return True

    def _read(self) -> None:
        # The errors name the parameter and the AWS error code, never a value. A read that may
        # pass stays a RetryableError (the webhook answers 503 and GitHub's delivery fails).
        try:
            if self._previous:
                # One GetParameters for both; a missing previous one is simply left out.
                values = self._ssm.get_strings([self._name, self._previous])
            else:
                current = self._ssm.get_string(self._name)
                values = {self._name: current} if current is not None else {}
        except PermanentError as error:
            raise ConfigError(f"webhook secret: {error}") from error
        if self._name not in values:
            raise ConfigError(f"webhook secret parameter {self._name}: ParameterNotFound")
        names = [self._name] + [n for n in (self._previous,) if n and n in values]
        for name in names:
            if len(values[name]) < MIN_SECRET_LENGTH:
                raise ConfigError(f"webhook secret parameter {name}: shorter than "
                                  f"{MIN_SECRET_LENGTH} characters")
        self._secrets = tuple(values[name] for name in names)
        self._read_at = self._clock()
