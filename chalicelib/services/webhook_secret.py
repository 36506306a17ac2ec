"""The webhook secret, read from an SSM SecureString and cached per container.

The parameter may hold several secrets separated by commas: while a secret is rotated, GitHub
may sign with either, and a delivery is authentic when any one matches. The cache expires, so a
warm container sees a rotation within minutes; a signature mismatch may also re-read it early,
at most once a minute, so a forged delivery cannot turn into an SSM call per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ConfigError, RetryableError

TTL_SECONDS = 300.0
MIN_REFRESH_SECONDS = 60.0

# SSM/KMS answers that a retry may get past; anything else is a deployment problem.
_RETRYABLE_CODES = frozenset({
    "ThrottlingException", "InternalServerError", "KMSThrottlingException",
    "KMS.ThrottlingException", "ServiceUnavailable", "RequestTimeout",
})


def split_secrets(value: str) -> tuple[str, ...]:
    """The secrets listed in a parameter value: comma-separated, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class WebhookSecrets:
    """Reads the webhook secret parameter through an injected SSM client and caches it."""

    def __init__(self, client: Any, parameter_name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
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
        try:
            response = self._client.get_parameter(Name=self._name, WithDecryption=True)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            # The message names the parameter and the AWS error code, never a value.
            message = f"webhook secret parameter {self._name}: {code or 'error'}"
            if code in _RETRYABLE_CODES or status >= 500:
                raise RetryableError(message) from error
            raise ConfigError(message) from error
        except BotoCoreError as error:
            raise RetryableError(
                f"webhook secret parameter {self._name}: {type(error).__name__}"
            ) from error
        secrets = split_secrets(str(response.get("Parameter", {}).get("Value", "")))
        if not secrets:
            raise ConfigError(f"webhook secret parameter {self._name}: empty")
        self._secrets = secrets
        self._read_at = self._clock()
