"""The demo's scenario files, summary figures, chart and HTML report (no devstack needed)."""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from demo.recording import Recording, Sample, percentile, summarize
from demo.report import write_report
from demo.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario


def test_default_scenario_is_one_org_three_repos_a_burst_of_30_then_a_trickle() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)

    assert scenario.owners == ("acme",)
    assert len(scenario.repos) == 3
    burst = [job for job in scenario.jobs if job.queued_at < 120]
    trickle = [job for job in scenario.jobs if job.queued_at >= 120]
    assert len(burst) == 30
    assert trickle and all(b.queued_at - a.queued_at >= 60 for a, b in itertools.pairwise(trickle))
    assert [job.queued_at for job in scenario.jobs] == sorted(j.queued_at for j in scenario.jobs)


def test_load_scenario_reads_yaml_with_default_labels(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("- {repo: org/a, queued_at: 5, duration: 60}\n"
                    "- {repo: org/b, labels: [self-hosted, gpu], queued_at: 0, duration: 30.5}\n")

    scenario = load_scenario(path)

    assert scenario.name == "mine"
    assert [job.full_repo for job in scenario.jobs] == ["org/b", "org/a"]
    assert scenario.jobs[0].labels == ("self-hosted", "gpu")
    assert scenario.jobs[1].labels == ("self-hosted", "linux", "x64")
    assert scenario.jobs[0].duration == 30.5


def test_load_scenario_names_every_bad_job(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([
        {"repo": "no-owner", "queued_at": 0, "duration": 1},
        {"repo": "o/r", "queued_at": -1, "duration": 1},
        {"repo": "o/r", "queued_at": 0, "duration": 0},
        {"repo": "o/r", "queued_at": 0, "duration": True},
        {"repo": "o/r", "queued_at": 0, "duration": 1, "colour": "red"},
        {"repo": "o/r", "queued_at": 0, "duration": 1},
    ]))

    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)

    message = str(raised.value)
    for index in range(5):
        assert f"job {index}:" in message
    assert "job 5" not in message


@pytest.mark.parametrize("text", ["{}", "[]", "not json"])
def test_load_scenario_rejects_what_is_not_a_list_of_jobs(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)

    with pytest.raises(ScenarioError):
        load_scenario(path)


def _recording() -> Recording:
    samples = [
        Sample(t=0, queued=5, busy=0, idle=0, instances=0),
        Sample(t=60, queued=5, busy=0, idle=3, instances=3),  # booting: idle for 60 s
        Sample(t=120, queued=2, busy=3, idle=0, instances=3),
        Sample(t=180, queued=0, busy=2, idle=1, instances=3),  # one idle for 60 s
        Sample(t=240, queued=0, busy=0, idle=0, instances=0),
    ]
    return Recording(
        scenario="unit", speed=60, samples=samples, waits=[10, 20, 30, 40, 100],
        jobs_total=5, jobs_done=5, launched=3, terminated=3,
        github_calls=Counter({"GET /repos/{owner}/{repo}/actions/jobs/{job_id}": 5}),
        aws_calls=Counter({"ec2 CreateFleet": 1, "ssm PutParameter": 3}),
    )


def test_summarize_computes_waits_peak_and_idle_instance_minutes() -> None:
    summary = summarize(_recording())

    assert summary.median_wait == 30
    assert summary.p95_wait == 100
    assert summary.peak_instances == 3
    assert summary.idle_instance_minutes == pytest.approx((3 * 60 + 1 * 60) / 60)
    assert summary.aws_calls == (("ssm PutParameter", 3), ("ec2 CreateFleet", 1))
    assert ("GitHub calls", "5") in summary.rows()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0], 95) == 1.0
    assert percentile([float(n) for n in range(1, 21)], 95) == 19.0
    assert percentile([float(n) for n in range(1, 101)], 50) == 50.0


def test_write_report_writes_the_chart_and_an_html_page_embedding_it(tmp_path: Path) -> None:
    summary, paths = write_report(_recording(), tmp_path / "out")

    png = paths.chart.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    page = paths.html.read_text()
    assert base64.b64encode(png).decode() in page
    assert "idle instance-minutes" in page and "ec2 CreateFleet" in page
    assert summary.jobs == 5
