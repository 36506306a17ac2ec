"""Translate botocore errors into the project's RetryableError / PermanentError.

The clients already retry throttling in-process (adaptive mode, see `wiring.aws`); what reaches
here has exhausted that budget or is not worth retrying, and the caller decides per message.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import GhrError, PermanentError, RetryableError

# Codes that pass with time: throttling, service trouble, EC2 capacity and account limits.
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
    # CreateFleet capacity and limits (the reference system's `scale_errors`).
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "TargetCapacityLimitExceededException",
    "MaxSpotFleetRequestCountExceeded",
    "InsufficientInstanceCapacity",
    "InsufficientCapacityOnHost",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "ResourceLimitExceeded",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "SpotMaxPriceTooLow",
})


def error_code(error: ClientError) -> str:
    """The AWS error code of `error` ("" when absent)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_retryable_code(code: str, status: int = 0) -> bool:
    """Whether an AWS error code (and HTTP status) is worth another attempt later."""
    return code in RETRYABLE_CODES or status >= 500


def translate(error: Exception, call: str) -> GhrError:
    """The project error for a botocore failure of `call` ("ec2 CreateFleet"), chained by caller.

    The message names the call and the code only: AWS error messages can echo request values.
    """
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if is_retryable_code(code, status):
            return RetryableError(f"{call}: {code or status}")
        return PermanentError(f"{call}: {code or status}")
    if isinstance(error, BotoCoreError):
        # Connection resets, read timeouts, endpoint errors: the network, not the request.
        return RetryableError(f"{call}: {type(error).__name__}")
    return PermanentError(f"{call}: {type(error).__name__}")
