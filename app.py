"""The Chalice app: entry points of docs/REFERENCE.md §1. Each parses its event, gets its
dependencies from `chalicelib.wiring` (its only caller), calls one service function and maps
the result."""

from __future__ import annotations

import os
from typing import Any

from chalice.app import Chalice, CloudWatchEvent, Response

from chalicelib import logs, metrics, wiring
from chalicelib.errors import ConfigError, GhrError, RetryableError
from chalicelib.rules.ec2_events import EVENT_PATTERN

app = Chalice(app_name="github-runners")
log = logs.get_logger(__name__)

# Chalice subscribes scale_up to a queue by name; infra/ creates that queue under the same name.
BUILD_QUEUE_NAME = os.environ.get("BUILD_QUEUE_NAME", "github-runners-queued-builds")
SCALE_DOWN_SCHEDULE = os.environ.get("SCALE_DOWN_SCHEDULE_EXPRESSION", "cron(*/5 * * * ? *)")
SYNC_SCHEDULE = os.environ.get("RUNNER_BINARIES_SYNC_SCHEDULE", "rate(1 hour)")


def _start(function: str, context: Any) -> float:
    """Bind the invocation's log context; return the seconds left before the function's timeout."""
    logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
    logs.clear()
    logs.bind(function=function, request_id=getattr(context, "aws_request_id", None))
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else 60.0


@app.on_sqs_message(queue=BUILD_QUEUE_NAME, batch_size=10)
def scale_up(event: Any) -> dict[str, list[dict[str, str]]]:
    """Launch runners for the queued jobs of a batch; return the records to retry."""
    from chalicelib.services.scale_up import handle_batch

    # An SQS event carries its Lambda context (app.lambda_context is set for HTTP only).
    remaining = _start("scale_up", getattr(event, "context", None))
    records = [record.to_dict() for record in event]
    try:
        failed = handle_batch(records, wiring.scale_up(), remaining_seconds=remaining)
    except ConfigError as error:
        # Nothing can be launched without configuration: keep every message for retry (DLQ).
        log.error("configuration error", problems=error.problems)
        failed = [r["messageId"] for r in records if r.get("messageId")]
    except Exception:
        # Never lose a batch to a bug: every message comes back, and Errors-style alarms see
        # the log line (R-Q-08).
        log.error("scale-up failed", exc_info=True)
        failed = [r["messageId"] for r in records if r.get("messageId")]
    metrics.flush(function="scale_up")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@app.schedule(SCALE_DOWN_SCHEDULE)
def scale_down(event: Any) -> None:
    """Deregister and terminate idle runners, clean up orphans, ghosts and stale tokens."""
    from chalicelib.services.scale_down import run_scale_down

    # A scheduled event carries its Lambda context (app.lambda_context is set for HTTP only).
    remaining = _start("scale_down", getattr(event, "context", None))
    try:
        report = run_scale_down(wiring.scale_down(), remaining_seconds=remaining)
    except ConfigError as error:
        # FI-23 / BI-20: nothing is decided under a bad configuration; the invocation fails.
        log.error("configuration error", problems=error.problems)
        raise
    finally:
        metrics.flush(function="scale_down")
    if not report.ok:
        # Per-runner failures only log; a whole step failing shows as a Lambda error (R-Q-08).
        raise RetryableError("scale-down incomplete: " + ", ".join(report.failed_steps))


@app.lambda_function()
def adjust_pool(event: dict[str, Any], context: Any) -> None:
    """Top up the pool of idle org runners to `event["poolSize"]`."""
    from chalicelib.services.pool import run_adjust_pool

    remaining = _start("adjust_pool", context)
    try:
        run_adjust_pool(event, wiring.adjust_pool(), remaining_seconds=remaining)
    except ConfigError as error:
        log.error("configuration error", problems=error.problems)
        raise
    finally:
        metrics.flush(function="adjust_pool")


@app.route("/webhook", methods=["POST"], content_types=["application/json",
                                                        "application/x-www-form-urlencoded"])
def webhook() -> Response:
    """Verify a GitHub `workflow_job` delivery and enqueue the queued job."""
    from chalicelib.services.webhook import handle_delivery, misconfigured, unavailable

    _start("webhook", app.lambda_context)
    request = app.current_request
    if request is None:  # Chalice sets it before calling a route's view
        raise RuntimeError("webhook invoked without a request")
    try:
        deps = wiring.webhook()
    except ConfigError as error:
        result = misconfigured(request.headers, error)
    except GhrError as error:  # the runner configurations' parameter could not be read
        result = unavailable(request.headers, error)
    else:
        result = handle_delivery(request.headers, request.raw_body, deps)
    metrics.flush(function="webhook")
    return Response(body=result.body, status_code=result.status,
                    headers={"Content-Type": "application/json"})


@app.schedule(SYNC_SCHEDULE)
def sync_runner_binaries(event: Any) -> None:
    """Cache the latest runner release in S3 so instances boot without GitHub downloads."""
    from chalicelib.services.runner_binaries import run_sync

    _start("sync_runner_binaries", getattr(event, "context", None))
    run_sync(wiring.sync_runner_binaries())
    metrics.flush(function="sync_runner_binaries")


@app.on_cw_event(EVENT_PATTERN)
def ec2_events(event: CloudWatchEvent) -> None:
    """Spot interruption warnings and runner instances ending: runners and tokens go at once."""
    from chalicelib.services.ec2_events import handle_event

    remaining = _start("ec2_events", getattr(event, "context", None))
    try:
        handle_event(event.to_dict(), wiring.ec2_events(), remaining_seconds=remaining)
    except ConfigError as error:
        log.error("configuration error", problems=error.problems)
        raise
    finally:
        metrics.flush(function="ec2_events")


class _AnyEvent(CloudWatchEvent):
    """EventBridge's event as chalice reads it, without failing on a missing key: a malformed
    event is logged and ignored by the service (§9), never an invocation error."""

    def _extract_attributes(self, event_dict: dict[str, Any]) -> None:
        data = event_dict if isinstance(event_dict, dict) else {}
        self.version, self.account, self.region = (str(data.get(k, "")) for k in (
            "version", "account", "region"))
        self.detail, self.detail_type = data.get("detail") or {}, str(data.get("detail-type"))
        self.source, self.time = str(data.get("source", "")), str(data.get("time", ""))
        self.event_id, self.resources = str(data.get("id", "")), data.get("resources") or []


ec2_events.event_class = _AnyEvent
