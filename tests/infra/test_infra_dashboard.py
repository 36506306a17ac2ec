"""The dashboard and alarms of infra/src/dashboard.yaml: every custom metric they show is one the
functions emit, under the dimensions it is emitted with, read from the functions' source (so a
renamed metric or an added dimension fails here, not on a blank graph in production), in the
namespace the functions are given (the MetricsNamespace parameter, defaulting to theirs)."""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from infra_support import ROOT

from infra import build
from infra.envmap import FUNCTION_ENVIRONMENT, Param

SEARCH = re.compile(r"SEARCH\('\{(?P<schema>(?:\$\{[^}]*\}|[^}])*)\}\s*"
                    r"MetricName=\"(?P<name>[^\"]+)\"")
SUBSTITUTION = re.compile(r"\$\{(?P<name>[^!}][^}]*)\}")
# How the dashboard names the namespace: the parameter the functions' METRICS_NAMESPACE is.
NAMESPACE_PARAMETER = "${MetricsNamespace}"
Emitted = dict[str, set[frozenset[str]]]


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]:
        yield path, ast.parse(path.read_text(), filename=str(path))


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments."""
    found = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            found[node.targets[0].id] = node.value.value
    return found


def _calls(tree: ast.Module, method: str) -> Iterator[ast.Call]:
    """Calls of `metrics.<method>(...)`."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == method and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "metrics"):
            yield node


def emitted_metrics() -> tuple[str, Emitted]:
    """(the EMF namespace, metric name -> the dimension sets it is emitted with)."""
    trees = list(_sources())
    everywhere: dict[str, set[str]] = defaultdict(set)
    for _, tree in trees:
        for name, value in _constants(tree).items():
            everywhere[name].add(value)
    namespaces = [c["NAMESPACE"] for _, t in trees if "NAMESPACE" in (c := _constants(t))
                  and any(isinstance(n, ast.FunctionDef) and n.name == "flush" for n in t.body)]
    assert len(namespaces) == 1, "the metrics module (NAMESPACE and flush) was not found"

    def text(node: ast.expr, local: dict[str, str], where: str) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in local:
                return local[node.id]
            if len(everywhere[node.id]) == 1:  # a constant imported from another module
                return next(iter(everywhere[node.id]))
        raise AssertionError(f"{where}: cannot read a metric or dimension name statically")

    context: set[str] = set()
    puts: list[tuple[str, frozenset[str]]] = []
    for path, tree in trees:
        local = _constants(tree)
        for call in _calls(tree, "flush"):
            context |= {k.arg for k in call.keywords if k.arg is not None}
        for call in _calls(tree, "put"):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            dimensions: set[str] = set()
            for keyword in call.keywords:
                if keyword.arg is None and isinstance(keyword.value, ast.Dict):
                    dimensions |= {text(k, local, where) for k in keyword.value.keys
                                   if k is not None}
                elif keyword.arg is None:
                    raise AssertionError(f"{where}: dimensions passed as **{{...}} of a variable")
                elif keyword.arg != "unit":
                    dimensions.add(keyword.arg)
            puts.append((text(call.args[0], local, where), frozenset(dimensions)))
    assert context, "no metrics.flush(...) call found"
    emitted: Emitted = defaultdict(set)
    for name, dimensions in puts:
        emitted[name].add(dimensions | context)
    return namespaces[0], dict(emitted)


def _widget_metrics(body: dict[str, Any]) -> Iterator[tuple[str, str, frozenset[str], str]]:
    """(namespace, metric, dimension names, widget title) of every metric a widget graphs."""
    for widget in body["widgets"]:
        properties = widget["properties"]
        for entry in properties.get("metrics", []):
            head = entry[0]
            if isinstance(head, dict):
                match = SEARCH.search(head["expression"])
                assert match, f"{properties['title']}: an expression that is not a SEARCH"
                namespace, *dimensions = (p.strip() for p in match["schema"].split(","))
                # A namespace with a space is quoted in a SEARCH schema.
                yield (namespace.strip('"'), match["name"], frozenset(dimensions),
                       properties["title"])
            else:
                pairs = [p for p in entry[2:] if not isinstance(p, dict)]
                yield head, entry[1], frozenset(pairs[0::2]), properties["title"]


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return build.load(build.SRC / "dashboard.yaml")


@pytest.fixture(scope="module")
def emitted() -> tuple[str, Emitted]:
    return emitted_metrics()


def test_the_namespace_parameter_defaults_to_the_functions_and_reaches_them(
        source: dict[str, Any], emitted: tuple[str, Emitted]) -> None:
    parameters = source["Parameters"]

    assert parameters["MetricsNamespace"]["Default"] == emitted[0] == "GitHub Runners"
    assert FUNCTION_ENVIRONMENT["METRICS_NAMESPACE"] == Param("MetricsNamespace")
    assert FUNCTION_ENVIRONMENT["ENABLE_METRICS"] == Param("EnableMetrics")
    assert parameters["EnableMetrics"]["Default"] == "true"


def test_every_custom_metric_of_the_dashboard_is_emitted_with_those_dimensions(
        source: dict[str, Any], emitted: tuple[str, Emitted]) -> None:
    _, names = emitted
    body = source["Resources"]["Dashboard"]["Properties"]["DashboardBody"]

    custom = [m for m in _widget_metrics(body) if m[0] == NAMESPACE_PARAMETER]

    assert len({name for _, name, _, _ in custom}) >= 8
    for _, name, dimensions, title in custom:
        assert name in names, f"{title}: {name} is not emitted by any function"
        assert dimensions in names[name], (
            f"{title}: {name} is emitted with {sorted(map(sorted, names[name]))}, "
            f"not {sorted(dimensions)}")
    assert {m[0] for m in _widget_metrics(body)} <= {NAMESPACE_PARAMETER, "AWS/SQS",
                                                      "AWS/Lambda"}


def test_the_custom_metric_alarms_watch_emitted_metrics(source: dict[str, Any],
                                                         emitted: tuple[str, Emitted]) -> None:
    _, names = emitted
    alarms = {key: r["Properties"] for key, r in source["Resources"].items()
              if r["Type"] == "AWS::CloudWatch::Alarm" and "Namespace" in r["Properties"]
              and r["Properties"]["Namespace"] == {"Ref": "MetricsNamespace"}}

    assert alarms
    for key, alarm in alarms.items():
        dimensions = frozenset(d["Name"] for d in alarm.get("Dimensions", []))
        assert dimensions in names[alarm["MetricName"]], key


def test_the_dashboard_shows_what_an_operator_watches(source: dict[str, Any]) -> None:
    body = source["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    text = json.dumps(body)

    for wanted in ("'p50'", "'p90'", "JobQueuedSeconds", "FleetErrors", "RunnersLaunched",
                   "RunnersTerminated", "ApproximateNumberOfMessagesVisible", "Errors",
                   "Duration", ":alarm:${Prefix}-github-rate-limit-low",
                   ":alarm:${Prefix}-queued-builds-dlq-not-empty"):
        assert wanted in text, wanted


def test_every_alarm_the_dashboard_shows_is_one_of_the_stack(
        merge_template: dict[str, Any]) -> None:
    resources = merge_template["Resources"]
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = resources["Dashboard"]
    # An alarm that exists only under a condition of its own (the pool schedules' dead-letter
    # alarm) cannot be named: the dashboard would depend on a resource that may not exist.
    alarms = {key: r for key, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"
              and r.get("Condition") in (None, dashboard.get("Condition"))}
    names = {r["Properties"]["AlarmName"]["Fn::Sub"] for r in alarms.values()}

    shown = set(re.findall(r":alarm:([^\"]+)", body))

    assert shown == names
    assert set(dashboard["DependsOn"]) == set(alarms)


def test_the_alarms_cover_dead_letters_function_errors_and_the_rate_limit(
        merge_template: dict[str, Any]) -> None:
    resources = merge_template["Resources"]
    errors = resources["FunctionErrorsAlarm"]["Properties"]
    rate = resources["GitHubRateLimitAlarm"]["Properties"]
    dead_letters = resources["BuildQueueDeadLetterAlarm"]["Properties"]

    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in errors["Metrics"]
               if "MetricStat" in m}
    assert watched == {"Errors"}
    assert len([m for m in errors["Metrics"] if "MetricStat" in m]) == 5  # every function
    assert (rate["ComparisonOperator"], rate["Threshold"]) == (
        "LessThanThreshold", {"Ref": "GitHubRateLimitAlarmThreshold"})
    # 10% of an App installation's 5,000 requests an hour.
    assert merge_template["Parameters"]["GitHubRateLimitAlarmThreshold"]["Default"] == 500
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"
    for alarm in (errors, rate, dead_letters):
        assert alarm["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"


def test_monitoring_is_on_by_default_and_optional(merge_template: dict[str, Any]) -> None:
    assert merge_template["Parameters"]["EnableMonitoring"]["Default"] == "true"
    for key in ("Dashboard", "FunctionErrorsAlarm", "GitHubRateLimitAlarm"):
        assert merge_template["Resources"][key]["Condition"] == "MonitoringEnabled", key


def test_the_generated_dashboard_body_is_json_naming_only_what_the_stack_has(
        stack_template: dict[str, Any]) -> None:
    body = stack_template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    known = {*stack_template["Parameters"], *stack_template["Resources"], "AWS::Region",
             "AWS::Partition", "AWS::AccountId"}

    for match in SUBSTITUTION.finditer(body):
        assert match["name"].split(".")[0] in known, match["name"]
    # What CloudFormation hands CloudWatch: substituted values, and ${!x} as a literal ${x}.
    rendered = SUBSTITUTION.sub("value", body).replace("${!", "${")
    assert json.loads(rendered)["widgets"]
