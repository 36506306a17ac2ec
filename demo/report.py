"""The end of a demo run: the summary table (rich), the chart (PNG) and the HTML report."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# Marks of the scheduled runs along the top of the chart: (marker, colour, height in axes units).
RUN_MARKS = {"adjust_pool": ("v", "tab:purple", 0.97), "sync_runner_binaries": ("D", "black", 0.92)}


def write_chart(recording: Recording, path: Path) -> Path:
    """Plot the instances (busy, idle runners, booting; stacked, so no line hides another) under
    the cap, with the scheduled runs marked, above the queued jobs, over simulated minutes."""
    import matplotlib

    # Agg renders to files only: no display needed, same output on every machine.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    samples = recording.samples
    minutes = [s.t / 60.0 for s in samples]
    if recording.runner_configs:  # one more panel: each runner configuration's instances
        figure, (top, middle, bottom) = plt.subplots(
            3, 1, sharex=True, figsize=(11, 8.6), dpi=100,
            gridspec_kw={"height_ratios": [3, 2.2, 1.2]})
        _config_panel(middle, recording, minutes)
    else:
        figure, (top, bottom) = plt.subplots(
            2, 1, sharex=True, figsize=(11, 6.4), dpi=100,
            gridspec_kw={"height_ratios": [3, 1.2]})
    layers = (("busy runners (running a job)", [s.busy for s in samples], "tab:green", None),
              ("idle runners (online, no job)", [s.idle_runners for s in samples], "tab:orange",
               None),
              ("booting instances (no runner yet)", [s.booting for s in samples], "tab:blue",
               "//"))
    base = [0] * len(samples)
    for label, values, colour, hatch in layers:
        upper = [b + v for b, v in zip(base, values, strict=True)]
        top.fill_between(minutes, base, upper, step="post", label=label, color=colour,
                         alpha=0.55, hatch=hatch, linewidth=0)
        base = upper
    top.step(minutes, [s.instances for s in samples], where="post", color="black",
             linewidth=0.8, label="instances (running + pending)")
    if recording.cap is not None:
        top.axhline(recording.cap, color="tab:red", linestyle="--", linewidth=1,
                    label=f"cap (RUNNERS_MAXIMUM_COUNT = {recording.cap})")
    scale_downs = [t / 60.0 for t, name in recording.runs if name == "scale_down"]
    for axes in (top, bottom):
        for index, minute in enumerate(scale_downs):
            axes.axvline(minute, color="grey", linestyle=":", linewidth=0.9,
                         label="scale_down run" if axes is top and index == 0 else None)
    for name, (marker, colour, height) in RUN_MARKS.items():
        times = [t / 60.0 for t, run in recording.runs if run == name]
        if times:
            top.plot(times, [height] * len(times), marker, color=colour, markersize=6,
                     transform=top.get_xaxis_transform(), clip_on=False, label=f"{name} run")
    if recording.interruptions:
        times = [t / 60.0 for t, _ in recording.interruptions]
        top.plot(times, [0.87] * len(times), "X", color="tab:red", markersize=8,
                 transform=top.get_xaxis_transform(), clip_on=False,
                 label="spot interruption (busy runner)")
        for minute in times:
            top.axvline(minute, color="tab:red", linestyle="--", linewidth=0.6, alpha=0.6)
    top.set_ylabel("instances")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Headroom above the cap for the run marks.
    top.set_ylim(bottom=0, top=max([recording.cap or 0, *base, 1]) * 1.25)
    top.set_title(f"{recording.scenario}: runners and queued jobs over time "
                  f"(time compressed {recording.speed:g}x)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    bottom.fill_between(minutes, [s.queued for s in samples], step="post", color="tab:red",
                        alpha=0.5, linewidth=0, label="queued jobs (waiting for a runner)")
    bottom.set_ylabel("jobs")
    bottom.set_xlabel("simulated minutes")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def _config_panel(axes: Any, recording: Recording, minutes: list[float]) -> None:
    """Each runner configuration's instances (solid) and busy runners (dashed), one colour
    each."""
    from matplotlib.ticker import MaxNLocator

    colours = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")
    for index, config in enumerate(recording.runner_configs):
        parts = [next((c for c in s.configs if c.config == config), None)
                 for s in recording.samples]
        colour = colours[index % len(colours)]
        axes.step(minutes, [p.instances if p else 0 for p in parts], where="post",
                  color=colour, linewidth=1.4, label=f"{config}: instances")
        axes.step(minutes, [p.busy if p else 0 for p in parts], where="post", color=colour,
                  linewidth=1.0, linestyle="--", label=f"{config}: busy runners")
    axes.set_ylabel("by configuration")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")


def _summary_rows(summary: Summary) -> str:
    """The summary's rows; a breakdown row (indented in `rows()`) is indented here too."""
    lines = []
    for name, value in summary.rows():
        css = " class=sub" if name.startswith("  ") else ""
        lines.append(f"<tr><td{css}>{html.escape(name.strip())}</td>"
                     f"<td class=n>{html.escape(value)}</td></tr>")
    return "\n".join(lines)


def _setting(name: str) -> str:
    """A variable's name in code type; a description as text."""
    text = html.escape(name)
    return f"<code>{text}</code>" if name.replace("_", "").isupper() else text


def _timeline_rows(recording: Recording) -> str:
    lines = []
    for t, kind, text in recording.events:
        minutes, seconds = divmod(int(t), 60)
        lines.append(f"<tr><td class=n>{minutes}:{seconds:02d}</td><td>{html.escape(kind)}</td>"
                     f"<td>{html.escape(text)}</td></tr>")
    return "\n".join(lines)


def write_html(recording: Recording, summary: Summary, chart: Path, path: Path) -> Path:
    """A self-contained HTML report: the chart embedded as base64, the summary, the settings in
    simulated units, and the timeline of every decision."""
    image = base64.b64encode(chart.read_bytes()).decode("ascii")
    config = "\n".join(
        f"<tr><td>{_setting(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in recording.config.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>github-runners demo: {html.escape(recording.scenario)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 66em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .25em .8em; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.sub {{ padding-left: 2.4em; color: #555; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>github-runners demo: {html.escape(recording.scenario)}</h1>
<p>Replayed on devstack with time compressed {recording.speed:g}x
({recording.wall_seconds:.0f} s of wall time). Times, waits and idle time are simulated.</p>
<img alt="busy, idle and booting instances under the cap, scheduled runs, and queued jobs
over time" src="data:image/png;base64,{image}">
<h2>Summary</h2>
<table><tr><th>figure</th><th>value</th></tr>
{_summary_rows(summary)}
</table>
<h2>Configuration</h2>
<p>In simulated units; where compression changed a value, the value the functions were given
follows.</p>
<table><tr><th>setting</th><th>value</th></tr>
{config}
</table>
<h2>Timeline</h2>
<table><tr><th>time</th><th>event</th><th>detail</th></tr>
{_timeline_rows(recording)}
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
