"""The webhook as API Gateway invokes it: base64 bodies, GitHub's form content type, and a
cold start that loads nothing the webhook does not need (RELIABILITY BI-12, R-WH-04)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.local import LambdaContext
from webhook_support import Webhook, client, headers, payload_bytes, webhook

from app import app
from chalicelib.rules.signature import sign

__all__ = ["client", "webhook"]

ROOT = Path(__file__).resolve().parents[2]
SELF_HOSTED = "workflow_job/queued-self-hosted.json"


def gateway_event(body: bytes, request_headers: dict[str, str],
                  base64_body: bool) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event for POST /webhook, as Lambda receives it."""
    return {
        "resource": "/webhook",
        "path": "/webhook",
        "httpMethod": "POST",
        "headers": request_headers,
        "multiValueQueryStringParameters": None,
        "queryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"httpMethod": "POST", "resourcePath": "/webhook",
                           "path": "/api/webhook", "stage": "api",
                           "requestId": str(uuid.uuid4())},
        "body": base64.b64encode(body).decode("ascii") if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
    }


@pytest.mark.parametrize("base64_body", [True, False])
def test_webhook_when_gateway_sends_body_base64_encoded_then_it_is_verified_decoded(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch, base64_body: bool) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    body = payload_bytes(SELF_HOSTED)
    event = gateway_event(body, headers(body, webhook.secret), base64_body)
    response = app(event, LambdaContext("api_handler", 256, max_runtime_ms=10_000))
    assert response["statusCode"] == 201, response
    [message] = webhook.queued()
    assert json.loads(message["Body"])["id"] == 12877621891


def test_webhook_when_delivery_is_form_encoded_then_payload_field_is_read(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_LABELS", "k8s")
    body = urlencode({"payload": payload_bytes(SELF_HOSTED).decode("utf-8")}).encode()
    response = webhook.post(body, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 201, response.body
    assert len(webhook.queued()) == 1


def test_webhook_when_form_body_has_no_payload_then_400(webhook: Webhook) -> None:
    response = webhook.post(b"other=1", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


COLD_START = """
import json, sys, uuid
from chalice.local import LambdaContext
sys.path.insert(0, {root!r})
from app import app
event = json.loads(sys.stdin.read())
response = app(event, LambdaContext("api_handler", 256, max_runtime_ms=10_000))
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"jwt", "cryptography", "requests"}})
print(json.dumps({{"status": response["statusCode"], "heavy": heavy}}))
"""


def test_webhook_cold_start_loads_no_jwt_cryptography_or_requests(
        webhook: Webhook, env: dict[str, str]) -> None:
    body = payload_bytes("ping/ping-organization.json")
    event = gateway_event(body, headers(body, webhook.secret, event="ping"), False)
    result = subprocess.run(
        [sys.executable, "-c", COLD_START.format(root=str(ROOT))],
        input=json.dumps(event), capture_output=True, text=True, timeout=60,
        env={**os.environ, **env}, cwd=ROOT, check=True,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 200, "heavy": []}


def test_webhook_sign_helper_is_what_the_gateway_checks(webhook: Webhook) -> None:
    # Guards the helpers above: an event signed for another body is refused.
    body = payload_bytes(SELF_HOSTED)
    request_headers = headers(body, webhook.secret)
    request_headers["X-Hub-Signature-256"] = sign(webhook.secret, body + b" ")
    response = app(gateway_event(body, request_headers, True),
                   LambdaContext("api_handler", 256, max_runtime_ms=10_000))
    assert response["statusCode"] == 401
