"""The one classifier of AWS failures: every adapter asks it, with extra codes where needed."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chalicelib.aws.ec2 import CAPACITY_CODES, FleetError
from chalicelib.aws.errors import is_retryable, translate
from chalicelib.errors import ConfigError, PermanentError, RetryableError


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "echoes secret-value"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "AnyCall")


@pytest.mark.parametrize("code", ["ThrottlingException", "RequestLimitExceeded",
                                  "KMSThrottlingException", "InternalServerError"])
def test_throttling_and_service_trouble_are_retryable_in_every_service(code: str) -> None:
    assert is_retryable(client_error(code))


def test_any_5xx_or_429_is_retryable_whatever_the_code() -> None:
    assert is_retryable(client_error("SomethingNew", 503))
    assert is_retryable(client_error("SomethingNew", 429))
    assert not is_retryable(client_error("SomethingNew", 400))


def test_no_answer_at_all_is_the_networks_and_retryable() -> None:
    assert is_retryable(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert is_retryable(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"))
    assert not is_retryable(ValueError("a bug"))


def test_a_callers_extra_codes_count_for_that_call_only() -> None:
    error = client_error("InsufficientInstanceCapacity")
    assert not is_retryable(error)
    assert is_retryable(error, extra=CAPACITY_CODES)


def test_fleet_errors_are_judged_by_the_same_classifier() -> None:
    assert FleetError("InsufficientInstanceCapacity", "").retryable
    assert FleetError("RequestLimitExceeded", "").retryable
    assert not FleetError("InvalidLaunchTemplateName.NotFoundException", "").retryable


def test_translate_names_the_call_and_code_never_the_aws_message() -> None:
    retryable = translate(client_error("ThrottlingException"), "ssm GetParameter x")
    permanent = translate(client_error("AccessDeniedException"), "ssm GetParameter x")
    config = translate(client_error("AccessDeniedException"), "ssm GetParameter x",
                       permanent=ConfigError)

    assert isinstance(retryable, RetryableError)
    assert isinstance(permanent, PermanentError)
    assert isinstance(config, ConfigError)
    assert str(permanent) == "ssm GetParameter x: AccessDeniedException"
    assert all("secret-value" not in str(e) for e in (retryable, permanent, config))
