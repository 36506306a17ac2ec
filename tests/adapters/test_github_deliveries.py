"""The App webhook's delivery log through the GitHub client's App authentication."""

from __future__ import annotations

from typing import Any

import pytest
from github_client_support import ManualClock, make_client

from chalicelib.github.deliveries import WebhookDeliveries


@pytest.fixture
def deliveries(stack: Any, clock: ManualClock) -> WebhookDeliveries:
    return make_client(stack, clock).webhook_deliveries()


def test_since_reads_pages_until_the_deliveries_are_older(
    stack: Any, clock: ManualClock, deliveries: WebhookDeliveries
) -> None:
    log = stack.github.deliveries
    old = [log.add(clock.now - 3600 - n) for n in range(5)]
    recent = [log.add(clock.now - n, status_code=502 if n % 2 else 200) for n in range(250)]

    found = deliveries.since(clock.now - 600)

    assert [d.id for d in found] == [r.id for r in recent]
    assert {d.id for d in found}.isdisjoint(r.id for r in old)
    assert stack.github.count(route="GET /app/hook/deliveries") == 3  # 100 + 100 + 50
    assert found[1].status_code == 502 and not found[1].succeeded


def test_since_stops_at_the_page_limit(
    stack: Any, clock: ManualClock, deliveries: WebhookDeliveries
) -> None:
    for n in range(250):
        stack.github.deliveries.add(clock.now - n)
    assert len(deliveries.since(clock.now - 600, max_pages=2)) == 200


def test_redeliver_asks_github_for_another_attempt(
    stack: Any, clock: ManualClock, deliveries: WebhookDeliveries
) -> None:
    failed = stack.github.deliveries.add(clock.now, status_code=502)
    deliveries.redeliver(failed.id)
    assert stack.github.deliveries.redelivered == [failed.id]
