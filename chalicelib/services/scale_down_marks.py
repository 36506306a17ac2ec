"""What scale-down remembers from one run to the next, so that absence is seen twice before it
counts (docs/REFERENCE.md §4, §5.2, §7):

- `ghr:orphan-suspected=<run time>` on an instance first seen without a runner after the boot
  time: one CreateTags for every instance newly marked in a run (they share the run's time);
  one DeleteTags for the marked instances whose runner is listed again. The scale-down role may
  write and delete that key only.
- `gone#<ENVIRONMENT>` / `<instance-id>` in the state table: when a runner's instance was first
  found absent from EC2. A table that cannot be read makes no runner a ghost by absence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.state import TTL_ATTRIBUTE, StateTable
from chalicelib.errors import GhrError
from chalicelib.logs import get_logger
from chalicelib.models import TAG_ORPHAN_SUSPECTED
from chalicelib.rules.removals import mark_value, parse_mark

log = get_logger(__name__)

# An absence mark outlives any run that would read it; expired, the next absence starts over.
ABSENT_MARK_TTL = timedelta(days=1)


def mark_orphans(ec2: Ec2, instance_ids: Sequence[str], now: datetime) -> bool:
    """Mark `instance_ids` suspected orphans as of `now`; False (logged) when EC2 refused."""
    if not instance_ids:
        return True
    try:
        ec2.tag_instances(instance_ids, TAG_ORPHAN_SUSPECTED, mark_value(now))
    except GhrError as error:
        # Unmarked, they are never terminated as orphans: the run fails so that it shows.
        log.error("orphan marks not written", instance_ids=list(instance_ids), error=str(error))
        return False
    log.info("suspected orphans marked", instance_ids=list(instance_ids))
    return True


def unmark_orphans(ec2: Ec2, instance_ids: Sequence[str]) -> None:
    """Remove the mark of instances whose runner is listed again (best effort)."""
    if not instance_ids:
        return
    try:
        ec2.untag_instances(instance_ids, TAG_ORPHAN_SUSPECTED)
    except GhrError as error:
        # A stale mark only shortens a later wait; the runner look-up still guards termination.
        log.warning("orphan marks not removed", instance_ids=list(instance_ids),
                    error=str(error))


class AbsenceMarks:
    """The `gone#<ENVIRONMENT>` partition of the state table."""

    def __init__(self, table: StateTable, environment: str) -> None:
        self.table = table
        self.pk = f"gone#{environment}"

    def read(self, now: datetime) -> dict[str, datetime] | None:
        """When each instance id was first found absent (expired marks left out); None when the
        table cannot say."""
        try:
            items = self.table.query(self.pk)
        except GhrError as error:
            log.warning("absence marks unreadable; no ghost by absence this run",
                        error=str(error))
            return None
        marks: dict[str, datetime] = {}
        for item in items:
            since = parse_mark(item.get("since"))
            expires_at = item.get(TTL_ATTRIBUTE)
            if since is not None and isinstance(expires_at, int) \
                    and expires_at > now.timestamp():
                marks[str(item.get("sk"))] = since
        return marks

    def record(self, instance_ids: Sequence[str], now: datetime) -> None:
        """Remember that `instance_ids` were absent from EC2 at `now` (best effort)."""
        expires_at = int((now + ABSENT_MARK_TTL).timestamp())
        for instance_id in instance_ids:
            try:
                self.table.put_new(self.pk, instance_id, {"since": mark_value(now)},
                                   expires_at=expires_at, now=int(now.timestamp()))
            except GhrError as error:
                log.warning("absence mark not written", instance_id=instance_id,
                            error=str(error))
                return

    def forget(self, instance_ids: Sequence[str]) -> None:
        """Drop the marks of instances EC2 knows again (best effort)."""
        for instance_id in instance_ids:
            try:
                self.table.delete(self.pk, instance_id)
            except GhrError as error:
                log.warning("absence mark not removed", instance_id=instance_id,
                            error=str(error))
                return
