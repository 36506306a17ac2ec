"""scale_down redelivers the failed webhook deliveries of queued jobs when asked to
(ENABLE_WEBHOOK_REDELIVERY; RELIABILITY R-WH-09)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from scale_down_support import invoke_scale_down

LIST = "GET /app/hook/deliveries"


@pytest.fixture
def redelivery(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_WEBHOOK_REDELIVERY", "true")


def test_a_failed_queued_delivery_is_redelivered_once_it_succeeds(
        stack: Any, redelivery: None) -> None:
    log = stack.github.deliveries
    failed = log.add(stack.github.clock() - 120, status_code=502)
    log.add(stack.github.clock() - 100, status_code=200)  # another job's delivery went through

    invoke_scale_down()
    invoke_scale_down()  # the redelivery succeeded: nothing more to do

    assert log.redelivered == [failed.id]


def test_a_delivery_that_keeps_failing_is_given_up_after_three_redeliveries(
        stack: Any, redelivery: None, caplog: pytest.LogCaptureFixture) -> None:
    log = stack.github.deliveries
    log.on_redelivery = lambda record: 503
    log.add(stack.github.clock() - 60, status_code=504)

    for _ in range(5):
        invoke_scale_down()

    assert len(log.redelivered) == 3
    assert "webhook delivery given up" in caplog.text


def test_without_the_setting_deliveries_are_not_read(stack: Any, env: dict[str, str]) -> None:
    stack.github.deliveries.add(stack.github.clock(), status_code=502)

    invoke_scale_down()

    assert stack.github.count(route=LIST) == 0
    assert stack.github.deliveries.redelivered == []


def test_a_failing_delivery_log_is_logged_and_does_not_fail_scale_down(
        stack: Any, redelivery: None, caplog: pytest.LogCaptureFixture) -> None:
    stack.github.fail_next(LIST, n=8, status=502)

    with caplog.at_level(logging.ERROR):
        invoke_scale_down()  # does not raise

    assert "webhook redelivery failed" in caplog.text


def test_one_refused_redelivery_does_not_stop_the_others(
        stack: Any, redelivery: None, caplog: pytest.LogCaptureFixture) -> None:
    log = stack.github.deliveries
    first = log.add(stack.github.clock() - 90, status_code=502)
    second = log.add(stack.github.clock() - 60, status_code=502)
    stack.github.fail_next("POST /app/hook/deliveries/{delivery_id}/attempts", n=1, status=422)

    invoke_scale_down()

    assert "webhook redelivery refused" in caplog.text
    assert log.redelivered == [second.id] and first.id not in log.redelivered
