"""Queue-time and run-time metrics from `in_progress` and `completed` deliveries (issue 7 §5),
read from the Embedded Metric Format lines the webhook prints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from webhook_support import Webhook, client, log_lines, payload, webhook

__all__ = ["client", "log_lines", "webhook"]


def emf(output: str) -> list[dict[str, Any]]:
    """The EMF documents in captured stdout."""
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The documents that carry metric `name`."""
    return [d for d in documents if name in d]


def test_in_progress_reports_time_from_queued_to_started_by_label_set(
        webhook: Webhook, capsys: pytest.CaptureFixture[str], log_lines: list[str]) -> None:
    # created_at 03:31:29, started_at 03:31:36, runner "GitHub Actions 6".
    assert webhook.post_fixture("workflow_job/in_progress-user-repo.json").status_code == 200
    [document] = metric(emf(capsys.readouterr().out), "JobQueuedSeconds")
    assert document["JobQueuedSeconds"] == 7.0
    assert document["Labels"] == "ubuntu-latest"
    assert document["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "JobQueuedSeconds", "Unit": "Seconds"}]
    [timing] = [json.loads(line) for line in log_lines if '"job timing"' in line]
    assert timing["runner_name"] == "GitHub Actions 6"
    assert timing["queued_seconds"] == 7.0


def test_completed_reports_run_time_by_label_set(
        webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    # started_at 10:34:58, completed_at 10:38:16.
    assert webhook.post_fixture("workflow_job/completed-success.json").status_code == 200
    documents = emf(capsys.readouterr().out)
    [document] = metric(documents, "JobRunSeconds")
    assert (document["JobRunSeconds"], document["Labels"]) == (198.0, "ubuntu-latest")
    assert metric(documents, "JobQueuedSeconds") == []


def test_label_set_dimension_is_case_and_order_insensitive(
        webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    event = payload("workflow_job/in_progress-user-repo.json")
    event["workflow_job"]["labels"] = ["Linux", "self-hosted", "linux"]
    assert webhook.post(json.dumps(event).encode()).status_code == 200
    [document] = metric(emf(capsys.readouterr().out), "JobQueuedSeconds")
    assert document["Labels"] == "linux,self-hosted"


def test_completed_without_a_runner_reports_no_run_time(
        webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    # A job cancelled while queued completes without a runner.
    event = payload("workflow_job/completed-success.json")
    event["workflow_job"].update(runner_name=None, runner_id=None, conclusion="cancelled")
    assert webhook.post(json.dumps(event).encode()).status_code == 200
    assert metric(emf(capsys.readouterr().out), "JobRunSeconds") == []


def test_waiting_and_queued_report_no_timing(webhook: Webhook,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert webhook.post_fixture("workflow_job/waiting.json").status_code == 200
    assert webhook.post_fixture("workflow_job/queued.json").status_code == 202
    documents = emf(capsys.readouterr().out)
    assert metric(documents, "JobQueuedSeconds") == metric(documents, "JobRunSeconds") == []


def test_every_delivery_is_counted_by_outcome(webhook: Webhook,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    webhook.post(b"{}", secret="wrong")
    webhook.post_fixture("workflow_job/queued.json")
    outcomes = [d["Outcome"] for d in metric(emf(capsys.readouterr().out), "WebhookDeliveries")]
    assert outcomes == ["unauthorized", "not_accepted"]
