"""A delivery is enqueued at most once (docs/REFERENCE.md §1 and §7; issue 14 item 4): its
`X-GitHub-Delivery` id is recorded in the state table after the message is enqueued, and an id
already recorded gets a 200 with nothing enqueued. A failing table never loses a job: the
delivery is enqueued anyway (a duplicate is better than a lost job) with a warning."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from webhook_support import (
    Webhook,
    body_of,
    client,
    headers,
    log_lines,
    payload_bytes,
    webhook,
)

__all__ = ["client", "log_lines", "webhook"]

QUEUED = "workflow_job/queued-self-hosted.json"  # labels [self-hosted, k8s]
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def _serves_k8s(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")


def deliver(webhook: Webhook, delivery_id: str) -> Any:
    return webhook.post(payload_bytes(QUEUED), **{"X-GitHub-Delivery": delivery_id})


def recorded(stack: Any, delivery_id: str) -> dict[str, Any] | None:
    item = stack.boto("dynamodb").get_item(
        TableName=stack.deployment.state_table, ConsistentRead=True,
        Key={"pk": {"S": f"delivery#{delivery_id}"}, "sk": {"S": "enqueued"}}).get("Item")
    return dict(item) if item else None


def test_a_redelivered_delivery_is_answered_200_and_not_enqueued_again(
        webhook: Webhook, stack: Any, log_lines: list[str]) -> None:
    first = deliver(webhook, "d-1")
    again = deliver(webhook, "d-1")

    assert first.status_code == 201
    assert again.status_code == 200
    assert body_of(again) == {"message": "duplicate", "reason": "delivery d-1 already enqueued"}
    assert len(webhook.queued()) == 1
    outcomes = [json.loads(line).get("outcome") for line in log_lines]
    assert outcomes.count("duplicate") == 1


def test_the_delivery_is_recorded_for_a_day_after_it_is_enqueued(
        webhook: Webhook, stack: Any) -> None:
    before = time.time()
    assert deliver(webhook, "d-2").status_code == 201

    item = recorded(stack, "d-2")
    assert item is not None
    assert before + DAY - 5 <= int(item["expiresAt"]["N"]) <= time.time() + DAY + 5


def test_other_deliveries_of_the_same_job_are_enqueued(webhook: Webhook) -> None:
    assert deliver(webhook, "d-3").status_code == 201
    assert deliver(webhook, "d-4").status_code == 201
    assert len(webhook.queued()) == 2


def test_a_delivery_without_an_id_is_enqueued_without_the_table(
        webhook: Webhook, stack: Any) -> None:
    stack.aws_faults.reset()
    body = payload_bytes(QUEUED)
    unnamed = {k: v for k, v in headers(body, webhook.secret).items()
               if k != "X-GitHub-Delivery"}
    response = webhook.client.http.post("/webhook", body=body, headers=unnamed)

    assert response.status_code == 201
    assert stack.aws_faults.count("dynamodb") == 0


def test_deliveries_not_enqueued_are_not_recorded(webhook: Webhook, stack: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "")  # k8s is no longer served: 202
    assert deliver(webhook, "d-5").status_code == 202
    assert recorded(stack, "d-5") is None


def test_when_the_lookup_fails_the_delivery_is_enqueued_with_a_warning(
        webhook: Webhook, stack: Any, log_lines: list[str]) -> None:
    assert deliver(webhook, "d-6").status_code == 201
    stack.aws_faults.fail_next("dynamodb", "GetItem", "ThrottlingException", times=5)

    again = deliver(webhook, "d-6")

    assert again.status_code == 201  # a duplicate is better than a lost job
    assert len(webhook.queued()) == 2
    warnings = [json.loads(line) for line in log_lines if '"WARNING"' in line]
    assert any(w["message"] == "delivery record unavailable; enqueued anyway"
               for w in warnings)


def test_when_the_record_cannot_be_written_the_job_is_still_enqueued(
        webhook: Webhook, stack: Any, log_lines: list[str]) -> None:
    stack.aws_faults.fail_next("dynamodb", "PutItem", "InternalServerError", status=500,
                               times=5)

    response = deliver(webhook, "d-7")

    assert response.status_code == 201
    assert len(webhook.queued()) == 1
    assert recorded(stack, "d-7") is None
    assert any("delivery not recorded" in line for line in log_lines)


def test_when_the_enqueue_fails_the_delivery_is_not_recorded(
        webhook: Webhook, stack: Any) -> None:
    stack.aws_faults.fail_next("sqs", "SendMessage", "InternalError", status=500, times=5)
    assert deliver(webhook, "d-8").status_code == 503

    assert recorded(stack, "d-8") is None
    assert deliver(webhook, "d-8").status_code == 201  # GitHub's redelivery goes through
