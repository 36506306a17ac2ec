"""Which `SCALE_DOWN_CONFIG` window is active at an instant, and so how many idle runners to keep.

A window is active when `now`, seen in the window's own time zone, lies inside its cron schedule:
a 5-field cron matches the whole minute, a 6-field one (seconds first) only its seconds. The first
active window in configuration order wins, as in the reference system.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from chalicelib.settings import IdleWindow


def active_window(windows: Sequence[IdleWindow], now: datetime) -> IdleWindow | None:
    """The first window whose cron matches `now` in its time zone, or None."""
    # A naive instant is taken as UTC: the functions only ever work in UTC.
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    for window in windows:
        if window.cron.matches(moment.astimezone(ZoneInfo(window.time_zone))):
            return window
    return None

