"""Shared helpers of the webhook tests: fixtures on disk, signed deliveries, the build queue."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import logs
from chalicelib.rules.signature import sign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def payload_bytes(name: str) -> bytes:
    """The bytes of a fixture, e.g. `workflow_job/queued.json`: what GitHub would send."""
    return (FIXTURES / name).read_bytes()


def payload(name: str) -> dict[str, Any]:
    """A fixture parsed."""
    return dict(json.loads(payload_bytes(name)))


def headers(body: bytes, secret: str | None, event: str = "workflow_job",
            **extra: str) -> dict[str, str]:
    """GitHub's delivery headers for `body`, signed with `secret` (None: unsigned)."""
    values = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": "109948940",
    }
    if secret is not None:
        values["X-Hub-Signature-256"] = sign(secret, body)
    values.update(extra)
    return values


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[Client]:
    """chalice's test client on devstack's environment.

    A stage that .chalice/config.json does not define: for the `dev` stage the test client would
    lay that file's environment variables over devstack's.
    """
    with Client(app, stage_name="devstack") as test_client:
        yield test_client


class Webhook:
    """Posts deliveries to /webhook and reads what reached the build queue."""

    def __init__(self, client: Client, stack: Any) -> None:
        self.client = client
        self.stack = stack
        self.secret: str = stack.deployment.webhook_secret

    def post(self, body: bytes, secret: str | None = "", event: str = "workflow_job",
             **extra: str) -> Any:
        """POST `body` signed with the deployment's secret (or `secret`; None: unsigned)."""
        key = self.secret if secret == "" else secret
        return self.client.http.post("/webhook", headers=headers(body, key, event, **extra),
                                     body=body)

    def post_fixture(self, name: str, event: str = "workflow_job") -> Any:
        """POST a fixture as GitHub would send it."""
        return self.post(payload_bytes(name), event=event)

    def queued(self) -> list[dict[str, Any]]:
        """Every message on the build queue (received, so a second call sees none of them)."""
        sqs = self.stack.boto("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.stack.deployment.queue_url,
                                        MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                        MessageAttributeNames=["All"]).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)


@pytest.fixture
def webhook(client: Client, stack: Any) -> Webhook:
    """A GitHub that delivers to this deployment's webhook."""
    return Webhook(client, stack)


def body_of(response: Any) -> dict[str, Any]:
    """The JSON body of a webhook response."""
    return dict(json.loads(response.body))


class _Lines(logging.Handler):
    """Keeps each record as the JSON line CloudWatch would get, formatted when emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """The project's log lines written during the test, as JSON text."""
    handler = _Lines()
    root = logging.getLogger("ghr")
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
