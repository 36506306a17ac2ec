"""Idle windows: the first `SCALE_DOWN_CONFIG` entry whose cron matches `now` in its time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.rules.cron import parse_cron
from chalicelib.rules.idle_windows import IdleWindow, active_window


def window(cron: str, tz: str = "UTC", idle: int = 1, strategy: str = "oldest_first") -> IdleWindow:
    return IdleWindow(cron=parse_cron(cron), time_zone=tz, idle_count=idle,
                      eviction_strategy=strategy)  # type: ignore[arg-type]


def at(hour: int, minute: int = 0, second: int = 0, day: int = 5) -> datetime:
    # 2026-01-05 is a Monday.
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


def test_active_window_when_no_windows_then_none() -> None:
    assert active_window((), at(10)) is None


def test_active_window_when_office_hours_cron_matches_then_that_window() -> None:
    office = window("* 8-17 * * 1-5", idle=3)
    assert active_window((office,), at(9, 30)) == office


def test_active_window_when_outside_schedule_then_not_active() -> None:
    office = window("* 8-17 * * 1-5", idle=3)
    assert active_window((office,), at(18, 0)) is None
    assert active_window((office,), at(10, 0, day=4)) is None  # a Sunday


def test_active_window_uses_the_window_time_zone() -> None:
    # 09:00 in Amsterdam in winter is 08:00 UTC; 07:30 UTC is 08:30 there.
    amsterdam = window("* 9-17 * * *", tz="Europe/Amsterdam")
    assert active_window((amsterdam,), at(8, 0)) == amsterdam
    assert active_window((amsterdam,), at(7, 30)) is None
    new_york = window("* 9-17 * * *", tz="America/New_York")
    assert active_window((new_york,), at(8, 0)) is None  # 03:00 in New York
    assert active_window((new_york,), at(14, 0)) == new_york


def test_active_window_five_fields_match_the_whole_minute() -> None:
    minute = window("30 10 * * *")
    assert active_window((minute,), at(10, 30, 0)) == minute
    assert active_window((minute,), at(10, 30, 59)) == minute
    assert active_window((minute,), at(10, 31, 0)) is None


def test_active_window_six_fields_have_seconds_first() -> None:
    first_half = window("0-29 * * * * *")
    assert active_window((first_half,), at(10, 0, 10)) == first_half
    assert active_window((first_half,), at(10, 0, 45)) is None


def test_active_window_first_active_window_wins() -> None:
    always_a = window("* * * * *", idle=1)
    always_b = window("* * * * *", idle=5)
    night = window("* 0-6 * * *", idle=9)
    assert active_window((night, always_a, always_b), at(12)) == always_a
    assert active_window((night, always_a, always_b), at(3)) == night


def test_active_window_naive_now_is_taken_as_utc() -> None:
    noon = window("* 12 * * *")
    assert active_window((noon,), datetime(2026, 1, 5, 12, 0)) == noon
