"""The webhook: verify a GitHub delivery, and put each queued job this deployment serves on the
build queue.

Only validation and one SQS call happen here, never GitHub or EC2: GitHub counts a delivery as
failed after 10 s. The order is fixed by what each step may cost: the size is checked before the
HMAC runs over the body, and the signature before the body is parsed. A rejected delivery is
logged by its delivery id; never its signature, its body or the secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib import logs, metrics
from chalicelib.aws.sqs import BuildQueue
from chalicelib.aws.state import StateTable
from chalicelib.errors import ConfigError, GhrError, PermanentError, RetryableError
from chalicelib.messages import JobMessage
from chalicelib.rules import signature as webhook_signature
from chalicelib.rules.matching import choose
from chalicelib.rules.webhook_payload import (
    PayloadError,
    parse_payload,
    queued_job,
    repository_allowed,
)
from chalicelib.runner_configs import RunnerConfig, RunnerConfigs, single
from chalicelib.services import job_metrics
from chalicelib.services.delivery_record import already_enqueued, record_enqueued
from chalicelib.services.webhook_secret import WebhookSecrets
from chalicelib.settings import Settings

DELIVERY_METRIC = "WebhookDeliveries"
_MAX_HEADER_ECHO = 100
_MAX_REASON = 500

if TYPE_CHECKING:
    from chalicelib.services.rerun import Reruns

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class WebhookResult:
    """The HTTP answer to a delivery: status and JSON body."""

    status: int
    body: str


@dataclass(frozen=True)
class WebhookDeps:
    """What the webhook works with (built by `wiring.webhook`)."""

    settings: Settings
    secrets: WebhookSecrets
    queue: BuildQueue
    # Deliveries enqueued (REFERENCE.md §7); quick calls, like the queue's.
    state: StateTable
    # Re-runs of interrupted jobs (§9); None when ENABLE_SPOT_INTERRUPTION_RERUN is off.
    reruns: Reruns | None = None
    # The runner configurations jobs are routed to (§6); None: the one of `settings`.
    configs: RunnerConfigs | None = None


@dataclass(frozen=True)
class _Delivery:
    """What the headers say about a delivery, trimmed so that none can flood a log line."""

    delivery_id: str | None
    event: str | None
    signature: str | None
    content_type: str


def _read_headers(headers: Mapping[str, str]) -> _Delivery:
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}

    def short(name: str) -> str | None:
        value = lowered.get(name)
        return value[:_MAX_HEADER_ECHO] if value is not None else None

    return _Delivery(
        delivery_id=short("x-github-delivery"),
        event=short("x-github-event"),
        signature=lowered.get("x-hub-signature-256"),
        content_type=lowered.get("content-type", "application/json"),
    )


def _answer(status: int, outcome: str, message: str, started: float,
            reason: str | None = None, response: Mapping[str, Any] | None = None,
            **fields: Any) -> WebhookResult:
    """Log the outcome once with `fields`, count it, and build the response."""
    if reason is not None and len(reason) > _MAX_REASON:
        reason = reason[:_MAX_REASON] + "..."
    body: dict[str, Any] = {"message": message, **(response or {})}
    if reason is not None:
        body["reason"] = reason
    metrics.put(DELIVERY_METRIC, 1, Outcome=outcome)
    level = log.info if status < 400 else log.warning if status < 500 else log.error
    level("webhook delivery", outcome=outcome, status=status, reason=reason,
          duration_ms=round((time.monotonic() - started) * 1000, 1), **fields)
    return WebhookResult(status=status, body=json.dumps(body))


def _authentic(secrets: WebhookSecrets, body: bytes, signature: str) -> bool:
    """Verify against the cached secrets; after a mismatch, once against freshly read ones."""
    if webhook_signature.verify(secrets.get(), body, signature):
        return True
    # The secret may have been rotated since it was cached.
    return secrets.refresh() and webhook_signature.verify(secrets.get(), body, signature)


def misconfigured(headers: Mapping[str, str], error: ConfigError) -> WebhookResult:
    """The answer to a delivery when the webhook's configuration is bad: a logged 500."""
    started = time.monotonic()
    delivery = _read_headers(headers)
    logs.bind(delivery_id=delivery.delivery_id, github_event=delivery.event)
    return _answer(500, "config_error", "configuration error", started, problems=error.problems)


def unavailable(headers: Mapping[str, str], error: GhrError) -> WebhookResult:
    """The answer to a delivery when the runner configurations (§6) could not be read (SSM
    failed, or refused the read): a logged 503, which GitHub's redelivery may turn into a 201."""
    started = time.monotonic()
    delivery = _read_headers(headers)
    logs.bind(delivery_id=delivery.delivery_id, github_event=delivery.event)
    return _answer(503, "config_unavailable", "try again later", started, error=str(error))


def handle_delivery(headers: Mapping[str, str], raw_body: bytes | str,
                    deps: WebhookDeps) -> WebhookResult:
    """Answer one GitHub webhook delivery (docs/REFERENCE.md §1: 2xx, 401, 400, 413, 5xx)."""
    started = time.monotonic()
    delivery = _read_headers(headers)
    logs.bind(delivery_id=delivery.delivery_id, github_event=delivery.event)
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body or b"")
    settings = deps.settings
    if len(body) > settings.webhook_max_body_bytes:
        return _answer(413, "too_large", "payload too large", started,
                       reason=f"over {settings.webhook_max_body_bytes} bytes", size=len(body))
    if delivery.signature is None:
        return _answer(401, "unauthorized", "unauthorized", started, reason="missing signature")
    if not webhook_signature.is_well_formed(delivery.signature):
        return _answer(401, "unauthorized", "unauthorized", started,
                       reason="malformed signature")
    try:
        authentic = _authentic(deps.secrets, body, delivery.signature)
    except ConfigError as error:
        return _answer(500, "config_error", "configuration error", started,
                       problems=error.problems)
    except RetryableError as error:
        return _answer(503, "secret_unavailable", "try again later", started, error=str(error))
    if not authentic:
        return _answer(401, "unauthorized", "unauthorized", started, reason="signature mismatch")
    return _route(deps, delivery, body, started)


def _route(deps: WebhookDeps, delivery: _Delivery, body: bytes,
           started: float) -> WebhookResult:
    """Act on an authentic delivery by its event type and action."""
    if delivery.event == "ping":
        return _answer(200, "ping", "pong", started)
    if delivery.event is None:
        return _answer(400, "bad_request", "bad request", started,
                       reason="missing X-GitHub-Event header")
    if delivery.event != "workflow_job":
        return _answer(200, "ignored", "ignored", started, reason=f"event {delivery.event}")
    try:
        payload = parse_payload(body, delivery.content_type)
    except PayloadError as error:
        return _answer(400, "bad_request", "bad request", started, reason=str(error))
    action = payload.get("action")
    workflow_job = payload.get("workflow_job")
    if not isinstance(action, str) or not isinstance(workflow_job, dict):
        missing = [name for name, ok in (("action", isinstance(action, str)),
                                         ("workflow_job", isinstance(workflow_job, dict)))
                   if not ok]
        return _answer(400, "bad_request", "bad request", started,
                       reason="missing fields: " + ", ".join(missing))
    if action != "queued":
        timing = job_metrics.job_timing(action, workflow_job)
        if timing is not None:
            repository = payload.get("repository")
            full_name = repository.get("full_name") if isinstance(repository, dict) else None
            job_metrics.record(timing, full_name if isinstance(full_name, str) else None)
        if deps.reruns is not None:
            deps.reruns.observe(action, payload)
        return _answer(200, "ignored", "ignored", started, reason=f"action {action[:50]}")
    try:
        job = queued_job(payload)
    except PayloadError as error:
        return _answer(400, "bad_request", "bad request", started, reason=str(error))
    return _accept(deps, delivery, job, started)


def _accept(deps: WebhookDeps, delivery: _Delivery, job: JobMessage,
            started: float) -> WebhookResult:
    """Enqueue a queued job when this deployment serves its repository and labels."""
    settings = deps.settings
    fields: dict[str, Any] = {"job_id": job.id,
                              "repository": f"{job.repository_owner}/{job.repository_name}"}
    if not repository_allowed(job.repository_owner, job.repository_name,
                              settings.repository_allow_list):
        return _answer(202, "not_accepted", "not accepted", started,
                       reason="repository not allowed", **fields)
    configs = deps.configs or single(settings)
    config = choose_config(configs, job)
    if config is None:
        labels = list(job.labels or ())
        return _answer(202, "not_accepted", "not accepted", started,
                       reason=f"no runner matches labels {labels}" if not configs.from_list
                       else f"no runner configuration matches labels {labels}", **fields)
    if configs.from_list:
        # The message names its configuration; scale-up launches with that one's settings.
        job = replace(job, runner_config=config.id)
        fields["runner_config"] = config.id
    delivery_id = delivery.delivery_id
    if delivery_id and already_enqueued(deps.state, delivery_id, time.time()):
        return _answer(200, "duplicate", "duplicate", started,
                       reason=f"delivery {delivery_id} already enqueued", **fields)
    try:
        message_id = deps.queue.send(job, delivery_id)
    except RetryableError as error:
        return _answer(503, "enqueue_failed", "could not enqueue", started, error=str(error),
                       **fields)
    except PermanentError as error:
        return _answer(500, "enqueue_failed", "could not enqueue", started, error=str(error),
                       **fields)
    if delivery_id:
        record_enqueued(deps.state, delivery_id, message_id, time.time())
    return _answer(201, "accepted", "accepted", started, message_id=message_id,
                   response={"jobId": job.id}, **fields)


def choose_config(configs: RunnerConfigs, job: JobMessage) -> RunnerConfig | None:
    """The configuration a queued job goes to (rules/matching.py), among those whose
    repository allow-list lets its repository in; None when none takes it."""
    eligible = [c for c in configs.configs if repository_allowed(
        job.repository_owner, job.repository_name, c.settings.repository_allow_list)]
    position = choose(job.labels or (), [c.matcher for c in eligible])
    return None if position is None else eligible[position]
