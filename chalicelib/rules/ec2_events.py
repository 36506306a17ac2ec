"""What an EC2 event EventBridge delivers says (docs/REFERENCE.md §9), and whether its instance
is this deployment's.

Pure: the event as a dictionary in; an `Ec2Event` to act on, or an `Ignored` with the reason to
log. Nothing here raises on a malformed event (RELIABILITY BI-30): it is only ever ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chalicelib.models import (
    APPLICATION,
    INSTANCE_ID_PATTERN,
    TAG_APPLICATION,
    TAG_ENVIRONMENT,
    Instance,
)

INTERRUPTION = "EC2 Spot Instance Interruption Warning"
STATE_CHANGE = "EC2 Instance State-change Notification"
# States in which the instance will not run a job again: its runner goes, and its token.
ENDING_STATES = ("shutting-down", "terminated")
# The pattern of the EventBridge rule (app.py): both detail-types, state changes filtered to
# the ending states, so that launches and stops never invoke the function.
EVENT_PATTERN: dict[str, Any] = {
    "source": ["aws.ec2"],
    "detail-type": [INTERRUPTION, STATE_CHANGE],
    "$or": [{"detail-type": [INTERRUPTION]}, {"detail": {"state": list(ENDING_STATES)}}],
}
INSTANCE_ID = re.compile(INSTANCE_ID_PATTERN)


@dataclass(frozen=True)
class Ec2Event:
    """An event to act on: an interruption warning, or a state change to an ending state."""

    kind: Literal["interruption", "state"]
    instance_id: str
    # The event's time as EventBridge gives it (ISO 8601, UTC), or None when it has none.
    time: str | None
    state: str | None = None


@dataclass(frozen=True)
class Ignored:
    """An event not acted on, and why; `malformed` when it is not what EC2 sends."""

    reason: str
    malformed: bool = False


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if moment.tzinfo is not None else None


def parse_event(event: Any) -> Ec2Event | Ignored:
    """The event to act on in `event`, or why it is ignored."""
    if not isinstance(event, Mapping):
        return Ignored("not an object", malformed=True)
    kind = event.get("detail-type")
    if not isinstance(kind, str) or not isinstance(event.get("source"), str):
        return Ignored("no source or detail-type", malformed=True)
    if event.get("source") != "aws.ec2" or kind not in (INTERRUPTION, STATE_CHANGE):
        return Ignored(f"not an EC2 event of interest: {kind[:60]}")
    detail = event.get("detail")
    instance_id = detail.get("instance-id") if isinstance(detail, Mapping) else None
    if not isinstance(instance_id, str) or not INSTANCE_ID.fullmatch(instance_id):
        return Ignored("no valid instance-id in the detail", malformed=True)
    time = _time(event.get("time"))
    if kind == INTERRUPTION:
        return Ec2Event("interruption", instance_id, time)
    return _state_change(instance_id, time, detail)


def _state_change(instance_id: str, time: str | None, detail: Any) -> Ec2Event | Ignored:
    state = detail.get("state")
    if not isinstance(state, str):
        return Ignored("no state in the detail", malformed=True)
    if state not in ENDING_STATES:
        return Ignored(f"state {state[:30]} is not an ending state")
    return Ec2Event("state", instance_id, time, state)


def is_ours(instance: Instance | None, environments: Collection[str]) -> bool:
    """Whether `instance` is a runner of this deployment: tagged as the application, with the
    `ghr:environment` of one of its configurations."""
    return (instance is not None and instance.tag(TAG_APPLICATION) == APPLICATION
            and instance.tag(TAG_ENVIRONMENT) in environments)
