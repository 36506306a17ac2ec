"""`make demo SCENARIO=spot`, shortened: spot interruptions hit busy runners mid-burst; the jobs
they kill are re-run and every job finally completes; the chart and summary show it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from demo import DemoConfig, run_demo
from demo.scenario import ScenarioError, load_scenario, parse_scenario

JOBS = [{"repo": "acme/api", "queued_at": n * 2, "duration": 150} for n in range(4)]
FAST = DemoConfig(speed=60, max_runners=4, idle_count=1, minimum_running_minutes=1,
                  runner_boot_minutes=2, instance_boot_seconds=20, scale_down_every_minutes=2,
                  tail_minutes=3, wall_limit_seconds=60, pool_size=0)


def test_interrupted_jobs_are_rerun_and_every_job_completes(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    scenario = parse_scenario({"interruptions": [{"at": 60, "count": 2}], "jobs": JOBS}, "spot")
    console = Console(file=io.StringIO(), width=120, force_terminal=False)

    recording, summary, paths = run_demo(scenario, FAST, tmp_path_factory.mktemp("spot"),
                                         console)

    assert [instance for _, instance in recording.interruptions] and \
        len(recording.interruptions) == 2
    assert (summary.interruptions, summary.jobs_lost, summary.reruns) == (2, 2, 2)
    assert recording.jobs_done == recording.jobs_total == 4
    rows = dict(summary.rows())
    assert rows["  every job finally completed"] == "yes"
    assert recording.invocations["ec2_events"] >= 2 * 3  # warning, shutting-down, terminated
    assert recording.github_calls["POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun"] == 2
    kinds = {kind for _, kind, _ in recording.events}
    assert {"interrupted", "spot reclaimed", "job lost", "re-run"} <= kinds
    assert paths.chart.read_bytes().startswith(b"\x89PNG")


def test_the_spot_scenario_interrupts_busy_runners_mid_burst() -> None:
    scenario = load_scenario("spot")
    assert scenario.interruptions and scenario.interruptions[0].at < scenario.jobs[-1].queued_at
    with pytest.raises(ScenarioError, match="interruption 0"):
        parse_scenario({"interruptions": [{"at": 1, "count": 0}], "jobs": JOBS})
