"""The webhook's adapters against devstack: the cached SSM secret and the build queue."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.aws.sqs import BuildQueue
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, PermanentError, RetryableError
from chalicelib.messages import JobMessage
from chalicelib.services.webhook_secret import MIN_REFRESH_SECONDS, TTL_SECONDS, WebhookSecrets


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def put_secret(stack: Any, value: str) -> None:
    stack.boto("ssm").put_parameter(Name=stack.deployment.webhook_secret_parameter, Value=value,
                                    Type="SecureString", Overwrite=True)


def secrets_of(stack: Any, clock: Clock, previous: str | None = None) -> WebhookSecrets:
    return WebhookSecrets(Ssm(stack.boto("ssm")), stack.deployment.webhook_secret_parameter,
                          clock, previous_name=previous)


def test_secret_is_decrypted_and_taken_exactly_as_stored(stack: Any) -> None:
    put_secret(stack, " new-secret-value , old-secret-value ,")
    assert secrets_of(stack, Clock()).get() == (" new-secret-value , old-secret-value ,",)


def test_previous_secret_is_read_in_the_same_call(stack: Any) -> None:
    previous = stack.deployment.webhook_secret_parameter + "_previous"
    stack.boto("ssm").put_parameter(Name=previous, Value="the-previous-secret",
                                    Type="SecureString")
    put_secret(stack, "the-current-secret")
    stack.aws_faults.reset()
    assert secrets_of(stack, Clock(), previous).get() == ("the-current-secret",
                                                          "the-previous-secret")
    assert stack.aws_faults.count("ssm") == 1


def test_missing_current_secret_is_a_config_error_even_with_a_previous_one(stack: Any) -> None:
    previous = stack.deployment.webhook_secret_parameter + "_previous"
    stack.boto("ssm").put_parameter(Name=previous, Value="the-previous-secret",
                                    Type="SecureString")
    stack.boto("ssm").delete_parameter(Name=stack.deployment.webhook_secret_parameter)
    with pytest.raises(ConfigError, match="ParameterNotFound"):
        secrets_of(stack, Clock(), previous).get()


def test_secret_is_cached_until_the_ttl_passes(stack: Any) -> None:
    clock = Clock()
    secrets = secrets_of(stack, clock)
    first = secrets.get()
    put_secret(stack, "the-rotated-secret")
    clock.now += TTL_SECONDS - 1
    assert secrets.get() == first
    clock.now += 1
    assert secrets.get() == ("the-rotated-secret",)


def test_secret_refresh_is_limited_to_once_a_minute(stack: Any) -> None:
    clock = Clock()
    secrets = secrets_of(stack, clock)
    secrets.get()
    put_secret(stack, "the-rotated-secret")
    assert secrets.refresh() is False
    clock.now += MIN_REFRESH_SECONDS
    assert secrets.refresh() is True
    assert secrets.get() == ("the-rotated-secret",)


def test_missing_secret_parameter_is_a_config_error_naming_it(stack: Any) -> None:
    stack.boto("ssm").delete_parameter(Name=stack.deployment.webhook_secret_parameter)
    with pytest.raises(ConfigError, match="ParameterNotFound") as raised:
        secrets_of(stack, Clock()).get()
    assert stack.deployment.webhook_secret_parameter in str(raised.value)


@pytest.mark.parametrize("value", [" , ", "fifteen-chars-x", " " * 15])
def test_secret_shorter_than_16_characters_is_a_config_error_without_its_value(
        stack: Any, value: str) -> None:
    put_secret(stack, value)
    with pytest.raises(ConfigError, match="shorter than 16 characters") as raised:
        secrets_of(stack, Clock()).get()
    assert value.strip() not in str(raised.value) or not value.strip()


def test_throttled_secret_read_is_retryable(stack: Any) -> None:
    stack.aws_faults.fail_next("ssm", "GetParameter", "ThrottlingException")
    with pytest.raises(RetryableError):
        secrets_of(stack, Clock()).get()


def test_build_queue_sends_the_contract_body(stack: Any) -> None:
    queue = BuildQueue(stack.boto("sqs"), stack.deployment.queue_url)
    job = JobMessage(id=5, repository_name="app", repository_owner="acme", labels=("self-hosted",))
    message_id = queue.send(job, delivery_id="d-9")
    [message] = stack.boto("sqs").receive_message(
        QueueUrl=stack.deployment.queue_url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageId"] == message_id
    assert json.loads(message["Body"]) == {
        "id": 5, "eventType": "workflow_job", "repositoryName": "app",
        "repositoryOwner": "acme", "installationId": 0, "labels": ["self-hosted"]}
    assert message["MessageAttributes"]["deliveryId"]["StringValue"] == "d-9"


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("InternalError", 500, RetryableError),
    ("RequestThrottled", 400, RetryableError),
    ("AccessDenied", 403, PermanentError),
    ("QueueDoesNotExist", 400, PermanentError),
])
def test_build_queue_classifies_send_failures(stack: Any, code: str, status: int,
                                              kind: type[Exception]) -> None:
    stack.aws_faults.fail_next("sqs", "SendMessage", code, status=status)
    queue = BuildQueue(stack.boto("sqs"), stack.deployment.queue_url)
    with pytest.raises(kind, match=code):
        queue.send(JobMessage(id=1, repository_name="a", repository_owner="b"))


def test_build_queue_refuses_a_message_over_the_sqs_limit_whole(stack: Any) -> None:
    queue = BuildQueue(stack.boto("sqs"), stack.deployment.queue_url)
    huge = JobMessage(id=1, repository_name="a", repository_owner="b", labels=("x" * 300_000,))
    with pytest.raises(PermanentError):
        queue.send(huge)
    assert stack.aws_faults.count("sqs", "SendMessage") == 0
