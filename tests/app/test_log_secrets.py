"""No secret in any log, whatever the level of any logger (docs/REFERENCE.md §5.6).

Lambda's own log-level setting turns the root logger to DEBUG; botocore and urllib3 then print
request and response bodies, decrypted parameter values included. Here every logger is at DEBUG
while scale_up registers runners with a registration token and with a JIT configuration, and the
webhook takes a delivery; nothing secret may reach a log record, stdout or stderr.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up
from webhook_support import headers, payload_bytes

__all__ = ["scale_up"]


@pytest.fixture
def everything_at_debug() -> Iterator[None]:
    """Root and every logger known so far at DEBUG; their levels restored afterwards."""
    manager = logging.root.manager
    saved = {name: logger.level for name, logger in manager.loggerDict.items()
             if isinstance(logger, logging.Logger)}
    root_level = logging.root.level
    everything_to_debug()
    yield
    logging.root.setLevel(root_level)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def everything_to_debug() -> None:
    logging.root.setLevel(logging.DEBUG)
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(logging.DEBUG)


def secrets_of(harness: ScaleUpHarness) -> list[str]:
    """Every secret devstack handed out or holds: the App key (PEM lines and the parameter's
    base64), installation tokens, registration tokens, JIT configs and what is inside them, and
    the webhook secret."""
    stack = harness.stack
    pem = stack.github.private_key_pem
    found = [line for line in pem.splitlines() if len(line) > 20 and "PRIVATE KEY" not in line]
    found.append(base64.b64encode(pem.encode()).decode())
    found.extend(stack.github.installation_tokens)
    found.extend(stack.github.scope_tokens)
    for instance in harness.instances():
        value = harness.token_value(instance["InstanceId"]) or ""
        found.append(value)
        if not value.startswith("--url"):
            found.extend(str(part) for part in json.loads(base64.b64decode(value)).values())
    found.append(stack.deployment.webhook_secret)
    return [secret for secret in found if secret]


def test_no_secret_in_logs_or_output_with_every_logger_at_debug(
        scale_up: ScaleUpHarness, everything_at_debug: None, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    stack = scale_up.stack
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", LOG_LEVEL="DEBUG")

    registration = scale_up.invoke(job_body(stack.github.add_job(ORG, "app", ["self-hosted"])))
    scale_up.configure(ENABLE_EPHEMERAL_RUNNERS="true")
    everything_to_debug()  # the loggers the first run created too
    jit = scale_up.invoke(job_body(stack.github.add_job(ORG, "app", ["self-hosted"])))
    everything_to_debug()
    body = payload_bytes("workflow_job/queued.json")
    delivery = scale_up.client.http.post(
        "/webhook", headers=headers(body, stack.deployment.webhook_secret), body=body)

    captured = capfd.readouterr()
    text = "\n".join([caplog.text, *(_record_text(r) for r in caplog.records),
                      json.dumps(registration.log), json.dumps(jit.log),
                      captured.out, captured.err])
    assert registration.failures == [] and jit.failures == []
    assert delivery.status_code < 300
    values = [scale_up.token_value(i["InstanceId"]) or "" for i in scale_up.instances()]
    assert any(v.startswith("--url") for v in values)  # a registration token was written
    assert any(v and not v.startswith("--url") for v in values)  # and a JIT config
    leaked = [secret[:6] + "..." for secret in secrets_of(scale_up) if secret in text]
    assert leaked == []


def _record_text(record: logging.LogRecord) -> str:
    fields: Any = getattr(record, "fields", {})
    return record.getMessage() + json.dumps(fields, default=str)
