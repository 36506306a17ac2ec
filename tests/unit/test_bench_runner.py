"""The benchmark runner: medians over runs, targets, failures and BENCHMARKS.md."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from bench.common import (
    Figures,
    Target,
    Workload,
    combine,
    fmt,
    markdown,
    run_all,
    run_workload,
)


def test_combine_takes_medians_and_keeps_the_spread_of_noisy_figures() -> None:
    figures, spread = combine([
        {"calls": 110, "wall_s": 3.0, "note": "none", "config": "x"},
        {"calls": 110, "wall_s": 1.0, "note": "retry x1", "config": "x"},
        {"calls": 110, "wall_s": 2.0, "note": "none", "config": "x"},
    ])

    assert figures == {"calls": 110, "wall_s": 2.0, "note": "none | retry x1", "config": "x"}
    assert spread == {"wall_s": (1.0, 3.0)}


def test_target_is_met_strictly_or_not() -> None:
    assert Target("x", "<", 10).met(9.9) is True
    assert Target("x", "<", 10).met(10) is False
    assert Target("x", "<=", 10).met(10) is True
    assert Target("x", "<", 10).met("n/a") is None


def test_an_exact_target_is_met_by_that_value_only() -> None:
    assert Target("x", "==", 900).met(900) is True
    assert Target("x", "==", 900).met(1000) is False
    assert Target("x", "==", 900).text() == "== 900"


def test_run_workload_reports_a_failure_instead_of_raising() -> None:
    def broken() -> Figures:
        raise RuntimeError("moto is not up")

    result = run_workload(Workload("w", "W", broken, runs=3))

    assert result.error == "RuntimeError: moto is not up"
    assert result.figures == {}


def test_a_missing_or_missed_target_is_named() -> None:
    workload = Workload("w", "W", lambda: {"calls": 60}, runs=2,
                        targets=(Target("calls", "<=", 55), Target("wall_s", "<", 1)))

    result = run_workload(workload)

    assert result.runs == 2
    assert result.missed == ["calls", "wall_s"]


def test_run_all_writes_benchmarks_md_with_command_machine_and_figures(tmp_path: Path) -> None:
    good = Workload("good", "Good workload", lambda: {"calls": 42, "wall_s": 0.25},
                    targets=(Target("calls", "<=", 50),), about="Counts calls.")
    output = tmp_path / "BENCHMARKS.md"
    console = Console(file=io.StringIO(), width=120)

    status = run_all([good], runs=None, output=output, command="make bench", console=console)

    text = output.read_text()
    assert status == 0
    assert "`make bench`" in text and "- nproc: " in text and "- python: " in text
    assert "| calls | 42 | <= 50 ✓ |" in text
    assert "Every workload ran and every target was met." in text


def test_markdown_lists_failed_workloads_and_missed_targets() -> None:
    failed = run_workload(Workload("bad", "Bad", lambda: 1 / 0))  # type: ignore[arg-type,return-value]
    missed = run_workload(Workload("slow", "Slow", lambda: {"wall_s": 90.0},
                                   targets=(Target("wall_s", "<", 60),)))

    text = markdown([failed, missed], command="python -m bench")

    assert "**Failed:** `ZeroDivisionError: division by zero`" in text
    assert "| wall_s | 90.0 | < 60 ✗ MISSED |" in text
    assert "Failed workloads: bad." in text and "Targets missed: slow.wall_s." in text


def test_fmt_rounds_floats_to_three_significant_digits() -> None:
    assert fmt(0.123456) == "0.123"
    assert fmt(12.345) == "12.3"
    assert fmt(1234.5) == "1234"
    assert fmt(7) == "7"


def test_run_all_fails_on_a_failed_workload_and_on_a_missed_target_only_when_strict(
        tmp_path: Path) -> None:
    slow = Workload("slow", "Slow", lambda: {"wall_s": 90.0}, targets=(Target("wall_s", "<", 60),))
    broken = Workload("broken", "Broken", lambda: {"x": 1 / 0})
    quiet = Console(file=io.StringIO(), width=120)

    assert run_all([slow], None, None, "make bench", console=quiet) == 0
    assert run_all([slow], None, None, "make bench", console=quiet, strict=True) == 1
    assert run_all([broken], None, None, "make bench", console=quiet) == 1


def test_run_workload_keeps_the_workloads_stdout_out_of_the_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    def chatty() -> Figures:
        print('{"message": "a function log line"}')
        return {"calls": 1}

    run_workload(Workload("chatty", "Chatty", chatty))

    assert "function log line" not in capsys.readouterr().out


def test_problems_logged_counts_warnings_and_errors_by_message() -> None:
    from bench.common import logged_problems

    log = "\n".join([
        '{"level": "INFO", "message": "scale-up plan"}',
        '{"level": "WARNING", "message": "github retry", "failure": "502 Bad Gateway"}',
        '{"level": "WARNING", "message": "github retry", "failure": "502 Bad Gateway"}',
        '{"level": "ERROR", "message": "launch failed", "error": "InsufficientInstanceCapacity"}',
        "not json",
    ])

    assert logged_problems(log) == ("github retry: 502 Bad Gateway x2; "
                              "launch failed: InsufficientInstanceCapacity x1")
    assert logged_problems('{"level": "INFO", "message": "ok"}') == "none"


def test_update_rewrites_the_sections_run_and_keeps_the_others(tmp_path: Path) -> None:
    from bench.update import updated

    first = Workload("first", "First", lambda: {"calls": 60}, targets=(Target("calls", "<=", 50),))
    second = Workload("second", "Second", lambda: {"calls": 7})
    titles = [("first", "First"), ("second", "Second")]
    console = Console(file=io.StringIO(), width=120)
    output = tmp_path / "BENCHMARKS.md"
    run_all([first, second], runs=None, output=output, command="make bench", console=console)
    assert "Targets missed: first.calls." in output.read_text()

    fixed = Workload("first", "First", lambda: {"calls": 40}, targets=(Target("calls", "<=", 50),))
    old = output.read_text()
    run_all([fixed], runs=None, output=output, command="bench --only first --update",
            console=console, render=lambda results, command: updated(old, results, titles,
                                                                    command))

    text = output.read_text()
    assert "| calls | 40 | <= 50 ✓ |" in text and "| calls | 7 |" in text  # new and kept
    assert text.index("### First") < text.index("### Second")
    assert "Sections `first` measured again by `bench --only first --update`" in text
    assert "Every workload ran and every target was met." in text
    assert text.count("## Verdict") == 1 and text.count("## Machine") == 1
