"""Webhook deliveries enqueued once (docs/REFERENCE.md §7): the state table remembers each
`X-GitHub-Delivery` id the webhook put on the build queue, for a day.

GitHub redelivers a delivery it counted as failed (no answer within 10 s, a 5xx), and an
operator or `ENABLE_WEBHOOK_REDELIVERY` may redeliver one that had in fact been enqueued: the
id is looked up before enqueueing and recorded after. The table only ever prevents a duplicate:
when it cannot answer or cannot record, the delivery is enqueued anyway (a duplicate message is
better than a lost job), with a warning.
"""

from __future__ import annotations

from chalicelib.aws.state import TTL_ATTRIBUTE, StateTable
from chalicelib.errors import GhrError
from chalicelib.logs import get_logger

log = get_logger(__name__)

# GitHub keeps a delivery redeliverable for three days, but redeliveries come within minutes or
# hours (ENABLE_WEBHOOK_REDELIVERY looks back 15 minutes): a day keeps the table small.
RECORD_SECONDS = 24 * 3600
SORT_KEY = "enqueued"


def _key(delivery_id: str) -> str:
    # The webhook role may touch only `delivery#*` partitions (infra/src/state.yaml).
    return f"delivery#{delivery_id}"


def already_enqueued(table: StateTable, delivery_id: str, now: float) -> bool:
    """True when the table says `delivery_id` was enqueued (and its record has not expired);
    False when it was not, or the table cannot say."""
    try:
        item = table.get(_key(delivery_id), SORT_KEY)
    except GhrError as error:
        log.warning("delivery record unavailable; enqueued anyway", error=str(error))
        return False
    if item is None:
        return False
    # DynamoDB removes expired items late: an expired record no longer counts.
    expires_at = item.get(TTL_ATTRIBUTE)
    return not isinstance(expires_at, int | float) or expires_at > now


def record_enqueued(table: StateTable, delivery_id: str, message_id: str, now: float) -> None:
    """Remember that `delivery_id` is on the build queue as `message_id`, for a day."""
    try:
        table.put(_key(delivery_id), SORT_KEY, {"messageId": message_id},
                  expires_at=int(now) + RECORD_SECONDS)
    except GhrError as error:
        # Enqueued already: a redelivery of it would be enqueued twice, never lost.
        log.warning("delivery not recorded; a redelivery would be enqueued again",
                    error=str(error))
