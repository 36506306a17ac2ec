"""Several GitHub Apps (REFERENCE §10): a 1000-job burst served by two Apps, against one App.

The same burst as `burst_1000` but with the queued check on (one GitHub call per job, the call
that spends an installation's budget in a burst), reuse runners and no cap, run twice on one
org: with one App, then with two Apps installed on it. The figures are the calls each App made,
how evenly the two installation budgets were spent, and the calls per runner of both runs,
which must not differ: choosing an App costs no call.
"""

from __future__ import annotations

import json

from bench.common import Figures
from bench.scale_up import ORG, _burst

N = 1000
ENV = {"RUNNERS_MAXIMUM_COUNT": "-1", "ENABLE_JOB_QUEUED_CHECK": "true"}


def bench_burst_two_apps(n: int = N) -> Figures:
    """`n` jobs of one org with one App, then with two; calls per App and per runner."""
    one = _burst([ORG], n, **ENV)
    two = _burst([ORG], n, apps=2, **ENV)
    by_app = {int(app): count for app, count in
              json.loads(str(two["_github_calls_by_app"])).items() if app != "None"}
    first, second = sorted(by_app)
    return {
        "config": f"reuse runners, queued check on, no cap, {n} jobs of one org, 2 Apps",
        "runners": two["runners"],
        "github_calls": two["github_calls"],
        "github_calls_app_1": by_app[first],
        "github_calls_app_2": by_app[second],
        "app_share_spread": round(abs(by_app[first] - by_app[second]) / max(1, sum(
            by_app.values())), 4),
        "github_calls_per_runner": two["github_calls_per_runner"],
        "github_calls_per_runner_one_app": one["github_calls_per_runner"],
        "aws_calls_per_runner": two["aws_calls_per_runner"],
        "aws_calls_per_runner_one_app": one["aws_calls_per_runner"],
        "cold_extra_github_calls": two["cold_extra_github_calls"],
        "cold_extra_github_calls_one_app": one["cold_extra_github_calls"],
        "wall_s": two["wall_s"],
        "wall_s_one_app": one["wall_s"],
        "left_in_queue": two["left_in_queue"],
        "problems_logged": two["problems_logged"],
        "github_calls_by_route": two["github_calls_by_route"],
    }

