"""The benchmark runner: workloads, medians over runs, targets, the table and BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

Value = float | int | str
Figures = dict[str, Value]


@dataclass(frozen=True)
class Target:
    """A goal for one figure: `figure <op> limit`, with the issue that sets it."""

    figure: str
    op: str  # "<", "<=" or "=="
    limit: float

    def met(self, value: Value) -> bool | None:
        """Whether `value` meets the target (None when the value is not a number)."""
        if isinstance(value, str):
            return None
        if self.op == "==":
            return value == self.limit
        return value < self.limit if self.op == "<" else value <= self.limit

    def text(self) -> str:
        """The target as written in the table."""
        return f"{self.op} {self.limit:g}"


@dataclass(frozen=True)
class Workload:
    """A named benchmark: `run()` returns its figures; repeated `runs` times for medians."""

    name: str
    title: str
    run: Callable[[], Figures]
    runs: int = 1
    targets: tuple[Target, ...] = ()
    about: str = ""


@dataclass(frozen=True)
class Result:
    """A workload's figures (medians over its runs), their spreads, and any failure."""

    workload: Workload
    figures: Figures
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    runs: int = 0
    seconds: float = 0.0
    error: str | None = None

    def target_of(self, figure: str) -> Target | None:
        """The target set on `figure`, if any."""
        return next((t for t in self.workload.targets if t.figure == figure), None)

    @property
    def missed(self) -> list[str]:
        """Figures that miss their target, or that a target names but the run did not report."""
        names = []
        for target in self.workload.targets:
            value = self.figures.get(target.figure)
            if value is None or target.met(value) is False:
                names.append(target.figure)
        return names


def run_workload(workload: Workload, runs: int | None = None) -> Result:
    """Run `workload` `runs` times; numeric figures become medians, others the last value."""
    count = max(1, runs if runs is not None else workload.runs)
    started = time.perf_counter()
    samples: list[Figures] = []
    try:
        # The functions log JSON lines to stdout: not part of the report.
        with contextlib.redirect_stdout(io.StringIO()):
            for _ in range(count):
                samples.append(workload.run())
    except Exception as error:  # a failing workload is reported, the others still run
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return Result(workload, {}, runs=len(samples), error=detail,
                      seconds=time.perf_counter() - started)
    figures, spread = combine(samples)
    return Result(workload, figures, spread, runs=count, seconds=time.perf_counter() - started)


def combine(samples: Sequence[Figures]) -> tuple[Figures, dict[str, tuple[float, float]]]:
    """Medians of the numeric figures across runs, and (min, max) where runs differed."""
    figures: Figures = {}
    spread: dict[str, tuple[float, float]] = {}
    for name in dict.fromkeys(k for sample in samples for k in sample):
        values = [sample[name] for sample in samples if name in sample]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) != len(values):
            # Text (a configuration, what was logged): each distinct value once, in run order.
            distinct = list(dict.fromkeys(str(v) for v in values))
            figures[name] = distinct[0] if len(distinct) == 1 else " | ".join(distinct)
            continue
        median = statistics.median(numbers)
        figures[name] = int(median) if all(isinstance(v, int) for v in numbers) and \
            median == int(median) else float(median)
        if min(numbers) != max(numbers):
            spread[name] = (float(min(numbers)), float(max(numbers)))
    return figures, spread


def fmt(value: Value) -> str:
    """A figure for display: integers as is, floats to 3 significant digits (at least 1 decimal)."""
    if isinstance(value, bool | str | int):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _value_text(result: Result, name: str) -> str:
    text = fmt(result.figures[name])
    if name in result.spread:
        low, high = result.spread[name]
        text += f" ({fmt(low)} to {fmt(high)})"
    return text


def _verdict(result: Result, name: str) -> str:
    target = result.target_of(name)
    if target is None:
        return ""
    met = target.met(result.figures[name])
    return target.text() + ("" if met is None else " ✓" if met else " ✗ MISSED")


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    figures = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if hasattr(os, "getloadavg"):
        # Other work on the machine inflates every time below: say how busy it was.
        figures["load average (1, 5, 15 min) when written"] = ", ".join(
            f"{n:.2f}" for n in os.getloadavg())
    return figures


def console_table(results: Sequence[Result]) -> Table:
    """All results as one rich table."""
    table = Table(title="make bench", header_style="bold")
    table.add_column("workload", max_width=28)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    table.add_column("target")
    for result in results:
        title = f"{result.workload.title}\n[dim]{result.runs} run(s), {result.seconds:.0f} s[/dim]"
        if result.error:
            table.add_row(title, "[red]failed[/red]", "", result.error)
            table.add_section()
            continue
        for index, name in enumerate(result.figures):
            value = result.figures[name]
            # Numbers line up on the right; descriptions (call breakdowns) read from the left.
            shown = Text(_value_text(result, name),
                         justify="left" if isinstance(value, str) else "right")
            table.add_row(title if index == 0 else "", name, shown, _verdict(result, name))
        table.add_section()
    return table


def markdown(results: Sequence[Result], command: str, when: datetime | None = None) -> str:
    """BENCHMARKS.md: the command, the machine and every figure, with the targets."""
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {stamp}; regenerate it with `make bench`, do not edit by hand.",
        "API-call counts are deterministic. Times and memory are noisy: each is the median of the",
        "workload's runs, with (min to max) when runs differed. Times are against devstack (moto",
        "and the GitHub fake on 127.0.0.1), so they measure this code plus the emulators, not AWS.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine().items()],
        "",
        "## Figures",
        "",
    ]
    for result in results:
        lines += [f"### {result.workload.title}", ""]
        if result.workload.about:
            lines += [result.workload.about, ""]
        lines.append(f"{result.runs} run(s), {result.seconds:.1f} s in all.")
        lines.append("")
        if result.error:
            lines += [f"**Failed:** `{result.error}`", ""]
            continue
        lines += ["| figure | value | target |", "|---|---:|---|"]
        for name in result.figures:
            lines.append(f"| {name} | {_value_text(result, name)} | {_verdict(result, name)} |")
        lines.append("")
    missed = [f"{r.workload.name}.{name}" for r in results for name in r.missed]
    failed = [r.workload.name for r in results if r.error]
    lines += ["## Verdict", ""]
    if not missed and not failed:
        lines.append("Every workload ran and every target was met.")
    else:
        if failed:
            lines.append(f"Failed workloads: {', '.join(failed)}.")
        if missed:
            lines.append(f"Targets missed: {', '.join(missed)}.")
    return "\n".join(lines) + "\n"


def run_all(workloads: Sequence[Workload], runs: int | None, output: Path | None,
            command: str, console: Console | None = None, strict: bool = False,
            render: Callable[[Sequence[Result], str], str] = markdown) -> int:
    """Run, print the table, write `output` (as `render` makes it); status 1 if a workload
    failed (or, with `strict`, missed a target)."""
    if console is None:
        # Bound to today's stdout: the workloads' own output is redirected while they run.
        console = Console(file=sys.stdout)
        if not console.is_terminal:
            console = Console(file=sys.stdout, width=140)  # a log, not a window: room to read
    results: list[Result] = []
    for workload in workloads:
        with console.status(f"running {workload.title} ..."):
            result = run_workload(workload, runs)
        results.append(result)
        state = "[red]failed[/red]" if result.error else "done"
        console.print(f"{workload.name}: {state} in {result.seconds:.1f} s")
    console.print(console_table(results))
    if output is not None:
        output.write_text(render(results, command), encoding="utf-8")
        console.print(f"wrote {output}")
    failed = any(r.error for r in results)
    missed = any(r.missed for r in results)
    if missed:
        console.print("[yellow]some targets were missed: see the Verdict in the report[/yellow]")
    return 1 if failed or (strict and missed) else 0


def python_command() -> str:
    """How this run was started, for BENCHMARKS.md."""
    args = " ".join(sys.argv[1:])
    return f"python -m bench{(' ' + args) if args else ''}"


def problem_counts(log: str) -> Counter[str]:
    """The functions' WARNING and ERROR log lines, counted by message (and error, if any)."""
    seen: Counter[str] = Counter()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("WARNING", "ERROR"):
            detail = entry.get("error") or entry.get("failure") or ""
            seen[f"{entry.get('message')}{': ' + str(detail)[:120] if detail else ''}"] += 1
    return seen


def problems_text(seen: Counter[str]) -> str:
    """Counted problems as one line, the most frequent first ("none" without any)."""
    return "; ".join(f"{text} x{count}" for text, count in seen.most_common()) or "none"


def logged_problems(log: str) -> str:
    """The functions' WARNING and ERROR log lines, counted by message (and error, if any): why
    a message came back for retry, when one did."""
    return problems_text(problem_counts(log))
