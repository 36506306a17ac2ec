"""What AWS would do around the functions: API Gateway posts webhooks, the SQS event source mapping
feeds `scale_up`, EventBridge runs `scale_down`. Each invocation goes through `chalice.test.Client`,
and the GitHub and AWS calls made while it runs are counted as the system's."""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
import uuid
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import IO, Any

from chalice.test import Client

SQS_BATCH = 10  # the event source mapping's batch size (docs/REFERENCE.md §1)


@dataclass
class Invocations:
    """How often each function ran, and the calls it made to GitHub and AWS, by kind."""

    counts: Counter[str] = field(default_factory=Counter)
    github: Counter[str] = field(default_factory=Counter)
    aws: Counter[str] = field(default_factory=Counter)
    retried_messages: int = 0
    rejected_webhooks: int = 0


class Lambdas:
    """Invoke the app's functions the way their AWS triggers would, against devstack."""

    def __init__(self, stack: Any, log: IO[str], visibility_seconds: int = 1) -> None:
        from app import app

        self.stack = stack
        self.log = log
        # A project dir without .chalice/config.json: the test client must not overlay the `dev`
        # stage's environment on the devstack one.
        self._dir = tempfile.TemporaryDirectory(prefix="demo-chalice-")
        self.client = Client(app, project_dir=self._dir.name)
        self.secret = stack.deployment.webhook_secret.encode()
        self.queue_url = stack.deployment.queue_url
        self.sqs = stack.boto("sqs")
        self.visibility_seconds = visibility_seconds
        self.stats = Invocations()

    def close(self) -> None:
        """Forget the temporary project dir."""
        self._dir.cleanup()

    def _invoke(self, name: str, call: Any) -> Any:
        """Run `call` as function `name`; attribute the GitHub and AWS calls made meanwhile."""
        github_before = len(self.stack.github.requests)
        aws_before = Counter(self.stack.aws_faults.calls)
        # The functions log JSON lines to stdout: keep them in the log file, off the live view.
        with redirect_stdout(self.log):
            result = call()
        self.stats.counts[name] += 1
        for entry in self.stack.github.requests[github_before:]:
            # The fake's route key is "METHOD /template"; an unmatched path is logged bare.
            self.stats.github[entry.route or f"{entry.method} {entry.path}"] += 1
        for (service, action), n in (Counter(self.stack.aws_faults.calls) - aws_before).items():
            self.stats.aws[f"{service} {action}"] += n
        return result

    def post_webhook(self, action: str, job_id: int) -> int:
        """Deliver GitHub's `workflow_job` webhook for `job_id`, signed; returns the HTTP status."""
        payload = self.stack.github.workflow_job_payload(action, job_id)
        body = json.dumps(payload).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        response = self._invoke("webhook", lambda: self.client.http.post(
            "/webhook", headers=headers, body=body))
        status = int(response.status_code)
        if status >= 300:
            self.stats.rejected_webhooks += 1
        return status

    def drain_build_queue(self) -> int:
        """Feed every visible build-queue message to `scale_up` in batches; returns messages fed."""
        fed = 0
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                return fed
            fed += len(received)
            self._scale_up(received)

    def _scale_up(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [_sqs_record(m, self.queue_url) for m in messages]}
        result = self._invoke("scale_up", lambda: self.client.lambda_.invoke("scale_up", event))
        answer = result.payload or {}
        failures = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failures]
        retry = [m for m in messages if m["MessageId"] in failures]
        # As the event source mapping does: delete what succeeded; the rest reappears after the
        # visibility timeout, here shortened in proportion to the compressed time.
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        if retry:
            self.stats.retried_messages += len(retry)
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"],
                 "VisibilityTimeout": self.visibility_seconds} for i, m in enumerate(retry)])

    def scale_down(self) -> None:
        """One scheduled `scale_down` run."""
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
        self._invoke("scale_down", lambda: self.client.lambda_.invoke("scale_down", event))


def _sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """The Lambda SQS record of a received message (what the event source mapping sends)."""
    attributes = message.get("Attributes", {})
    name = queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{name}",
        "awsRegion": "eu-west-1",
    }
