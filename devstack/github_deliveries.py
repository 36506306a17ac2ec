"""The App webhook's delivery log in the GitHub fake: listed newest first, redelivered on request.

GitHub keeps every delivery of the App's webhook for three days and redelivers one only when
asked (`POST /app/hook/deliveries/{delivery_id}/attempts`). Tests add the deliveries they need;
`on_redelivery` decides how a redelivery fares (200 unless set), as the webhook endpoint would.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from devstack.github_records import ApiError


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery attempt of a webhook event."""

    id: int
    guid: str
    delivered_at: float
    event: str
    action: str | None
    status_code: int
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the endpoint answered 2xx."""
        return 200 <= self.status_code < 300


class WebhookDeliveries:
    """The delivery log; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[DeliveryRecord] = []
        self._ids = itertools.count(90_000_001)
        self.on_redelivery: Callable[[DeliveryRecord], int] | None = None
        self.redelivered: list[int] = []  # delivery ids asked for, in order

    def clear(self) -> None:
        """Forget every delivery and the redelivery hook."""
        with self._lock:
            self._records.clear()
            self.redelivered.clear()
            self.on_redelivery = None

    def add(self, delivered_at: float, *, status_code: int = 200, event: str = "workflow_job",
            action: str | None = "queued", guid: str | None = None, redelivery: bool = False,
            installation_id: int | None = None) -> DeliveryRecord:
        """Log a delivery (a new event unless `guid` names an earlier one)."""
        with self._lock:
            record = DeliveryRecord(
                id=next(self._ids), guid=guid or str(uuid.uuid4()), delivered_at=delivered_at,
                event=event, action=action, status_code=status_code, redelivery=redelivery,
                installation_id=installation_id)
            self._records.append(record)
            return record

    def page(self, cursor: str | None, per_page: int,
             status: str | None) -> tuple[list[DeliveryRecord], str | None]:
        """One page, newest first, after `cursor` (the last id of the previous page); and the
        cursor of the next page, if any."""
        with self._lock:
            records = sorted(self._records, key=lambda r: (r.delivered_at, r.id), reverse=True)
        if status is not None:
            records = [r for r in records if r.succeeded == (status == "success")]
        if cursor:
            ids = [r.id for r in records]
            if not cursor.isdigit() or int(cursor) not in ids:
                raise ApiError(400, "Invalid cursor")
            records = records[ids.index(int(cursor)) + 1:]
        chunk = records[:per_page]
        more = len(records) > per_page
        return chunk, (str(chunk[-1].id) if more and chunk else None)

    def redeliver(self, delivery_id: int, now: float) -> DeliveryRecord:
        """Deliver `delivery_id`'s event again; the new attempt joins the log."""
        with self._lock:
            found = next((r for r in self._records if r.id == delivery_id), None)
            if found is None:
                raise ApiError(404, "Not Found")
            self.redelivered.append(delivery_id)
            hook = self.on_redelivery
        status = hook(found) if hook is not None else 200
        with self._lock:
            record = replace(found, id=next(self._ids), delivered_at=now, status_code=status,
                             redelivery=True)
            self._records.append(record)
            return record


def render_delivery(record: DeliveryRecord, iso: Callable[[float], str]) -> dict[str, Any]:
    """A `hook-delivery-item` object."""
    return {
        "id": record.id,
        "guid": record.guid,
        "delivered_at": iso(record.delivered_at),
        "redelivery": record.redelivery,
        "duration": 0.05,
        "status": "OK" if record.succeeded else f"Invalid HTTP Response: {record.status_code}",
        "status_code": record.status_code,
        "event": record.event,
        "action": record.action,
        "installation_id": record.installation_id,
        "repository_id": None,
        "throttled_at": None,
    }
