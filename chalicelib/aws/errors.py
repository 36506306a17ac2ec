"""The one classifier of AWS failures: retryable or permanent, and the project error for each.

The clients already retry throttling in-process (adaptive mode, see `wiring.aws`); what reaches
here has exhausted that budget or is not worth retrying, and the caller decides per message.
A caller whose service has codes of its own that pass with time (EC2 capacity, S3 clock skew)
passes them as `extra`.
"""

from __future__ import annotations

from collections.abc import Collection

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ConfigError, GhrError, PermanentError, RetryableError

# Codes that pass with time in every AWS service: throttling, service trouble, timeouts.
RETRYABLE_CODES = frozenset({
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "EC2ThrottledException",
    "TooManyUpdates",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerErrorException",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestExpired",
    "IdempotentParameterMismatch",
    # A SecureString read or write goes through KMS, whose throttling SSM passes on.
    "KMSThrottlingException",
    "KMS.ThrottlingException",
    "KmsThrottled",
})


def error_code(error: BaseException) -> str:
    """The AWS error code of `error` ("" when it carries none)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_retryable_code(code: str, status: int = 0, extra: Collection[str] = ()) -> bool:
    """Whether an AWS error code (and HTTP status) is worth another attempt later."""
    return code in RETRYABLE_CODES or code in extra or status >= 500 or status == 429


def is_retryable(error: BaseException, extra: Collection[str] = ()) -> bool:
    """Whether a botocore failure may pass on a later attempt.

    An answer from AWS is judged by its code and status; no answer at all (a connection
    refused or reset, a read timeout) is the network's, not the request's.
    """
    if isinstance(error, ClientError):
        return is_retryable_code(error_code(error), _status(error), extra)
    return isinstance(error, BotoCoreError)


def translate(error: Exception, call: str, extra: Collection[str] = (),
              permanent: type[GhrError] = PermanentError) -> GhrError:
    """The project error for a botocore failure of `call` ("ec2 CreateFleet"), chained by caller.

    `permanent` is the error of a failure that will not pass (a `ConfigError` where only the
    deployment can be at fault). The message names the call and the code only: AWS error
    messages can echo request values.
    """
    reason = error_code(error) or _status(error) or type(error).__name__
    if is_retryable(error, extra):
        return RetryableError(f"{call}: {reason}")
    if permanent is ConfigError:
        return ConfigError(f"{call}: {reason}")
    return permanent(f"{call}: {reason}")
