"""Structured logs are one JSON object per line with fields; metrics print as EMF documents."""

from __future__ import annotations

import json
import logging

import pytest

from chalicelib import logs, metrics


def test_log_line_is_json_with_message_fields_and_bound_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO")
    logs.clear()
    logs.bind(function="scale_up", request_id="r-1")
    logs.get_logger("chalicelib.services.scale_up").info("scale-up plan", owner="acme", launching=3)
    logs.get_logger("chalicelib.services.scale_up").debug("not shown")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["message"] == "scale-up plan"
    assert entry["owner"] == "acme" and entry["launching"] == 3
    assert entry["function"] == "scale_up" and entry["request_id"] == "r-1"
    assert entry["level"] == "INFO" and entry["logger"] == "ghr.scale_up"
    logs.clear()


def test_error_with_exc_info_names_the_error_type(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO")
    try:
        raise ValueError("bad thing")
    except ValueError:
        logs.get_logger("x").error("failed", exc_info=True, owner="acme")
    entry = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert entry["error_type"] == "ValueError" and entry["error"] == "bad thing"


def test_configure_twice_installs_one_handler() -> None:
    logs.configure("INFO")
    logs.configure("WARN")
    root = logging.getLogger("ghr")
    assert len([h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)]) == 1
    assert root.level == logging.WARNING
    logs.configure("INFO")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_configure_writes_each_line_once_when_the_root_logger_has_a_handler(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Lambda's runtime and `chalice local` both put a handler on the root logger.
    runtime = _Records()
    logging.root.addHandler(runtime)
    monkeypatch.setattr(logging.getLogger("ghr"), "propagate", True)  # as before configure
    try:
        logs.configure("INFO")
        logs.get_logger("chalicelib.services.scale_down").info("scale-down done")
    finally:
        logging.root.removeHandler(runtime)
    assert [r.getMessage() for r in runtime.records] == []
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_configure_pins_the_libraries_that_print_secrets_to_warning_at_any_root_level() -> None:
    names = ("botocore", "botocore.parsers", "boto3", "urllib3.connectionpool", "s3transfer",
             "requests")
    saved = {name: logging.getLogger(name).level for name in (*names, "")}
    try:
        for name in (*names, ""):
            logging.getLogger(name).setLevel(logging.DEBUG)  # "" is the root logger
        logs.configure("DEBUG")
        effective = {name: logging.getLogger(name).getEffectiveLevel() for name in names}
        assert effective == dict.fromkeys(names, logging.WARNING)
        assert logging.getLogger("ghr").getEffectiveLevel() == logging.DEBUG
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        logs.configure("INFO")


def test_metrics_flush_prints_emf_and_forgets(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.flush()
    capsys.readouterr()
    metrics.put("JobsLaunched", 2, owner="acme")
    metrics.put("JobsLaunched", 3, owner="acme")
    assert metrics.pending() == {"JobsLaunched": 5.0}
    metrics.flush(function="scale_up")
    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    spec = document["_aws"]["CloudWatchMetrics"][0]
    assert spec["Namespace"] == "GitHub Runners"  # the module's default namespace
    assert spec["Dimensions"] == [["function", "owner"]]
    assert document["JobsLaunched"] == [2.0, 3.0]
    assert metrics.pending() == {}


def test_metrics_go_to_the_configured_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.configure("Platform/CI")
    try:
        metrics.put("RunnersLaunched", 1)
        metrics.flush(function="scale_up")
    finally:
        metrics.configure()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Platform/CI"


def test_metrics_turned_off_print_nothing_and_forget(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.configure(enabled=False)
    try:
        metrics.put("RunnersLaunched", 1)
        metrics.flush(function="scale_up")
        assert metrics.pending() == {}
    finally:
        metrics.configure()
    assert capsys.readouterr().out == ""
