"""The demo with several GitHub Apps (REFERENCE §10): the scenario's `apps`, scenarios by name,
and the calls per App in the summary (no devstack needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from demo.recording import Recording, summarize
from demo.scenario import ScenarioError, load_scenario, parse_scenario

JOB = {"repo": "acme/api", "queued_at": 0, "duration": 60}


def test_the_two_apps_scenario_is_found_by_name_and_asks_for_two_apps() -> None:
    scenario = load_scenario("two-apps")

    assert scenario.apps == 2
    assert scenario.owners == ("acme", "globex")
    assert load_scenario("demo/scenarios/two-apps.json") == scenario


def test_a_plain_list_of_jobs_replays_with_one_app() -> None:
    assert parse_scenario([JOB]).apps == 1
    assert parse_scenario({"jobs": [JOB]}).apps == 1


@pytest.mark.parametrize(("data", "expected"), [
    ({"apps": 0, "jobs": [JOB]}, "apps must be a whole number from 1 to 5"),
    ({"apps": 6, "jobs": [JOB]}, "apps must be"),
    ({"apps": True, "jobs": [JOB]}, "apps must be"),
    ({"apps": 2}, "a non-empty list of jobs"),
    ({"apps": 2, "jobs": [JOB], "app": 3}, "unknown field(s) app"),
])
def test_a_bad_scenario_object_is_named(data: object, expected: str) -> None:
    with pytest.raises(ScenarioError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(data, "s")


def test_an_unknown_scenario_name_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no-such-scenario"):
        load_scenario("no-such-scenario")


def test_the_summary_shows_the_calls_of_each_app_when_there_are_several() -> None:
    recording = Recording(scenario="s", speed=30, github_calls=Counter({"GET /x": 7}),
                          github_calls_by_app=Counter({"App 12345": 4, "App 12346": 3}))
    rows = dict(summarize(recording).rows())

    assert rows["GitHub calls by App"] == "7"
    assert rows["  App 12345"] == "4" and rows["  App 12346"] == "3"


def test_the_summary_leaves_the_breakdown_out_with_one_app() -> None:
    recording = Recording(scenario="s", speed=30, github_calls=Counter({"GET /x": 7}),
                          github_calls_by_app=Counter({"App 12345": 6, "anonymous": 1}))

    assert "GitHub calls by App" not in dict(summarize(recording).rows())
