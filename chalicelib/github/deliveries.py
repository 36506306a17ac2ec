"""The GitHub App webhook's delivery log: its recent deliveries, and redelivery on request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.github.auth import AppAuth, expiry_epoch

# 100 deliveries a page: ten pages cover 1,000 deliveries (about 330 jobs, as each job is
# delivered queued, in progress and completed).
MAX_PAGES = 10
DELIVERIES = "/app/hook/deliveries"


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt of the App's webhook, as GitHub lists it."""

    id: int
    guid: str
    delivered_at: float
    event: str
    action: str | None
    status_code: int
    redelivery: bool = False

    @property
    def succeeded(self) -> bool:
        """Whether the webhook answered 2xx."""
        return 200 <= self.status_code < 300


class WebhookDeliveries:
    """The App webhook's delivery log on GitHub (calls made as the App, with its JWT)."""

    def __init__(self, auth: AppAuth) -> None:
        self.auth = auth

    def since(self, moment: float, max_pages: int = MAX_PAGES) -> list[Delivery]:
        """The deliveries made after `moment` (epoch seconds), newest first."""
        found: list[Delivery] = []
        cursor: str | None = None
        for _ in range(max_pages):
            query: dict[str, str | int] = {"per_page": 100}
            if cursor:
                query["cursor"] = cursor
            response = self.auth.app_call("GET", DELIVERIES, query=query)
            page = [_delivery(item) for item in response.json()]
            found.extend(d for d in page if d.delivered_at >= moment)
            cursor = _next_cursor(response.links)
            if not cursor or not page or page[-1].delivered_at < moment:
                break
        return found

    def redeliver(self, delivery_id: int) -> None:
        """Ask GitHub to deliver `delivery_id`'s event again."""
        self.auth.app_call("POST", DELIVERIES + "/{delivery_id}/attempts",
                           {"delivery_id": delivery_id})


def _delivery(item: Any) -> Delivery:
    return Delivery(
        id=int(item["id"]), guid=str(item["guid"]),
        delivered_at=expiry_epoch(str(item.get("delivered_at", "")), 0.0),
        event=str(item.get("event", "")), action=item.get("action"),
        status_code=int(item.get("status_code") or 0),
        redelivery=bool(item.get("redelivery", False)),
    )


def _next_cursor(links: Any) -> str | None:
    url = (links or {}).get("next", {}).get("url")
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("cursor")
    return values[0] if values else None
