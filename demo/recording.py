"""What a demo run records (a time series and counts) and the summary computed from it."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConfigSample:
    """One runner configuration's instances at one instant (REFERENCE §6)."""

    config: str  # its id
    busy: int
    idle: int
    instances: int
    booting: int = 0


@dataclass(frozen=True)
class Sample:
    """The world at one instant, `t` simulated seconds after the start."""

    t: float
    queued: int  # jobs queued in GitHub, not yet started
    busy: int  # runners running a job
    idle: int  # instances running or pending without a job (booting, or an idle runner)
    instances: int  # running + pending instances
    # Of `idle`: instances whose runner is not online yet. They cost like idle runners but can
    # take no job: a chart that showed them as idle runners would show waste where there is none.
    booting: int = 0
    # With several runner configurations: the same, per configuration, in list order.
    configs: tuple[ConfigSample, ...] = ()

    @property
    def idle_runners(self) -> int:
        """Online runners without a job: capacity a queued job could use now."""
        return self.idle - self.booting


@dataclass
class Recording:
    """Everything a demo run observed; the report is computed from it alone."""

    scenario: str
    speed: float
    config: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # simulated seconds, queued -> started
    jobs_total: int = 0
    jobs_done: int = 0
    launched: int = 0
    terminated: int = 0
    github_calls: Counter[str] = field(default_factory=Counter)
    aws_calls: Counter[str] = field(default_factory=Counter)
    invocations: Counter[str] = field(default_factory=Counter)
    github_calls_by_app: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    cap: int | None = None  # RUNNERS_MAXIMUM_COUNT, drawn on the chart
    # Scheduled runs (scale-down, pool, binaries sync): (simulated seconds, function).
    runs: list[tuple[float, str]] = field(default_factory=list)
    # Every line of the live view: (simulated seconds, kind, detail).
    events: list[tuple[float, str, str]] = field(default_factory=list)
    # Spot interruptions: (simulated seconds, instance id); jobs lost with their runner, and
    # the re-runs GitHub started for them.
    interruptions: list[tuple[float, str]] = field(default_factory=list)
    jobs_lost: int = 0
    reruns: int = 0
    # Several runner configurations (REFERENCE §6): their ids in list order, the jobs the webhook
    # routes to each (by the scenario's labels), those completed, their waits, the instances
    # launched for each, and each one's cap.
    runner_configs: tuple[str, ...] = ()
    config_jobs: Counter[str] = field(default_factory=Counter)
    config_done: Counter[str] = field(default_factory=Counter)
    config_waits: dict[str, list[float]] = field(default_factory=dict)
    config_launched: Counter[str] = field(default_factory=Counter)
    config_caps: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigSummary:
    """The figures of one runner configuration."""

    config: str
    jobs: int
    jobs_done: int
    median_wait: float | None
    p95_wait: float | None
    launched: int
    peak_instances: int
    idle_instance_minutes: float
    cap: str = ""

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) pairs, indented under the configuration's own row."""
        cap = f" (cap {self.cap} per owner)" if self.cap else ""
        return [
            (f"configuration {self.config}{cap}", ""),
            ("  jobs (completed / total)", f"{self.jobs_done} / {self.jobs}"),
            ("  median wait", _duration(self.median_wait)),
            ("  95th-percentile wait", _duration(self.p95_wait)),
            ("  instances launched", str(self.launched)),
            ("  peak instances", str(self.peak_instances)),
            ("  idle instance-minutes", f"{self.idle_instance_minutes:.1f}"),
        ]


@dataclass(frozen=True)
class Summary:
    """The figures of the end-of-run table."""

    jobs: int
    jobs_done: int
    median_wait: float | None
    p95_wait: float | None
    launched: int
    terminated: int
    peak_instances: int
    idle_instance_minutes: float
    github_calls: tuple[tuple[str, int], ...]
    aws_calls: tuple[tuple[str, int], ...]
    invocations: tuple[tuple[str, int], ...] = ()
    booting_instance_minutes: float = 0.0
    github_calls_by_app: tuple[tuple[str, int], ...] = ()
    interruptions: int = 0
    jobs_lost: int = 0
    reruns: int = 0
    by_config: tuple[ConfigSummary, ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) pairs in display order."""
        rows = [
            ("jobs (completed / total)", f"{self.jobs_done} / {self.jobs}"),
            *self._spot_rows(),
            ("median wait, queued to started", _duration(self.median_wait)),
            ("95th-percentile wait", _duration(self.p95_wait)),
            ("instances launched", str(self.launched)),
            ("instances terminated", str(self.terminated)),
            ("peak instances", str(self.peak_instances)),
            ("idle instance-minutes", f"{self.idle_instance_minutes:.1f}"),
            ("  of which booting", f"{self.booting_instance_minutes:.1f}"),
            *(row for config in self.by_config for row in config.rows()),
            ("GitHub calls", str(sum(n for _, n in self.github_calls))),
        ]
        rows += [(f"  {kind}", str(n)) for kind, n in self.github_calls]
        if len([app for app, _ in self.github_calls_by_app if app != "anonymous"]) > 1:
            rows.append(("GitHub calls by App", str(sum(n for _, n in self.github_calls_by_app))))
            rows += [(f"  {app}", str(n)) for app, n in self.github_calls_by_app]
        rows.append(("AWS calls", str(sum(n for _, n in self.aws_calls))))
        rows += [(f"  {kind}", str(n)) for kind, n in self.aws_calls]
        if self.invocations:
            rows.append(("function invocations", str(sum(n for _, n in self.invocations))))
            rows += [(f"  {name}", str(n)) for name, n in self.invocations]
        return rows


    def _spot_rows(self) -> list[tuple[str, str]]:
        """The spot interruptions' rows, when there were any."""
        if not self.interruptions:
            return []
        return [("spot interruptions (busy runners)", str(self.interruptions)),
                ("  jobs lost with their runner", str(self.jobs_lost)),
                ("  re-runs started by GitHub", str(self.reruns)),
                ("  every job finally completed", "yes" if self.jobs_done == self.jobs
                 else f"no: {self.jobs - self.jobs_done} not")]


def summarize(recording: Recording) -> Summary:
    """The summary figures of a recording (times in simulated seconds and minutes)."""
    samples = recording.samples
    idle_seconds = sum(
        before.idle * (after.t - before.t) for before, after in itertools.pairwise(samples)
    )
    booting_seconds = sum(
        before.booting * (after.t - before.t) for before, after in itertools.pairwise(samples)
    )
    waits = sorted(recording.waits)
    return Summary(
        jobs=recording.jobs_total,
        jobs_done=recording.jobs_done,
        median_wait=statistics.median(waits) if waits else None,
        p95_wait=percentile(waits, 95) if waits else None,
        launched=recording.launched,
        terminated=recording.terminated,
        peak_instances=max((s.instances for s in samples), default=0),
        idle_instance_minutes=idle_seconds / 60.0,
        booting_instance_minutes=booting_seconds / 60.0,
        github_calls=_by_count(recording.github_calls),
        aws_calls=_by_count(recording.aws_calls),
        invocations=_by_count(recording.invocations),
        github_calls_by_app=tuple(sorted(recording.github_calls_by_app.items())),
        interruptions=len(recording.interruptions),
        jobs_lost=recording.jobs_lost,
        reruns=recording.reruns,
        by_config=tuple(_config_summary(recording, config)
                        for config in recording.runner_configs),
    )


def _config_summary(recording: Recording, config: str) -> ConfigSummary:
    """One configuration's figures, from its part of each sample."""
    mine = [next((c for c in s.configs if c.config == config), None) for s in recording.samples]
    idle_seconds = sum(
        part.idle * (after.t - sample.t)
        for (sample, part), (after, _) in itertools.pairwise(
            zip(recording.samples, mine, strict=True))
        if part is not None
    )
    waits = sorted(recording.config_waits.get(config, []))
    return ConfigSummary(
        config=config,
        jobs=recording.config_jobs[config],
        jobs_done=recording.config_done[config],
        median_wait=statistics.median(waits) if waits else None,
        p95_wait=percentile(waits, 95) if waits else None,
        launched=recording.config_launched[config],
        peak_instances=max((c.instances for c in mine if c is not None), default=0),
        idle_instance_minutes=idle_seconds / 60.0,
        cap=recording.config_caps.get(config, ""),
    )


def _by_count(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of `values` (non-empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
