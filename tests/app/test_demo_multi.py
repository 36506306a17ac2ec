"""`make demo SCENARIO=multi`, shortened: Linux x64, Linux arm64 and GPU jobs together behind one
webhook (REFERENCE §6, issue 16 item 6). Each job is routed to its configuration, launched on that
configuration's instances, run by a runner carrying its labels; the summary and the chart show
each configuration."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from demo import DemoConfig, run_demo
from demo.recording import Recording, Summary
from demo.report import ReportPaths
from demo.scenario import ScenarioError, load_scenario, parse_scenario

X64 = ["self-hosted", "linux", "x64", "cpu"]
ARM = ["self-hosted", "linux", "arm64"]
GPU = ["self-hosted", "linux", "gpu"]
CONFIGS: list[dict[str, Any]] = [
    {"id": "linux-x64",
     "matcherConfig": {"labelMatchers": [X64], "exactMatch": True, "priority": 10},
     "environment": {"RUNNERS_MAXIMUM_COUNT": "2", "RUNNER_LABELS": "cpu"}},
    {"id": "linux-arm64",
     "matcherConfig": {"labelMatchers": [ARM], "exactMatch": True, "priority": 20},
     "environment": {"INSTANCE_TYPES": "m7g.large", "RUNNER_ARCHITECTURE": "arm64",
                     "RUNNERS_MAXIMUM_COUNT": "2"}},
    {"id": "gpu",
     "matcherConfig": {"labelMatchers": [GPU], "bidirectionalLabelMatch": True},
     "environment": {"INSTANCE_TYPES": "g5.xlarge", "INSTANCE_TARGET_CAPACITY_TYPE": "on-demand",
                     "ENABLE_EPHEMERAL_RUNNERS": "true", "RUNNER_LABELS": "gpu",
                     "RUNNERS_MAXIMUM_COUNT": "1"}},
]
JOBS = [
    {"repo": "acme/api", "labels": X64, "queued_at": 0, "duration": 90},
    {"repo": "acme/api", "labels": ARM, "queued_at": 1, "duration": 90},
    {"repo": "acme/ml", "labels": GPU, "queued_at": 2, "duration": 60},
    {"repo": "acme/web", "labels": X64, "queued_at": 3, "duration": 60},
    {"repo": "acme/web", "labels": ARM, "queued_at": 4, "duration": 60},
]
# Short as tests/app/test_demo.py's: about 20 s of wall-clock time.
FAST = DemoConfig(speed=60, max_runners=4, idle_count=0, minimum_running_minutes=1,
                  runner_boot_minutes=2, instance_boot_seconds=20, scale_down_every_minutes=2,
                  tail_minutes=3, wall_limit_seconds=55, pool_size=0)

Replay = tuple[Recording, Summary, ReportPaths, str]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    out = tmp_path_factory.mktemp("multi")
    buffer = io.StringIO()
    console = Console(file=buffer, width=140, force_terminal=False)
    scenario = parse_scenario({"runnerConfigs": CONFIGS, "jobs": JOBS}, "multi")
    recording, summary, paths = run_demo(scenario, FAST, out, console)
    return recording, summary, paths, buffer.getvalue()


def test_every_configurations_jobs_complete_on_their_own_instances(replay: Replay) -> None:
    recording, summary, _, _ = replay

    assert recording.jobs_done == recording.jobs_total == 5
    assert recording.runner_configs == ("linux-x64", "linux-arm64", "gpu")
    by_config = {c.config: c for c in summary.by_config}
    assert {k: (c.jobs, c.jobs_done) for k, c in by_config.items()} == {
        "linux-x64": (2, 2), "linux-arm64": (2, 2), "gpu": (1, 1)}
    assert all(c.launched >= 1 for c in by_config.values())
    assert by_config["gpu"].peak_instances <= 1  # its own cap, not the top-level one
    assert all(c.median_wait is not None for c in by_config.values())
    # Every job ran on a runner of the configuration it was routed to.
    started = [text for _, kind, text in recording.events if kind == "job started"]
    assert len(started) == 5
    launched = [text for _, kind, text in recording.events if kind == "launched"]
    assert {text.split()[1] for text in launched} == {
        "(linux-x64)", "(linux-arm64)", "(gpu)"}


def test_scale_down_reclaims_every_configuration(replay: Replay) -> None:
    recording, _, _, _ = replay

    last = recording.samples[-1]
    assert last.instances == 0 and all(c.instances == 0 for c in last.configs)
    assert recording.invocations["scale_down"] >= 1


def test_summary_and_chart_show_each_configuration(replay: Replay) -> None:
    recording, summary, paths, _ = replay

    rows = dict(summary.rows())
    assert "configuration gpu (cap 1 per owner)" in rows
    assert rows["  jobs (completed / total)"]  # the configurations' rows are there
    assert paths.chart.read_bytes().startswith(b"\x89PNG")
    page = paths.html.read_text()
    assert "configuration linux-arm64" in page and "runner configuration gpu" in page
    assert recording.config["runner configuration linux-arm64"].startswith(
        "jobs labelled self-hosted,linux,arm64 (exact)")
    assert recording.config["RUNNERS_MAXIMUM_COUNT"] == (
        "4 (top level; some runner configurations override it)")


def test_the_multi_scenario_mixes_three_configurations() -> None:
    scenario = load_scenario("multi")
    assert scenario.config_ids == ("linux-x64", "linux-arm64", "gpu")
    routed = {scenario.config_of(job) for job in scenario.jobs}
    assert routed == {"linux-x64", "linux-arm64", "gpu"}


@pytest.mark.parametrize(("configs", "message"), [
    ([], "runnerConfigs must be a non-empty list"),
    ([{"id": "Bad_Id"}], r"runnerConfigs\[0\]: id must be"),
    ([{"id": "a"}, {"id": "a"}], "id a repeated"),
    ([{"id": "a", "environment": {"RUNNERS_MAXIMUM_COUNT": 3}}], "environment must be"),
    ([{"id": "a", "matcherConfig": {"labelMatchers": "linux"}}], "labelMatchers must be"),
    ([{"id": "a", "matcherConfig": {"labelMatchers": [["x"]], "exactMatch": "yes",
                                    "colour": 1}}],
     "unknown field colour.*exactMatch must be true or false"),
    ([{"id": "a", "matcherConfig": {"labelMatchers": [["windows"]], "exactMatch": True}}],
     "job 0: labels self-hosted, linux, x64 match no runner configuration"),
])
def test_bad_runner_configurations_are_named(configs: list[Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario({"runnerConfigs": configs,
                        "jobs": [{"repo": "a/b", "queued_at": 0, "duration": 1}]}, "bad")
