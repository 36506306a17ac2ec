"""Cron windows of SCALE_DOWN_CONFIG: 5 fields match whole minutes, 6 put seconds first."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.rules.cron import CronError, parse_cron


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_five_fields_match_the_whole_minute() -> None:
    cron = parse_cron("30 9 * * *")
    assert cron.matches(at("2026-11-30T09:30:00"))
    assert cron.matches(at("2026-11-30T09:30:59"))
    assert not cron.matches(at("2026-11-30T09:31:00"))


def test_six_fields_put_seconds_first() -> None:
    cron = parse_cron("0-29 * * * * *")
    assert cron.matches(at("2026-11-30T09:30:10"))
    assert not cron.matches(at("2026-11-30T09:30:40"))


def test_office_hours_on_weekdays_with_names_and_ranges() -> None:
    cron = parse_cron("* * 8-17 * * MON-FRI")
    assert cron.matches(at("2026-11-30T08:00:00"))  # a Monday
    assert not cron.matches(at("2026-11-29T10:00:00"))  # a Sunday
    assert not cron.matches(at("2026-11-30T18:00:00"))


def test_steps_lists_months_and_question_mark() -> None:
    cron = parse_cron("*/15 0,12 ? JAN,dec *")
    assert cron.matches(at("2026-12-01T12:45:00"))
    assert not cron.matches(at("2026-12-01T12:40:00"))
    assert not cron.matches(at("2026-11-01T12:45:00"))


def test_sunday_is_zero_or_seven() -> None:
    assert parse_cron("* * * * 7").matches(at("2026-11-29T10:00:00"))
    assert parse_cron("* * * * 0").matches(at("2026-11-29T10:00:00"))


def test_restricted_day_fields_match_either() -> None:
    cron = parse_cron("* * 1 * MON")
    assert cron.matches(at("2026-11-30T10:00:00"))  # Monday, not the 1st
    assert cron.matches(at("2026-12-01T10:00:00"))  # the 1st, a Tuesday
    assert not cron.matches(at("2026-12-02T10:00:00"))


@pytest.mark.parametrize("text", ["", "* * *", "* * * * * * *", "a * * * *", "5-1 * * * *",
                                  "*/0 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                                  "* * * * 8", "* * L * *"])
def test_invalid_expressions_raise_cron_error(text: str) -> None:
    with pytest.raises(CronError):
        parse_cron(text)
