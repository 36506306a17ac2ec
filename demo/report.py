"""The end of a demo run: the summary table (rich), the chart (PNG) and the HTML report."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from demo.recording import Recording, Summary, summarize


@dataclass(frozen=True)
class ReportPaths:
    """Where the report files were written."""

    chart: Path
    html: Path


def summary_table(summary: Summary, title: str = "Demo summary") -> Table:
    """The summary as a rich table."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in summary.rows():
        table.add_row(name, value)
    return table


def write_chart(recording: Recording, path: Path) -> Path:
    """Plot queued jobs, busy and idle runners (and all instances) over simulated minutes."""
    import matplotlib

    # Agg renders to files only: no display needed, same output on every machine.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    minutes = [s.t / 60.0 for s in recording.samples]
    figure, axes = plt.subplots(figsize=(10, 4.8), dpi=100)
    axes.step(minutes, [s.queued for s in recording.samples], where="post",
              label="queued jobs", color="tab:red")
    axes.step(minutes, [s.busy for s in recording.samples], where="post",
              label="busy runners", color="tab:green")
    axes.step(minutes, [s.idle for s in recording.samples], where="post",
              label="idle runners (no job)", color="tab:orange")
    axes.step(minutes, [s.instances for s in recording.samples], where="post",
              label="instances", color="tab:blue", linestyle="--", linewidth=1)
    axes.set_xlabel("simulated minutes")
    axes.set_ylabel("count")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"{recording.scenario}: queued jobs and runners over time "
                   f"(time compressed {recording.speed:g}x)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def write_html(recording: Recording, summary: Summary, chart: Path, path: Path) -> Path:
    """A self-contained HTML report: the chart embedded as base64, the summary, the settings."""
    image = base64.b64encode(chart.read_bytes()).decode("ascii")
    rows = "\n".join(
        f"<tr><td>{html.escape(name)}</td><td class=n>{html.escape(value)}</td></tr>"
        for name, value in summary.rows()
    )
    config = "\n".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(v)}</code></td></tr>"
        for k, v in sorted(recording.config.items())
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>github-runners demo: {html.escape(recording.scenario)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .25em .8em; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>github-runners demo: {html.escape(recording.scenario)}</h1>
<p>Replayed on devstack with time compressed {recording.speed:g}x
({recording.wall_seconds:.0f} s of wall time). Waits and idle time are in simulated time.</p>
<img alt="queued jobs, busy and idle runners over time" src="data:image/png;base64,{image}">
<h2>Summary</h2>
<table><tr><th>figure</th><th>value</th></tr>
{rows}
</table>
<h2>Configuration</h2>
<table><tr><th>variable</th><th>value</th></tr>
{config}
</table>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_report(recording: Recording, out_dir: Path) -> tuple[Summary, ReportPaths]:
    """Write the chart and the HTML report into `out_dir`; return the summary and the paths."""
    summary = summarize(recording)
    chart = write_chart(recording, out_dir / "demo-chart.png")
    page = write_html(recording, summary, chart, out_dir / "demo-report.html")
    return summary, ReportPaths(chart=chart, html=page)
