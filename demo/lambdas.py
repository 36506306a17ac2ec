"""What AWS would do around the functions: API Gateway posts webhooks, the SQS event source mapping
feeds `scale_up`, EventBridge runs `scale_down`, `sync_runner_binaries` and the pool's
`adjust_pool`. Each invocation goes through `chalice.test.Client`, and the GitHub and AWS calls
made while it runs are counted as the system's."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import IO, Any

from chalice.test import Client

from devstack.invoke import SQS_BATCH, STAGE, scheduled_event, sqs_record
from devstack.webhooks import signed_headers


@dataclass
class Invocations:
    """How often each function ran, and the calls it made to GitHub and AWS, by kind."""

    counts: Counter[str] = field(default_factory=Counter)
    github: Counter[str] = field(default_factory=Counter)
    # GitHub calls by the App that made them ("App <id>"; "anonymous" without credentials).
    github_by_app: Counter[str] = field(default_factory=Counter)
    aws: Counter[str] = field(default_factory=Counter)
    retried_messages: int = 0
    rejected_webhooks: int = 0


class Lambdas:
    """Invoke the app's functions the way their AWS triggers would, against devstack."""

    def __init__(self, stack: Any, log: IO[str], visibility_seconds: int = 1) -> None:
        from app import app

        self.stack = stack
        self.log = log
        # A stage .chalice/config.json does not define: no stage environment over devstack's.
        self.client = Client(app, stage_name=STAGE)
        self.secret = stack.deployment.webhook_secret
        self.queue_url = stack.deployment.queue_url
        self.sqs = stack.boto("sqs")
        self.visibility_seconds = visibility_seconds
        self.stats = Invocations()

    def close(self) -> None:
        """Nothing is held between invocations (kept for the callers' `finally`)."""

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
            self.stats.github_by_app["anonymous" if entry.app_id is None
                                     else f"App {entry.app_id}"] += 1
        for (service, action), n in (Counter(self.stack.aws_faults.calls) - aws_before).items():
            self.stats.aws[f"{service} {_rest_action(action)}"] += n
        return result

    def post_webhook(self, action: str, job_id: int) -> int:
        """Deliver GitHub's `workflow_job` webhook for `job_id`, signed; returns the HTTP status."""
        payload = self.stack.github.workflow_job_payload(action, job_id)
        body = json.dumps(payload).encode()
        headers = signed_headers(body, self.secret)
        response = self._invoke("webhook", lambda: self.client.http.post(
            "/webhook", headers=headers, body=body))
        status = int(response.status_code)
        if status >= 300:
            self.stats.rejected_webhooks += 1
        return status

    def ec2_event(self, event: dict[str, Any]) -> None:
        """Deliver an EC2 event to `ec2_events`, as its EventBridge rule would."""
        self._invoke("ec2_events", lambda: self.client.lambda_.invoke("ec2_events", event))

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
        event = {"Records": [sqs_record(m, self.queue_url) for m in messages]}
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
        event = scheduled_event(self.client)
        self._invoke("scale_down", lambda: self.client.lambda_.invoke("scale_down", event))

    def adjust_pool(self, size: int, runner_config: str | None = None) -> int:
        """One `adjust_pool` run, as a pool schedule invokes it (for one runner configuration
        when `runner_config` is given, REFERENCE §6); the instances it launched."""
        ec2 = self.stack.boto("ec2")
        before = _pool_instances(ec2)
        payload: dict[str, Any] = {"poolSize": size}
        if runner_config is not None:
            payload["runnerConfig"] = runner_config
        self._invoke("adjust_pool", lambda: self.client.lambda_.invoke("adjust_pool", payload))
        return len(_pool_instances(ec2) - before)

    def sync_runner_binaries(self, bucket: str, key: str) -> tuple[str | None, bool]:
        """One scheduled `sync_runner_binaries` run; (the cached version, whether it changed)."""
        s3 = self.stack.boto("s3")
        before = _cached_version(s3, bucket, key)
        event = scheduled_event(self.client)
        self._invoke("sync_runner_binaries", lambda: self.client.lambda_.invoke(
            "sync_runner_binaries", event))
        after = _cached_version(s3, bucket, key)
        return after, after != before


def _rest_action(action: str) -> str:
    """A REST call (S3's) by what it acts on, not by its path: `PUT /bucket/key` is `PUT object`;
    query-protocol actions (`CreateFleet`) are left as they are."""
    method, _, path = action.partition(" ")
    if not path.startswith("/"):
        return action
    parts = [part for part in path.split("?")[0].split("/") if part]
    return f"{method} {'object' if len(parts) > 1 else 'bucket'}"


def _pool_instances(ec2: Any) -> set[str]:
    """Ids of every instance the pool ever launched (any state)."""
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:ghr:created_by", "Values": ["pool-lambda"]}])
    return {i["InstanceId"] for page in pages for r in page["Reservations"]
            for i in r["Instances"]}


def _cached_version(s3: Any, bucket: str, key: str) -> str | None:
    """The runner version recorded on the cached tarball, None while there is none."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return None
    version = head.get("Metadata", {}).get("runner-version")
    return str(version) if version else None
