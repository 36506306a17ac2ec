"""The demo's scheduled functions end to end: a short replay whose pool and binaries sync run
against devstack, as `make demo`'s default configuration has them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from demo import DemoConfig, run_demo
from demo.recording import Recording
from demo.scenario import parse_scenario

JOBS = [{"repo": "acme/api", "queued_at": 20, "duration": 60},
        {"repo": "acme/web", "queued_at": 25, "duration": 60}]
# A minute-long working day, a new runner release at half a minute, a sync every minute.
SHORT = DemoConfig(speed=60, max_runners=4, idle_count=1, minimum_running_minutes=0.5,
                   runner_boot_minutes=1, instance_boot_seconds=15, scale_down_every_minutes=1,
                   pool_every_minutes=1, sync_every_minutes=1, new_release_at_minutes=0.5,
                   tail_minutes=1.5, wall_limit_seconds=40)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    replayed, _, _ = run_demo(parse_scenario(JOBS, "short"), SHORT,
                              tmp_path_factory.mktemp("demo"), console)
    return replayed


def test_the_pool_launches_before_the_first_job_and_its_runners_take_jobs(
        recording: Recording) -> None:
    pool = [text for _, kind, text in recording.events if kind == "pool"]

    assert pool[0] == "adjust_pool poolSize 1: launched 1"
    assert recording.invocations["adjust_pool"] == len(pool) >= 1
    assert recording.aws_calls["sqs GetQueueAttributes"] >= 1  # the pool leaves room for jobs
    assert recording.jobs_done == 2


def test_the_binaries_sync_caches_the_release_then_the_new_one(recording: Recording) -> None:
    synced = [text for _, kind, text in recording.events if kind == "binaries"]

    assert synced[0] == "sync_runner_binaries: cached runner 2.321.0"
    assert "sync_runner_binaries: cached runner 2.322.0" in synced
    assert recording.aws_calls["s3 PUT object"] == 2
    assert recording.github_calls["GET /repos/{owner}/{repo}/releases/latest"] == len(synced)


def test_booting_instances_are_recorded_apart_and_runs_are_marked(recording: Recording) -> None:
    assert any(s.booting > 0 for s in recording.samples)
    assert all(0 <= s.booting <= s.idle for s in recording.samples)
    assert {name for _, name in recording.runs} == {
        "scale_down", "adjust_pool", "sync_runner_binaries"}
    assert recording.cap == SHORT.max_runners
