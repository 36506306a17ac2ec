"""`SCALE_DOWN_CONFIG`'s idle windows: parsed from the setting, and which is active at an instant.

A window is active when `now`, seen in the window's own time zone, lies inside its cron schedule:
a 5-field cron matches the whole minute, a 6-field one (seconds first) only its seconds. The first
active window in configuration order wins, as in the reference system.

`zoneinfo` is imported inside the functions: settings (imported by every function) import this
module, and only scale_down with a `SCALE_DOWN_CONFIG` needs time zones; at the top it would be
part of every other function's cold start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.rules.cron import Cron, CronError, parse_cron

EVICTION_STRATEGIES = ("oldest_first", "newest_first")


@dataclass(frozen=True)
class IdleWindow:
    """One `SCALE_DOWN_CONFIG` entry: keep `idle_count` idle runners while `cron` matches."""

    cron: Cron
    time_zone: str
    idle_count: int
    eviction_strategy: str = "oldest_first"


def active_window(windows: Sequence[IdleWindow], now: datetime) -> IdleWindow | None:
    """The first window whose cron matches `now` in its time zone, or None."""
    from zoneinfo import ZoneInfo

    # A naive instant is taken as UTC: the functions only ever work in UTC.
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    for window in windows:
        if window.cron.matches(moment.astimezone(ZoneInfo(window.time_zone))):
            return window
    return None


def parse_idle_windows(value: Any) -> tuple[IdleWindow, ...]:
    """The windows of `SCALE_DOWN_CONFIG` decoded from JSON; ValueError names every bad entry."""
    if not isinstance(value, list):
        raise ValueError("expected a JSON list of {cron, timeZone, idleCount, evictionStrategy}")
    windows: list[IdleWindow] = []
    errors: list[str] = []
    for index, entry in enumerate(value):
        try:
            windows.append(_idle_window(entry))
        except ValueError as error:
            errors.append(f"entry {index}: {error}")
    if errors:
        raise ValueError("; ".join(errors))
    return tuple(windows)


def _idle_window(entry: Any) -> IdleWindow:
    if not isinstance(entry, dict):
        raise ValueError("expected an object")
    errors: list[str] = []
    cron_text = entry.get("cron")
    cron: Cron | None = None
    if not isinstance(cron_text, str):
        errors.append("cron: missing or not a string")
    else:
        try:
            cron = parse_cron(cron_text)
        except CronError as error:
            errors.append(f"cron {cron_text!r}: {error}")
    time_zone = entry.get("timeZone", "UTC")
    if not _known_time_zone(time_zone):
        errors.append(f"timeZone: unknown time zone {time_zone!r}")
    idle_count = entry.get("idleCount", 0)
    if isinstance(idle_count, bool) or not isinstance(idle_count, int) or idle_count < 0:
        errors.append(f"idleCount: expected a non-negative integer, got {idle_count!r}")
    strategy = entry.get("evictionStrategy", "oldest_first")
    if strategy not in EVICTION_STRATEGIES:
        errors.append(f"evictionStrategy: {strategy!r} is not one of oldest_first, newest_first")
    if errors or cron is None:
        raise ValueError(", ".join(errors))
    return IdleWindow(cron=cron, time_zone=time_zone, idle_count=idle_count,
                      eviction_strategy=strategy)


def _known_time_zone(name: Any) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder
        return False
    return True
