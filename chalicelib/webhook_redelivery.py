"""Redeliver the failed webhook deliveries of queued jobs (RELIABILITY R-WH-09).

GitHub never redelivers a failed delivery by itself. A `workflow_job` "queued" event the webhook
did not take (a cold start past GitHub's 10 s, the queue throttled, a deploy in progress) leaves
its job waiting for a runner that is never launched. With ENABLE_WEBHOOK_REDELIVERY, scale-down
reads the App webhook's deliveries of the last WINDOW_MINUTES and asks GitHub to redeliver each
queued event that has no successful delivery, MAX_REDELIVERIES times at most. A redelivery goes
through the webhook like the original (signature, allow-list, queue), and scale-up's queued check
drops a job that found a runner meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.github_deliveries import WebhookDeliveries
from chalicelib.logs import get_logger
from chalicelib.models import Delivery

log = get_logger(__name__)

# Three scale-down runs at the default five minutes see a failure, and the outcome of the
# redeliveries the earlier ones asked for.
WINDOW_MINUTES = 15
MAX_REDELIVERIES = 3


@dataclass(frozen=True)
class RedeliveryPlan:
    """The attempts to redeliver (one per event), and the events given up on."""

    redeliver: tuple[int, ...]
    given_up: tuple[str, ...]


def plan_redeliveries(deliveries: Sequence[Delivery],
                      max_redeliveries: int = MAX_REDELIVERIES) -> RedeliveryPlan:
    """Which queued-job events to redeliver: those without a successful attempt, through their
    newest attempt, unless redelivered `max_redeliveries` times already."""
    by_event: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        if delivery.event == "workflow_job" and delivery.action == "queued":
            by_event.setdefault(delivery.guid, []).append(delivery)
    redeliver: list[int] = []
    given_up: list[str] = []
    for guid, attempts in by_event.items():
        if any(a.succeeded for a in attempts):
            continue
        if sum(a.redelivery for a in attempts) >= max_redeliveries:
            given_up.append(guid)
            continue
        redeliver.append(max(attempts, key=lambda a: (a.delivered_at, a.id)).id)
    return RedeliveryPlan(tuple(sorted(redeliver)), tuple(sorted(given_up)))


def redeliver_failed_jobs(deliveries: WebhookDeliveries, now: datetime) -> RedeliveryPlan:
    """Redeliver the queued-job events of the window that never reached the webhook."""
    since = (now - timedelta(minutes=WINDOW_MINUTES)).timestamp()
    recent = deliveries.since(since)
    plan = plan_redeliveries(recent)
    for guid in plan.given_up:
        log.error("webhook delivery given up", guid=guid, redeliveries=MAX_REDELIVERIES)
    for delivery_id in plan.redeliver:
        deliveries.redeliver(delivery_id)
    log.info("webhook redelivery", deliveries=len(recent), redelivered=list(plan.redeliver),
             given_up=len(plan.given_up))
    return plan
