"""What scale-down removes, and the marks that make a removal wait for a second run.

Shared by the per-instance rules (`rules/scale_down.py`) and the ghost rule (`rules/ghosts.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from chalicelib.models import INSTANCE_ID_PATTERN, RunnerType

OwnerKey = tuple[str, RunnerType]
RemovalKind = Literal["orphan", "idle", "ghost"]

# The default scale-down schedule, every 5 minutes (`SCALE_DOWN_SCHEDULE_EXPRESSION`). What
# only absence proves (no runner for an instance, no instance for a runner) must be seen in two
# runs at least this far apart: a slow boot registers, a lagging listing catches up meanwhile.
SCALE_DOWN_INTERVAL = timedelta(minutes=5)
# A mark counts from this age: the interval, less the seconds by which two scheduled runs may
# start closer than their schedule (EventBridge starts each a little late, not always by the
# same amount). Without it, one run in two would find its predecessor's mark 4:59 old and the
# removal would wait a whole interval more.
MARK_MIN_AGE = SCALE_DOWN_INTERVAL - timedelta(seconds=30)


@dataclass(frozen=True)
class Removal:
    """One removal: deregister `runner_id` (if any), then terminate `instance_id` (if any).

    An orphan without a runner (`runner_id` None) is terminated only after a direct look-up of
    its runner, by `lookup_runner_id` (its `ghr:github_runner_id` tag) or else by
    `lookup_name`, finds none."""

    kind: RemovalKind
    owner: str
    runner_type: RunnerType
    instance_id: str | None
    runner_id: int | None
    reason: str
    lookup_name: str | None = None
    lookup_runner_id: int | None = None


def instance_id_of(runner_name: str, prefix: str) -> str | None:
    """The instance id in a runner name `<prefix><instance-id>`, or None for another name."""
    if not runner_name.startswith(prefix):
        return None
    rest = runner_name[len(prefix):]
    return rest if re.fullmatch(INSTANCE_ID_PATTERN, rest) else None


def mark_value(now: datetime) -> str:
    """A mark's value: the run's time, ISO 8601 to the second, in UTC (`...Z`)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_mark(value: str | None) -> datetime | None:
    """The time in a mark's value; None for no mark or one that is not a time with a zone."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
