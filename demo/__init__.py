"""`make demo`: replay a scenario of workflow jobs against the whole system on devstack."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from demo.engine import Demo, DemoConfig
from demo.recording import Recording, Summary
from demo.report import ReportPaths, write_report
from demo.scenario import Scenario


def run_demo(scenario: Scenario, config: DemoConfig, out_dir: Path,
             console: Console) -> tuple[Recording, Summary, ReportPaths]:
    """Replay `scenario`, then write the chart and the HTML report into `out_dir`."""
    recording = Demo(scenario, config, console, out_dir / "functions.log").run()
    summary, paths = write_report(recording, out_dir)
    return recording, summary, paths


__all__ = ["DemoConfig", "run_demo"]
