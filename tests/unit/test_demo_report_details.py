"""What the demo's report adds to the summary: booting instances apart from idle runners, the
scheduled runs, the configuration in simulated units and the timeline (no devstack needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from demo.engine import DemoConfig
from demo.recording import Recording, Sample, summarize
from demo.report import write_report
from demo.schedules import Schedules, next_version


def _recording() -> Recording:
    samples = [
        Sample(t=0, queued=4, busy=0, idle=2, instances=2, booting=2),
        Sample(t=60, queued=2, busy=2, idle=1, instances=3, booting=1),
        Sample(t=120, queued=0, busy=3, idle=1, instances=4, booting=0),
        Sample(t=180, queued=0, busy=0, idle=2, instances=2, booting=0),
    ]
    return Recording(
        scenario="details", speed=30, samples=samples, waits=[10, 20], jobs_total=2, jobs_done=2,
        config=DemoConfig(speed=30).shown(), cap=4,
        runs=[(0.0, "adjust_pool"), (0.0, "sync_runner_binaries"), (150.0, "scale_down")],
        events=[(0.0, "pool", "adjust_pool poolSize 2: launched 2"),
                (150.0, "scale-down", "scheduled run <now>")])


def test_booting_instances_are_idle_instances_but_not_idle_runners() -> None:
    recording = _recording()

    assert [s.idle_runners for s in recording.samples] == [0, 0, 1, 2]
    summary = summarize(recording)
    assert summary.idle_instance_minutes == pytest.approx((2 + 1 + 1) * 60 / 60)
    assert summary.booting_instance_minutes == pytest.approx((2 + 1) * 60 / 60)
    assert ("  of which booting", "3.0") in summary.rows()


def test_the_report_indents_breakdowns_and_shows_settings_and_timeline(tmp_path: Path) -> None:
    _, paths = write_report(_recording(), tmp_path)

    page = paths.html.read_text()
    assert "<td class=sub>of which booting</td>" in page
    assert "<td>idle instance-minutes</td>" in page  # a top-level figure is not indented
    assert "5 min (given as 0.166667 at 30x)" in page  # MINIMUM_RUNNING_TIME_IN_MINUTES
    assert "30 s (given as 1 s)" in page  # the build queue's delay
    assert "<td class=n>2:30</td><td>scale-down</td><td>scheduled run &lt;now&gt;</td>" in page
    assert paths.chart.read_bytes().startswith(b"\x89PNG")


class _Lambdas:
    """The invocations a schedule makes, recorded; the sync caches the fake's latest release."""

    def __init__(self, github: _GitHub) -> None:
        self.github = github
        self.calls: list[tuple[str, Any]] = []
        self.cached: str | None = None

    def scale_down(self) -> None:
        self.calls.append(("scale_down", None))

    def adjust_pool(self, size: int, runner_config: str | None = None) -> int:
        assert runner_config is None  # one configuration: the pool names none
        self.calls.append(("adjust_pool", size))
        return size

    def sync_runner_binaries(self, bucket: str, key: str) -> tuple[str | None, bool]:
        self.calls.append(("sync_runner_binaries", key))
        changed = self.cached != self.github.runner_version
        self.cached = self.github.runner_version
        return self.cached, changed


class _GitHub:
    runner_version = "2.321.0"

    def set_latest_runner_version(self, version: str) -> None:
        self.runner_version = version


def test_the_schedules_run_the_pool_while_jobs_come_and_sync_a_new_release() -> None:
    config = DemoConfig(idle_count=2, scale_down_every_minutes=5, pool_every_minutes=5,
                        sync_every_minutes=15, new_release_at_minutes=10)
    github = _GitHub()
    lambdas = _Lambdas(github)
    schedules = Schedules(config, lambdas, github, "bucket",  # type: ignore[arg-type]
                          pool_until=12 * 60.0)

    events = {minute: schedules.due(minute * 60.0) for minute in range(0, 35)}
    kinds = {minute: [e.kind for e in found] for minute, found in events.items()}

    assert kinds[0] == ["pool", "binaries"]
    assert kinds[5] == ["scale-down", "pool"]
    assert kinds[10] == ["new release", "scale-down", "pool"]
    assert kinds[15] == ["scale-down", "binaries"]  # the pool's day ended at minute 12
    assert [e.text for e in events[15] if e.kind == "binaries"] == [
        "sync_runner_binaries: cached runner 2.322.0"]
    assert [e.text for e in events[30] if e.kind == "binaries"] == [
        "sync_runner_binaries: up to date (2.322.0)"]
    assert [size for name, size in lambdas.calls if name == "adjust_pool"] == [2, 2, 2]
    assert schedules.due(34 * 60.0 + 1) == []  # nothing runs twice
    assert [t for t, name in schedules.runs if name == "scale_down"] == [
        m * 60.0 for m in (5, 10, 15, 20, 25, 30)]


def test_no_pool_runs_with_a_pool_size_of_zero() -> None:
    github = _GitHub()
    schedules = Schedules(DemoConfig(pool_size=0), _Lambdas(github), github,  # type: ignore[arg-type]
                          "bucket", pool_until=math.inf)

    schedules.due(0.0)

    assert "adjust_pool" not in [name for _, name in schedules.runs]


def test_next_release_is_the_next_minor_version() -> None:
    assert next_version("2.321.0") == "2.322.0"
    assert next_version("3.9.4") == "3.10.0"
