"""Webhook routing, matching and enqueueing, through chalice's test client against devstack.

Issue 7 "Done when": valid queued job enqueued with the exact message; non-JSON body; ping;
other event types; non-queued actions; unmatched labels; allow-list; enqueue failure.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from webhook_support import Webhook, body_of, client, payload, payload_bytes, webhook

__all__ = ["client", "webhook"]

SELF_HOSTED = "workflow_job/queued-self-hosted.json"  # labels [self-hosted, k8s], a User's repo
HOSTED = "workflow_job/queued.json"                   # labels [ubuntu-latest], an Organization


def test_webhook_when_job_is_queued_and_matched_then_exact_contract_message_is_enqueued(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    started = time.monotonic()
    response = webhook.post(payload_bytes(SELF_HOSTED), **{"X-GitHub-Delivery": "d-1"})
    assert time.monotonic() - started < 5  # GitHub allows 10 s
    assert response.status_code == 201
    assert body_of(response) == {"message": "accepted", "jobId": 12877621891}
    [message] = webhook.queued()
    assert json.loads(message["Body"]) == {
        "id": 12877621891,
        "eventType": "workflow_job",
        "repositoryName": "elastic-machines-testing",
        "repositoryOwner": "lineville",
        "installationId": 23154469,
        "repoOwnerType": "User",
        "labels": ["self-hosted", "k8s"],
    }
    assert message["MessageAttributes"]["deliveryId"]["StringValue"] == "d-1"


def test_webhook_when_org_job_is_queued_then_message_carries_org_owner_type(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "ubuntu-latest")
    assert webhook.post_fixture(HOSTED).status_code == 201
    [message] = webhook.queued()
    body = json.loads(message["Body"])
    assert (body["id"], body["repositoryOwner"], body["repositoryName"]) == (
        289782451, "Octocoders", "Hello-World")
    assert (body["installationId"], body["repoOwnerType"]) == (3456996, "Organization")


def test_webhook_when_installation_is_absent_then_installation_id_is_zero(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    event = payload(SELF_HOSTED)
    del event["installation"]
    assert webhook.post(json.dumps(event).encode()).status_code == 201
    [message] = webhook.queued()
    assert json.loads(message["Body"])["installationId"] == 0


def test_webhook_matches_labels_case_insensitively(webhook: Webhook,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "K8S")
    event = payload(SELF_HOSTED)
    event["workflow_job"]["labels"] = ["Self-Hosted", "Linux", "X64", "k8s"]
    assert webhook.post(json.dumps(event).encode()).status_code == 201


def test_webhook_when_labels_are_not_all_served_then_202_not_accepted(
        webhook: Webhook) -> None:
    # Default runner labels are self-hosted, linux, x64: nothing serves "k8s" or "ubuntu-latest".
    for name in (SELF_HOSTED, HOSTED):
        response = webhook.post_fixture(name)
        assert response.status_code == 202
        assert body_of(response)["message"] == "not accepted"
        assert "no runner matches labels" in body_of(response)["reason"]
    assert webhook.queued() == []


def test_webhook_when_repository_is_not_on_allow_list_then_202_not_accepted(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    monkeypatch.setenv("REPOSITORY_ALLOW_LIST", '["acme/other-repo"]')
    response = webhook.post_fixture(SELF_HOSTED)
    assert response.status_code == 202
    assert body_of(response) == {"message": "not accepted", "reason": "repository not allowed"}
    assert webhook.queued() == []


def test_webhook_when_repository_is_on_allow_list_then_job_is_enqueued(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    monkeypatch.setenv("REPOSITORY_ALLOW_LIST",
                       '["acme/other-repo", "Lineville/Elastic-Machines-Testing"]')
    assert webhook.post_fixture(SELF_HOSTED).status_code == 201
    assert len(webhook.queued()) == 1


@pytest.mark.parametrize("name", ["ping/ping-repository.json", "ping/ping-repository-2.json",
                                  "ping/ping-organization.json"])
def test_webhook_when_ping_then_200(webhook: Webhook, name: str) -> None:
    response = webhook.post_fixture(name, event="ping")
    assert response.status_code == 200
    assert webhook.queued() == []


@pytest.mark.parametrize("event", ["push", "installation", "check_run", "workflow_run"])
def test_webhook_when_other_event_type_then_200_ignored(webhook: Webhook, event: str) -> None:
    response = webhook.post(b'{"action": "created"}', event=event)
    assert response.status_code == 200
    assert body_of(response) == {"message": "ignored", "reason": f"event {event}"}
    assert webhook.queued() == []


@pytest.mark.parametrize("name", ["workflow_job/waiting.json", "workflow_job/in_progress.json",
                                  "workflow_job/in_progress-user-repo.json",
                                  "workflow_job/completed-success.json",
                                  "workflow_job/completed-failure.json"])
def test_webhook_when_action_is_not_queued_then_200_ignored(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s,ubuntu-latest")
    response = webhook.post_fixture(name)
    assert response.status_code == 200
    assert body_of(response) == {"message": "ignored",
                                 "reason": f"action {payload(name)['action']}"}
    assert webhook.queued() == []


def test_webhook_when_action_is_unknown_then_200_ignored(webhook: Webhook) -> None:
    event = payload(SELF_HOSTED)
    event["action"] = "some_future_action"
    response = webhook.post(json.dumps(event).encode())
    assert response.status_code == 200
    assert body_of(response)["reason"] == "action some_future_action"


def test_webhook_when_body_is_not_json_then_400(webhook: Webhook) -> None:
    response = webhook.post(b"{oops")
    assert response.status_code == 400
    assert body_of(response) == {"message": "bad request", "reason": "invalid JSON"}
    assert webhook.queued() == []


def test_webhook_when_body_is_json_but_not_an_object_then_400(webhook: Webhook) -> None:
    response = webhook.post(b"[1, 2]")
    assert response.status_code == 400
    assert body_of(response)["reason"] == "payload is not a JSON object"


@pytest.mark.parametrize(("remove", "reason"), [
    (("workflow_job",), "missing fields: workflow_job"),
    (("action",), "missing fields: action"),
    (("repository",), "missing fields: repository.name, repository.owner.login"),
    (("workflow_job", "id"), "missing fields: workflow_job.id"),
    (("workflow_job", "labels"), "missing fields: workflow_job.labels"),
    (("repository", "owner"), "missing fields: repository.owner.login"),
])
def test_webhook_when_queued_job_misses_fields_then_400_naming_them(
        webhook: Webhook, remove: tuple[str, ...], reason: str) -> None:
    event: dict[str, Any] = payload(SELF_HOSTED)
    *path, last = remove
    target = event
    for key in path:
        target = target[key]
    del target[last]
    response = webhook.post(json.dumps(event).encode())
    assert response.status_code == 400
    assert body_of(response)["reason"] == reason
    assert webhook.queued() == []


@pytest.mark.parametrize("labels", [["self-hosted"] * 101, ["x" * 257], "self-hosted",
                                    ["self-hosted", 7]])
def test_webhook_when_labels_exceed_limits_or_are_not_strings_then_400(
        webhook: Webhook, labels: Any) -> None:
    event = payload(SELF_HOSTED)
    event["workflow_job"]["labels"] = labels
    response = webhook.post(json.dumps(event).encode())
    assert response.status_code == 400
    assert body_of(response)["reason"].startswith("workflow_job.labels:")
    assert webhook.queued() == []


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("owner", "acme corp", "repository.owner.login: expected a GitHub name, got 'acme corp'"),
    ("name", "app\n", "repository.name: expected a GitHub name, got 'app\\n'"),
])
def test_webhook_when_a_name_is_not_one_scale_up_accepts_then_400_naming_it(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch, field: str, value: str,
        reason: str) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    event = payload(SELF_HOSTED)
    if field == "owner":
        event["repository"]["owner"]["login"] = value
    else:
        event["repository"]["name"] = value
    response = webhook.post(json.dumps(event).encode())
    assert response.status_code == 400
    assert body_of(response)["reason"] == reason
    assert webhook.queued() == []


def test_webhook_when_enqueue_fails_then_503_and_nothing_enqueued(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    stack.aws_faults.fail_next("sqs", "SendMessage", "InternalError", status=500, times=5)
    started = time.monotonic()
    response = webhook.post_fixture(SELF_HOSTED)
    assert time.monotonic() - started < 10  # a fast 5xx, within GitHub's delivery timeout
    assert response.status_code == 503
    assert body_of(response)["message"] == "could not enqueue"
    assert webhook.queued() == []


def test_webhook_when_queue_refuses_for_good_then_5xx(webhook: Webhook, stack: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    stack.aws_faults.fail_next("sqs", "SendMessage", "AccessDenied", status=403)
    response = webhook.post_fixture(SELF_HOSTED)
    assert response.status_code == 500
    assert webhook.queued() == []


def test_webhook_when_enqueue_fails_once_then_the_retry_enqueues_it(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    stack.aws_faults.fail_next("sqs", "SendMessage", "InternalError", status=500, times=1)
    assert webhook.post_fixture(SELF_HOSTED).status_code == 201
    assert len(webhook.queued()) == 1
