"""`make demo` end to end, headless: a short scenario through webhook, scale-up, the runner
simulation and scale-down on a devstack of its own; the chart and report hold the series."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from demo import DemoConfig, run_demo
from demo.recording import Recording, Summary
from demo.report import ReportPaths
from demo.scenario import parse_scenario

Replay = tuple[Recording, Summary, ReportPaths, str]

SHORT = [
    {"repo": "acme/api", "queued_at": 0, "duration": 90},
    {"repo": "acme/web", "queued_at": 2, "duration": 120},
    {"repo": "acme/docs", "queued_at": 4, "duration": 60},
    {"repo": "acme/api", "queued_at": 6, "duration": 90},
    {"repo": "acme/web", "queued_at": 8, "duration": 60},
    {"repo": "acme/api", "queued_at": 150, "duration": 60},
]

# Everything shortened so the whole replay lasts about 12 s of wall-clock time.
FAST = DemoConfig(speed=60, max_runners=4, idle_count=1, minimum_running_minutes=1,
                  runner_boot_minutes=2, instance_boot_seconds=20, scale_down_every_minutes=2,
                  tail_minutes=4, wall_limit_seconds=50)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    out = tmp_path_factory.mktemp("demo")
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=False)
    recording, summary, paths = run_demo(parse_scenario(SHORT, "short"), FAST, out, console)
    return recording, summary, paths, buffer.getvalue()


def test_demo_runs_every_job_of_the_scenario(replay: Replay) -> None:
    recording, summary, _, _ = replay

    assert recording.jobs_total == 6
    assert recording.jobs_done == 6
    assert len(recording.waits) == 6
    assert summary.median_wait is not None and summary.median_wait > 0


def test_demo_caps_instances_and_scales_down_to_the_idle_count(replay: Replay) -> None:
    recording, summary, _, _ = replay

    assert summary.peak_instances == FAST.max_runners
    assert summary.launched >= FAST.max_runners
    assert recording.samples[-1].instances == FAST.idle_count
    assert recording.samples[-1].busy == 0 and recording.samples[-1].queued == 0


def test_demo_records_the_series_of_queued_busy_and_idle(replay: Replay) -> None:
    recording, _, _, _ = replay
    samples = recording.samples

    assert len(samples) > 20
    assert [s.t for s in samples] == sorted(s.t for s in samples)
    assert max(s.queued for s in samples) >= 2  # the burst outran the runners
    assert max(s.busy for s in samples) >= 2
    assert max(s.idle for s in samples) >= 1
    assert all(s.busy + s.idle == s.instances for s in samples)


def test_demo_counts_the_functions_calls_by_kind(replay: Replay) -> None:
    recording, summary, _, _ = replay

    assert recording.aws_calls["ec2 CreateFleet"] >= 1
    assert recording.aws_calls["sqs SendMessage"] == 6
    assert recording.github_calls["GET /repos/{owner}/{repo}/actions/jobs/{job_id}"] >= 1
    assert any(kind.startswith("DELETE ") for kind in recording.github_calls)
    assert recording.invocations["webhook"] == 18  # queued, in_progress, completed per job
    assert recording.invocations["scale_down"] >= 2
    assert dict(summary.github_calls) == dict(recording.github_calls)


def test_demo_writes_the_chart_and_the_html_report(replay: Replay) -> None:
    _, _, paths, _ = replay

    assert paths.chart.read_bytes().startswith(b"\x89PNG")
    page = paths.html.read_text()
    assert "data:image/png;base64," in page and "median wait" in page
    assert (Path(paths.html).parent / "functions.log").stat().st_size > 0


def test_demo_live_view_prints_a_line_per_decision(replay: Replay) -> None:
    _, _, _, output = replay

    for kind in ("launched", "registered", "job started", "deregistered", "terminated"):
        assert kind in output, kind
