"""The build queue (SQS): sends the docs/REFERENCE.md §3 message of a queued job, and tells how many
jobs wait in it or are being handled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate
from chalicelib.errors import PermanentError
from chalicelib.messages import JobMessage

# SQS's historical maximum message size; a message is never cut, it is refused whole.
MAX_MESSAGE_BYTES = 256 * 1024
# SendMessageBatch takes at most 10 entries.
BATCH_SIZE = 10


class BuildQueue:
    """Sends jobs to the build queue through an injected boto3 SQS client."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, job: JobMessage, delivery_id: str | None = None) -> str:
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
            raise translate(error, "SQS SendMessage failed") from error
        return str(response["MessageId"])

    def send_batch(self, delayed: Sequence[tuple[JobMessage, int]]) -> list[int]:
        """Enqueue each (job, DelaySeconds) with SendMessageBatch, ten per call; return the
        indexes SQS did not accept. A failing call raises RetryableError or PermanentError."""
        failed: list[int] = []
        for start in range(0, len(delayed), BATCH_SIZE):
            entries = [{"Id": str(start + n), "MessageBody": job.to_body(),
                        "DelaySeconds": max(0, min(900, delay))}
                       for n, (job, delay) in enumerate(delayed[start:start + BATCH_SIZE])]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._queue_url,
                                                         Entries=entries)
            except (ClientError, BotoCoreError) as error:
                raise translate(error, "SQS SendMessageBatch failed") from error
            failed.extend(int(item["Id"]) for item in answer.get("Failed") or [])
        return failed

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
            raise translate(error, "SQS GetQueueAttributes failed") from error
        attributes = response.get("Attributes", {})
        return sum(int(attributes.get(name, 0)) for name in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"))

