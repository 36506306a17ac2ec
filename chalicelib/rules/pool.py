"""The pool decision: how many org runners to launch so that `poolSize` are ready for jobs.

Available = idle online runners of running instances, plus instances still within the boot time
that have no runner yet or whose runner is offline and idle (a JIT runner is offline until
`run.sh` starts it). The top-up `poolSize - available` is clamped so that running + pending
instances of the owner never exceed `RUNNERS_MAXIMUM_COUNT` (docs/REFERENCE.md §5.1), room
being left for the `reserved` jobs of the build queue that scale-up launches for meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.models import LIVE_STATES, Instance, Runner
from chalicelib.rules.runners import runners_by_name
from chalicelib.settings import Settings


@dataclass(frozen=True)
class PoolPlan:
    """What one pool adjustment launches, and the counts it was decided from."""

    owner: str
    pool_size: int
    idle_online: int
    booting: int
    current: int
    maximum: int
    launch: int
    reserved: int = 0

    @property
    def available(self) -> int:
        """Runners ready for a job now or soon: idle online plus booting."""
        return self.idle_online + self.booting


def plan_pool(owner: str, pool_size: int, instances: Sequence[Instance],
              runners: Sequence[Runner], settings: Settings, now: datetime,
              reserved: int = 0) -> PoolPlan:
    """Decide the top-up of `owner`'s pool from its instances and runners at `now`, leaving
    `reserved` places under the cap."""
    boot = timedelta(minutes=settings.runner_boot_time_in_minutes)
    by_name = runners_by_name(runners)
    live = [i for i in instances if i.state in LIVE_STATES]
    idle_online = booting = 0
    for instance in live:
        found = by_name.get(settings.runner_name_prefix + instance.instance_id)
        within_boot = now - instance.launch_time < boot
        if found is not None and found.busy:
            continue
        if found is not None and found.status == "online":
            idle_online += instance.state == "running"
        elif within_boot:
            booting += 1
    missing = max(0, pool_size - idle_online - booting)
    maximum = settings.runners_maximum_count
    launch = missing if maximum < 0 else min(missing, max(0, maximum - len(live) - reserved))
    return PoolPlan(owner=owner, pool_size=pool_size, idle_online=idle_online, booting=booting,
                    current=len(live), maximum=maximum, launch=launch, reserved=reserved)
