"""`python -m demo [--scenario FILE]`: the live demo, then the summary, chart and report paths."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from demo import DemoConfig, run_demo
from demo.report import summary_table
from demo.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the demo, print the summary; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                        help="JSON or YAML list of jobs, or the name of one in demo/scenarios "
                             "(two-apps); see demo/README.md")
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="where the chart, report and function logs go")
    parser.add_argument("--speed", type=float, default=DemoConfig.speed,
                        help="simulated seconds per wall-clock second (default %(default)g)")
    parser.add_argument("--max-runners", type=int, default=DemoConfig.max_runners)
    parser.add_argument("--idle-count", type=int, default=DemoConfig.idle_count)
    parser.add_argument("--pool-size", type=int, default=None,
                        help="poolSize of adjust_pool (default: the idle count; 0: no pool)")
    args = parser.parse_args(argv)
    # The functions log to stdout while they run; the live view keeps the terminal's own.
    console = Console(file=sys.__stdout__)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    config = DemoConfig(speed=args.speed, max_runners=args.max_runners,
                        idle_count=args.idle_count, pool_size=args.pool_size)
    apps = f" with {scenario.apps} GitHub Apps" if scenario.apps > 1 else ""
    console.print(f"[bold]Replaying {scenario.name}[/bold]: {len(scenario.jobs)} jobs across "
                  f"{', '.join(scenario.repos)}{apps}; time compressed {config.speed:g}x "
                  f"(one simulated minute = {60 / config.speed:g} s)")
    recording, summary, paths = run_demo(scenario, config, args.out, console)
    console.print(summary_table(summary, title=f"{scenario.name}: summary (simulated time)"))
    console.print(f"chart:  {paths.chart}")
    console.print(f"report: {paths.html}")
    console.print(f"function logs: {args.out / 'functions.log'}")
    console.print(f"wall time: {recording.wall_seconds:.0f} s")
    return 0 if recording.jobs_done == recording.jobs_total else 1


if __name__ == "__main__":
    sys.exit(main())
