"""The scheduled side of a demo run, what EventBridge does in a deployment: `scale_down` on its
schedule, the pool's `adjust_pool` during the working day, `sync_runner_binaries` at the start and
then periodically; and GitHub publishing a new runner release mid-run, for the sync to pick up."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from demo.observe import Event

if TYPE_CHECKING:
    from demo.engine import DemoConfig
    from demo.lambdas import Lambdas


# The object sync_runner_binaries keeps for the demo's linux x64 runners; read back after each
# run to tell what it did.
CACHED_RUNNER = "actions-runner-linux-x64.tar.gz"


def next_version(version: str) -> str:
    """The release after `version` (2.321.0 -> 2.322.0)."""
    major, minor, *_ = (int(part) for part in version.split("."))
    return f"{major}.{minor + 1}.0"


class Schedules:
    """Runs each scheduled function when its (simulated) time comes; returns what happened."""

    def __init__(self, config: DemoConfig, lambdas: Lambdas, github: Any, bucket: str,
                 pool_until: float, runner_configs: tuple[str, ...] = ()) -> None:
        self.config = config
        # With several runner configurations, one pool per configuration (REFERENCE §6's
        # `runnerConfig` in adjust_pool's payload); None: the deployment's one configuration.
        self.pools: tuple[str | None, ...] = runner_configs or (None,)
        self.lambdas = lambdas
        self.github = github
        self.bucket = bucket
        # The pool keeps runners ready while jobs are being queued, as a working day's
        # schedule would, and stops with them so that scale-down alone shapes the tail.
        self.pool_until = pool_until
        self.next_scale_down = config.scale_down_every_minutes * 60.0
        self.next_pool = 0.0 if config.pool > 0 else math.inf
        self.next_sync = 0.0
        release = config.new_release_at_minutes
        self.release_at = math.inf if release is None else release * 60.0
        self.runs: list[tuple[float, str]] = []

    def due(self, now: float) -> list[Event]:
        """Run what is due at `now` (simulated seconds); the events to show."""
        events: list[Event] = []
        if now >= self.release_at:
            self.release_at = math.inf
            version = next_version(self.github.runner_version)
            self.github.set_latest_runner_version(version)
            events.append(Event(now, "new release", f"GitHub publishes runner {version}"))
        if now >= self.next_scale_down:
            self.next_scale_down += self.config.scale_down_every_minutes * 60.0
            self.runs.append((now, "scale_down"))
            events.append(Event(now, "scale-down", "scheduled run"))
            self.lambdas.scale_down()
        if now >= self.next_pool:
            self.next_pool += self.config.pool_every_minutes * 60.0
            if now <= self.pool_until:
                self.runs.append((now, "adjust_pool"))
                for pool in self.pools:
                    launched = self.lambdas.adjust_pool(self.config.pool, pool)
                    which = f" ({pool})" if pool else ""
                    events.append(Event(now, "pool", f"adjust_pool poolSize {self.config.pool}"
                                                     f"{which}: launched {launched}"))
        if now >= self.next_sync:
            self.next_sync += self.config.sync_every_minutes * 60.0
            self.runs.append((now, "sync_runner_binaries"))
            version, changed = self.lambdas.sync_runner_binaries(self.bucket, CACHED_RUNNER)
            state = f"cached runner {version}" if changed else f"up to date ({version})"
            events.append(Event(now, "binaries", f"sync_runner_binaries: {state}"))
        return events
