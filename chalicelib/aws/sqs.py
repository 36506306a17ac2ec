"""The build queue (SQS): sends the CONTRACT.md §3 message of a queued job, and tells how many
jobs wait in it or are being handled.

Only the fields scale-up needs are sent, so a message stays far below SQS's size limit whatever
the webhook payload weighed (RELIABILITY BI-31).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import PermanentError, RetryableError

EVENT_TYPE = "workflow_job"
# SQS's historical maximum message size; a message is never cut, it is refused whole.
MAX_MESSAGE_BYTES = 256 * 1024

# Errors that a later attempt (GitHub's redelivery) may get past.
_RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "RequestThrottled", "ServiceUnavailable",
    "InternalError", "InternalFailure", "KmsThrottled", "KMS.ThrottlingException",
    "RequestTimeout", "RequestTimeoutException",
})


@dataclass(frozen=True)
class BuildJob:
    """A queued job as the build queue carries it (CONTRACT.md §3)."""

    id: int
    repository_name: str
    repository_owner: str
    installation_id: int = 0
    repo_owner_type: str | None = None
    labels: tuple[str, ...] | None = None

    def to_body(self) -> str:
        """The message body: JSON with the contract's camelCase names."""
        body: dict[str, Any] = {
            "id": self.id,
            "eventType": EVENT_TYPE,
            "repositoryName": self.repository_name,
            "repositoryOwner": self.repository_owner,
            "installationId": self.installation_id,
        }
        if self.repo_owner_type is not None:
            body["repoOwnerType"] = self.repo_owner_type
        if self.labels is not None:
            body["labels"] = list(self.labels)
        return json.dumps(body, separators=(",", ":"))


def is_retryable(error: BaseException) -> bool:
    """Whether an SQS failure may pass on a later attempt (pure classifier over the error)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in _RETRYABLE_CODES or status >= 500 or status == 429
    # No AWS answer at all (connection refused, read timeout): the queue may be back soon.
    return True


class BuildQueue:
    """Sends jobs to the build queue through an injected boto3 SQS client."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, job: BuildJob, delivery_id: str | None = None) -> str:
        """Enqueue `job`; return the SQS message id. Raises RetryableError or PermanentError."""
        body = job.to_body()
        if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise PermanentError(f"build message for job {job.id} is over {MAX_MESSAGE_BYTES} B")
        request: dict[str, Any] = {"QueueUrl": self._queue_url, "MessageBody": body}
        if delivery_id:
            # Traces a message back to the GitHub delivery that caused it.
            request["MessageAttributes"] = {
                "deliveryId": {"DataType": "String", "StringValue": delivery_id[:256]},
            }
        try:
            response = self._client.send_message(**request)
        except (ClientError, BotoCoreError) as error:
            kind = RetryableError if is_retryable(error) else PermanentError
            raise kind(f"SQS SendMessage failed: {_describe(error)}") from error
        return str(response["MessageId"])

    def backlog(self) -> int:
        """Messages waiting or in flight (received by scale-up and not yet deleted): while not
        zero, scale-up is, or is about to be, launching. Raises RetryableError or
        PermanentError."""
        try:
            response = self._client.get_queue_attributes(
                QueueUrl=self._queue_url,
                AttributeNames=["ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible"])
        except (ClientError, BotoCoreError) as error:
            kind = RetryableError if is_retryable(error) else PermanentError
            raise kind(f"SQS GetQueueAttributes failed: {_describe(error)}") from error
        attributes = response.get("Attributes", {})
        return sum(int(attributes.get(name, 0)) for name in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"))


def _describe(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(error).__name__))
    return type(error).__name__
