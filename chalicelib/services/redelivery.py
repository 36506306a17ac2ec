"""Redeliver the failed webhook deliveries of queued jobs (RELIABILITY R-WH-09).

GitHub never redelivers a failed delivery by itself. A `workflow_job` "queued" event the webhook
did not take (a cold start past GitHub's 10 s, the queue throttled, a deploy in progress) leaves
its job waiting for a runner that is never launched. With ENABLE_WEBHOOK_REDELIVERY, scale-down
reads the App webhook's deliveries of the last WINDOW_MINUTES and asks GitHub to redeliver each
queued event that has no successful delivery and whose last failure may pass on another try (no
answer, 5xx, 429), MAX_REDELIVERIES times at most and MAX_PER_RUN events a run. A redelivery goes
through the webhook like the original (signature, allow-list, queue), and scale-up's queued check
drops a job that found a runner meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib import metrics
from chalicelib.errors import GhrError
from chalicelib.github.deliveries import Delivery, WebhookDeliveries
from chalicelib.logs import get_logger

log = get_logger(__name__)

# Three scale-down runs at the default five minutes see a failure, and the outcome of the
# redeliveries the earlier ones asked for.
WINDOW_MINUTES = 15
MAX_REDELIVERIES = 3
# A bound on one run's redeliveries, so that a webhook down for long is recovered at a pace
# GitHub's limits on the App allow.
MAX_PER_RUN = 50


@dataclass(frozen=True)
class RedeliveryPlan:
    """The attempts to redeliver (one per event), and the events given up on."""

    redeliver: tuple[int, ...]
    given_up: tuple[str, ...]


def transient(status_code: int) -> bool:
    """Whether a delivery's answer may change on another try: none at all (GitHub's timeout), a
    5xx or a 429. A 4xx (bad signature, malformed, too large) would only be refused again."""
    return status_code == 0 or status_code == 429 or status_code >= 500


def plan_redeliveries(deliveries: Sequence[Delivery], max_redeliveries: int = MAX_REDELIVERIES,
                      max_per_run: int = MAX_PER_RUN) -> RedeliveryPlan:
    """Which queued-job events to redeliver: those without a successful attempt whose newest
    attempt failed transiently, through that attempt, unless redelivered `max_redeliveries`
    times already; the oldest `max_per_run` first."""
    by_event: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        if delivery.event == "workflow_job" and delivery.action == "queued":
            by_event.setdefault(delivery.guid, []).append(delivery)
    redeliver: list[Delivery] = []
    given_up: list[str] = []
    for guid, attempts in by_event.items():
        newest = max(attempts, key=lambda a: (a.delivered_at, a.id))
        if any(a.succeeded for a in attempts) or not transient(newest.status_code):
            continue
        if sum(a.redelivery for a in attempts) >= max_redeliveries:
            given_up.append(guid)
            continue
        redeliver.append(newest)
    oldest_first = sorted(redeliver, key=lambda a: (a.delivered_at, a.id))[:max_per_run]
    return RedeliveryPlan(tuple(a.id for a in oldest_first), tuple(sorted(given_up)))


def redeliver_failed_jobs(deliveries: WebhookDeliveries, now: datetime) -> RedeliveryPlan:
    """Redeliver the queued-job events of the window that never reached the webhook; the plan,
    with the redeliveries GitHub accepted."""
    since = (now - timedelta(minutes=WINDOW_MINUTES)).timestamp()
    recent = deliveries.since(since)
    plan = plan_redeliveries(recent)
    for guid in plan.given_up:
        log.error("webhook delivery given up", guid=guid, redeliveries=MAX_REDELIVERIES)
    asked: list[int] = []
    for delivery_id in plan.redeliver:
        try:
            deliveries.redeliver(delivery_id)
        except GhrError as error:
            # One delivery GitHub will not redeliver (gone, say) does not stop the others.
            log.warning("webhook redelivery refused", delivery_id=delivery_id, error=str(error))
            continue
        asked.append(delivery_id)
    log.info("webhook redelivery", deliveries=len(recent), redelivered=asked,
             refused=len(plan.redeliver) - len(asked), given_up=len(plan.given_up))
    return replace(plan, redeliver=tuple(asked))


def redelivery_step(deliveries: WebhookDeliveries, now: datetime) -> None:
    """Scale-down's optional redelivery step: best effort, never a failed run."""
    try:
        plan = redeliver_failed_jobs(deliveries, now)
    except GhrError as error:
        log.error("webhook redelivery failed", error=str(error))
        metrics.put("WebhookRedeliveryFailed", 1)
        return
    metrics.put("WebhooksRedelivered", len(plan.redeliver))
