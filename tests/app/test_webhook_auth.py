"""Webhook authenticity and input limits, through chalice's test client against devstack.

Issue 7 "Done when": forged, missing and other-secret signatures, rotated secrets, oversized
body; RELIABILITY BI-07..BI-13, R-WH-01..03, BI-22.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from webhook_support import Webhook, body_of, client, log_lines, payload_bytes, webhook

from chalicelib.rules.signature import sign

__all__ = ["client", "log_lines", "webhook"]

QUEUED = "workflow_job/queued-self-hosted.json"


@pytest.fixture(autouse=True)
def _serves_k8s(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The queued fixture asks for [self-hosted, k8s]; with this the deployment serves it.
    monkeypatch.setenv("RUNNER_LABELS", "k8s")


def test_webhook_when_signature_is_valid_then_job_is_enqueued(webhook: Webhook) -> None:
    response = webhook.post_fixture(QUEUED)
    assert response.status_code == 201, response.body
    assert len(webhook.queued()) == 1


def test_webhook_when_signature_is_missing_then_401_and_nothing_enqueued(
        webhook: Webhook) -> None:
    response = webhook.post(payload_bytes(QUEUED), secret=None)
    assert response.status_code == 401
    assert body_of(response)["reason"] == "missing signature"
    assert webhook.queued() == []


def test_webhook_when_only_legacy_sha1_signature_then_401(webhook: Webhook) -> None:
    body = payload_bytes(QUEUED)
    response = webhook.post(body, secret=None, **{"X-Hub-Signature": "sha1=" + "ab" * 20})
    assert response.status_code == 401
    assert webhook.queued() == []


def test_webhook_when_signature_is_forged_then_401_and_nothing_enqueued(
        webhook: Webhook) -> None:
    body = payload_bytes(QUEUED)
    forged = "sha256=" + "0" * 64
    response = webhook.post(body, secret=None, **{"X-Hub-Signature-256": forged})
    assert response.status_code == 401
    assert body_of(response)["reason"] == "signature mismatch"
    assert webhook.queued() == []


def test_webhook_when_signed_with_another_secret_then_401(webhook: Webhook) -> None:
    response = webhook.post(payload_bytes(QUEUED), secret="not-the-deployment-secret")
    assert response.status_code == 401
    assert webhook.queued() == []


def test_webhook_when_one_byte_of_body_is_changed_then_401(webhook: Webhook) -> None:
    body = payload_bytes(QUEUED)
    signature = sign(webhook.secret, body)
    tampered = body.replace(b"12877621891", b"12877621892", 1)
    response = webhook.post(tampered, secret=None, **{"X-Hub-Signature-256": signature})
    assert response.status_code == 401
    assert webhook.queued() == []


def test_webhook_when_body_is_reserialised_under_original_signature_then_401(
        webhook: Webhook) -> None:
    body = payload_bytes(QUEUED)
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    response = webhook.post(compact, secret=None,
                            **{"X-Hub-Signature-256": sign(webhook.secret, body)})
    assert response.status_code == 401


@pytest.mark.parametrize("signature", [
    "",
    "sha256=",
    "sha256=xyz",
    "sha1=" + "ab" * 20,
    "sha256=" + "ab" * 31 + "a",
    "sha256=" + "g" * 64,
    "sha256=" + "a" * 10_000,
])
def test_webhook_when_signature_is_malformed_then_401_never_500(webhook: Webhook,
                                                                signature: str) -> None:
    response = webhook.post(payload_bytes(QUEUED), secret=None,
                            **{"X-Hub-Signature-256": signature})
    assert response.status_code == 401
    assert webhook.queued() == []


def put_secret(stack: Any, name: str, value: str) -> None:
    stack.boto("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def test_webhook_secret_with_commas_and_spaces_is_one_secret_taken_exactly(
        webhook: Webhook, stack: Any) -> None:
    secret = " first-part-of-it, second-part-of-it "
    put_secret(stack, stack.deployment.webhook_secret_parameter, secret)
    assert webhook.post(payload_bytes(QUEUED), secret=secret).status_code == 201
    for piece in ("first-part-of-it", " second-part-of-it ", secret.strip()):
        assert webhook.post(payload_bytes(QUEUED), secret=piece).status_code == 401
    assert len(webhook.queued()) == 1


def test_webhook_when_secret_is_rotated_then_current_and_previous_are_accepted(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    previous_name = stack.deployment.webhook_secret_parameter + "_previous"
    old = webhook.secret
    put_secret(stack, previous_name, old)
    put_secret(stack, stack.deployment.webhook_secret_parameter, "the-new-secret-value")
    monkeypatch.setenv("PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME", previous_name)
    stack.aws_faults.reset()

    assert webhook.post(payload_bytes(QUEUED), secret=old).status_code == 201
    assert webhook.post(payload_bytes(QUEUED), secret="the-new-secret-value").status_code == 201
    assert webhook.post(payload_bytes(QUEUED), secret="a-third-secret-value").status_code == 401
    assert len(webhook.queued()) == 2
    # Both parameters in one call; the mismatch does not re-read them within the minute.
    assert stack.aws_faults.count("ssm", "GetParameters") == 1
    assert stack.aws_faults.count("ssm", "GetParameter") == 0


def test_webhook_when_previous_secret_parameter_is_gone_then_current_alone_is_accepted(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME",
                       stack.deployment.webhook_secret_parameter + "_previous")
    assert webhook.post_fixture(QUEUED).status_code == 201


@pytest.mark.parametrize("previous", [False, True])
def test_webhook_when_a_secret_is_shorter_than_16_characters_then_500_without_its_value(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch, log_lines: list[str],
        previous: bool) -> None:
    name = stack.deployment.webhook_secret_parameter
    if previous:
        name += "_previous"
        monkeypatch.setenv("PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME", name)
    put_secret(stack, name, "fifteen-chars-x")
    response = webhook.post(payload_bytes(QUEUED), secret="fifteen-chars-x")
    assert response.status_code == 500
    text = "\n".join(log_lines)
    assert name in text and "16" in text
    assert "fifteen-chars-x" not in text
    assert webhook.queued() == []


def test_webhook_reads_secret_once_per_container(webhook: Webhook, stack: Any) -> None:
    for _ in range(3):
        assert webhook.post_fixture(QUEUED).status_code == 201
    assert stack.aws_faults.count("ssm", "GetParameter") == 1


def test_webhook_when_body_is_over_limit_then_413_before_signature_check(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", "4096")
    body = payload_bytes(QUEUED)
    assert len(body) > 4096
    response = webhook.post(body, secret=None)
    assert response.status_code == 413
    assert body_of(response)["message"] == "payload too large"
    # Not even the secret was read: the HMAC never ran over the oversized body.
    assert stack.aws_faults.count("ssm", "GetParameter") == 0
    assert webhook.queued() == []


def test_webhook_when_body_is_at_limit_then_it_is_processed(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    body = payload_bytes(QUEUED)
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", str(len(body)))
    assert webhook.post(body).status_code == 201


def test_webhook_when_secret_parameter_is_missing_then_500_naming_it(
        webhook: Webhook, stack: Any, log_lines: list[str]) -> None:
    stack.boto("ssm").delete_parameter(Name=stack.deployment.webhook_secret_parameter)
    response = webhook.post_fixture(QUEUED)
    assert response.status_code == 500
    assert stack.deployment.webhook_secret_parameter in "\n".join(log_lines)
    assert webhook.queued() == []


def test_webhook_when_secret_read_is_throttled_then_503(webhook: Webhook, stack: Any) -> None:
    stack.aws_faults.fail_next("ssm", "GetParameter", "ThrottlingException", times=5,
                               status=400)
    response = webhook.post_fixture(QUEUED)
    assert response.status_code == 503
    assert webhook.queued() == []


def test_webhook_rejected_delivery_logs_no_signature_body_or_secret(
        webhook: Webhook, log_lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    body = payload_bytes(QUEUED)
    wrong = sign("another-secret", body)
    response = webhook.post(body, secret=None, **{"X-Hub-Signature-256": wrong,
                                                  "X-GitHub-Delivery": "delivery-42"})
    assert response.status_code == 401
    text = "\n".join(log_lines)
    assert "delivery-42" in text
    assert wrong.removeprefix("sha256=") not in text
    assert webhook.secret not in text
    assert "elastic-machines-testing" not in text  # nothing of the body
