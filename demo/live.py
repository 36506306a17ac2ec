"""The live view: a progress bar of jobs done, and a line per decision as it happens."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from demo.observe import Event
from demo.recording import Sample

STYLES = {
    "queued": "dim",
    "launched": "cyan",
    "registered": "blue",
    "stopped": "yellow",
    "job started": "green",
    "deregistered": "yellow",
    "terminated": "magenta",
    "scale-down": "dim",
    "pool": "cyan",
    "binaries": "dim",
    "new release": "dim",
    "interrupted": "bold red",
    "spot reclaimed": "red",
    "job lost": "red",
    "re-run": "green",
}


class LiveView:
    """A rich progress display; event lines scroll above it."""

    def __init__(self, console: Console, total_jobs: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]jobs done"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("jobs", total=total_jobs, status="")

    def __enter__(self) -> LiveView:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.progress.stop()

    def event(self, event: Event) -> None:
        """Print one decision line, stamped with its simulated time."""
        minutes, seconds = divmod(int(event.t), 60)
        # Text, not markup: details are data (runner names, repositories), never styling.
        line = Text.assemble((f"{minutes:3d}:{seconds:02d} ", "dim"),
                             (f"{event.kind:<13} ", STYLES.get(event.kind, "red")), event.text)
        self.progress.console.print(line, highlight=False)

    def update(self, done: int, sample: Sample) -> None:
        """Move the bar and show the current counts."""
        minutes = sample.t / 60.0
        status = (f"t={minutes:5.1f} min  queued {sample.queued:2d}  busy {sample.busy:2d}  "
                  f"idle {sample.idle_runners:2d}  booting {sample.booting:2d}  "
                  f"instances {sample.instances:2d}")
        self.progress.update(self.task, completed=done, status=status)
