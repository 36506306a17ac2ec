"""The app's functions invoked as their AWS triggers would invoke them, through
`chalice.test.Client`, against whatever the environment points at (devstack, for its users).

Used by `python -m devstack scale-up|scale-down|pool` and by the demo.
"""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from typing import IO, Any

SQS_BATCH = 10  # the event source mapping's batch size (docs/REFERENCE.md §1)
# A stage .chalice/config.json does not define: the client then puts no stage environment over
# the caller's (the placeholder stage is `sample`).
STAGE = "devstack"


def sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """The Lambda SQS record of a received message (what the event source mapping sends)."""
    name = queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{name}",
        "awsRegion": "eu-west-1",
    }


def scheduled_event(client: Any) -> dict[str, Any]:
    """The EventBridge event a schedule sends."""
    event: dict[str, Any] = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    return event


class Functions:
    """scale_up fed from the build queue, scale_down and adjust_pool, invoked in this process."""

    def __init__(self, queue_url: str, log: IO[str] = sys.stderr, sqs: Any = None) -> None:
        import boto3
        from chalice.test import Client

        from app import app

        self.client = Client(app, stage_name=STAGE)
        self.queue_url = queue_url
        # The functions print their JSON log lines to stdout; they go to `log` instead.
        self.log = log
        self.sqs = sqs or boto3.client("sqs")

    def _quietly(self, name: str, event: Any) -> Any:
        with redirect_stdout(self.log):
            return self.client.lambda_.invoke(name, event)

    def drain_build_queue(self) -> tuple[int, int, int]:
        """Feed every visible message to scale_up in batches, deleting what it handled, as the
        event source mapping does; (messages fed, returned for retry, batches)."""
        fed = retried = batches = 0
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=0,
                AttributeNames=["All"]).get("Messages", [])
            if not received:
                return fed, retried, batches
            batches += 1
            fed += len(received)
            result = self._quietly("scale_up", {
                "Records": [sqs_record(m, self.queue_url) for m in received]})
            failures = {f["itemIdentifier"]
                        for f in (result.payload or {}).get("batchItemFailures", [])}
            # The rest reappear after the queue's visibility timeout, as on AWS.
            retried += len(failures)
            done = [m for m in received if m["MessageId"] not in failures]
            if done:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done)])

    def scale_down(self) -> None:
        """One scheduled scale_down run."""
        self._quietly("scale_down", scheduled_event(self.client))

    def adjust_pool(self, size: int, runner_config: str | None = None) -> None:
        """One adjust_pool run, as a pool schedule invokes it (for the runner configuration
        `runner_config` when given, docs/REFERENCE.md §6)."""
        payload: dict[str, Any] = {"poolSize": size}
        if runner_config is not None:
            payload["runnerConfig"] = runner_config
        self._quietly("adjust_pool", payload)
