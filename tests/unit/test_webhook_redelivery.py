"""Which failed webhook deliveries are redelivered (RELIABILITY R-WH-09)."""

from __future__ import annotations

import itertools

from chalicelib.github.deliveries import Delivery
from chalicelib.services.redelivery import plan_redeliveries

_ids = itertools.count(1)


def attempt(guid: str, status: int, at: float = 100, *, redelivery: bool = False,
            event: str = "workflow_job", action: str | None = "queued") -> Delivery:
    return Delivery(id=next(_ids), guid=guid, delivered_at=at, event=event, action=action,
                    status_code=status, redelivery=redelivery)


def test_a_failed_queued_event_is_redelivered_through_its_newest_attempt() -> None:
    first = attempt("a", 502, at=100)
    again = attempt("a", 0, at=200, redelivery=True)  # no answer at all
    plan = plan_redeliveries([again, first])
    assert plan.redeliver == (again.id,) and plan.given_up == ()


def test_an_event_delivered_once_successfully_is_left_alone() -> None:
    plan = plan_redeliveries([attempt("a", 502), attempt("a", 201, at=200, redelivery=True),
                              attempt("b", 202)])
    assert plan.redeliver == () and plan.given_up == ()


def test_only_queued_workflow_job_events_are_redelivered() -> None:
    plan = plan_redeliveries([attempt("a", 500, action="completed"),
                              attempt("b", 500, action="in_progress"),
                              attempt("c", 500, event="ping", action=None)])
    assert plan.redeliver == ()


def test_an_event_redelivered_as_often_as_allowed_is_given_up() -> None:
    attempts = [attempt("a", 500), *(attempt("a", 500, at=200 + n, redelivery=True)
                                     for n in range(3))]
    plan = plan_redeliveries(attempts, max_redeliveries=3)
    assert plan.redeliver == () and plan.given_up == ("a",)
    assert plan_redeliveries(attempts[:3], max_redeliveries=3).redeliver == (attempts[2].id,)


def test_a_delivery_refused_with_a_4xx_is_not_redelivered() -> None:
    plan = plan_redeliveries([attempt("a", 401), attempt("b", 413), attempt("c", 429),
                              attempt("d", 0)])
    assert len(plan.redeliver) == 2  # the 429 and the unanswered one


def test_one_run_redelivers_the_oldest_events_first_up_to_its_bound() -> None:
    attempts = [attempt(f"e{n}", 502, at=100 + n) for n in range(5)]
    plan = plan_redeliveries(list(reversed(attempts)), max_per_run=2)
    assert plan.redeliver == (attempts[0].id, attempts[1].id)
