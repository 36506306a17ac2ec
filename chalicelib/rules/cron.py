"""Cron expressions of `SCALE_DOWN_CONFIG`: parse once, then ask whether an instant is inside.

Five fields (minute hour day-of-month month day-of-week) match the whole minute; six fields put
seconds first, as the reference system's cron-parser does. `?` is a synonym of `*`. Months and
weekdays accept names (JAN, MON); Sunday is 0 or 7. As in Vixie cron, when both day fields are
restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

# (name, lowest, highest, names mapped to numbers starting at `lowest`)
_FIELDS: dict[str, tuple[int, int, list[str]]] = {
    "second": (0, 59, []),
    "minute": (0, 59, []),
    "hour": (0, 23, []),
    "day-of-month": (1, 31, []),
    "month": (1, 12, _MONTHS),
    "day-of-week": (0, 7, _DAYS),
}


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the set of allowed values of each field."""

    expression: str
    seconds: frozenset[int] | None  # None: five fields, any second of a matching minute
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, moment: datetime) -> bool:
        """Whether `moment` (already in the window's time zone) lies inside the schedule."""
        if self.seconds is not None and moment.second not in self.seconds:
            return False
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        if moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def parse_cron(expression: str) -> Cron:
    """Parse a 5- or 6-field cron expression; raise `CronError` naming the bad field."""
    parts = expression.split()
    if len(parts) not in (5, 6):
        raise CronError(f"expected 5 or 6 fields, got {len(parts)}")
    names = ["minute", "hour", "day-of-month", "month", "day-of-week"]
    if len(parts) == 6:
        names = ["second", *names]
    values = {name: _parse_field(name, part) for name, part in zip(names, parts, strict=True)}
    weekdays = frozenset(0 if d == 7 else d for d in values["day-of-week"][0])
    return Cron(
        expression=expression,
        seconds=values["second"][0] if "second" in values else None,
        minutes=values["minute"][0],
        hours=values["hour"][0],
        days=values["day-of-month"][0],
        months=values["month"][0],
        weekdays=weekdays,
        days_restricted=values["day-of-month"][1],
        weekdays_restricted=values["day-of-week"][1],
    )


def _parse_field(name: str, text: str) -> tuple[frozenset[int], bool]:
    """Return the allowed values of one field and whether it restricts anything."""
    low, high, labels = _FIELDS[name]
    if text in ("*", "?"):
        return frozenset(range(low, high + 1)), False
    allowed: set[int] = set()
    for item in text.split(","):
        allowed |= _parse_item(name, item, low, high, labels)
    return frozenset(allowed), True


def _parse_item(name: str, item: str, low: int, high: int, labels: list[str]) -> set[int]:
    step = 1
    if "/" in item:
        item, _, step_text = item.partition("/")
        step = _number(name, step_text, labels, low)
        if step < 1:
            raise CronError(f"{name}: step must be positive in {item}/{step_text}")
    if item in ("*", "?"):
        start, end = low, high
    elif "-" in item:
        first, _, last = item.partition("-")
        start, end = _number(name, first, labels, low), _number(name, last, labels, low)
    else:
        start = _number(name, item, labels, low)
        end = high if step > 1 else start
    if not (low <= start <= high and low <= end <= high) or start > end:
        raise CronError(f"{name}: {item!r} is outside {low}-{high}")
    return set(range(start, end + 1, step))


def _number(name: str, text: str, labels: list[str], low: int) -> int:
    upper = text.upper()
    if upper in labels:
        return labels.index(upper) + low
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number")
    return int(text)
