"""The demo engine: replay a scenario against the whole system on devstack, with time compressed.

Every step: queue the jobs that are due (in the GitHub fake, and as signed `workflow_job`
webhooks), drain the build queue into `scale_up`, step the runner simulation (instances register,
GitHub dispatches jobs, jobs finish), run `scale_down` on its schedule, then look at the world and
record a sample. Settings given in minutes are divided by the compression factor, so one simulated
minute of a 60x run lasts one second.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from demo.lambdas import Lambdas
from demo.live import LiveView
from demo.observe import Event, Observer
from demo.recording import Recording
from demo.scenario import Scenario

# What the runner simulation reports that the observer cannot see: registration as it happens
# (the observer reports launches, job starts with their wait, deregistrations, terminations).
SIMULATION_EVENTS = ("registered", "registration failed")


@dataclass(frozen=True)
class DemoConfig:
    """How the system is configured and how fast simulated time runs (times are simulated)."""

    # Simulated seconds per wall-clock second. The functions' own work takes wall-clock time that
    # the compression multiplies (a 1 s scale-up batch reads as 30 s of waiting at 30x), so
    # faster replays overstate the waits.
    speed: float = 30.0
    tick_seconds: float = 0.2  # wall-clock seconds between steps
    max_runners: int = 20
    idle_count: int = 2  # idle runners the scale-down window keeps
    minimum_running_minutes: float = 5.0
    runner_boot_minutes: float = 5.0  # RUNNER_BOOT_TIME_IN_MINUTES: orphan threshold
    instance_boot_seconds: float = 60.0  # how long a simulated instance takes to register
    queue_delay_seconds: float = 30.0  # the build queue's DelaySeconds
    scale_down_every_minutes: float = 5.0  # the schedule, `cron(*/5 * * * ? *)`
    tail_minutes: float = 8.0  # quiet time after the last job, for scale-down to reclaim
    wall_limit_seconds: float = 150.0  # stop replaying here whatever happens (< 3 minutes)

    def environment(self) -> dict[str, str]:
        """The functions' settings for this run (docs/REFERENCE.md §2), minutes compressed."""
        window = {"cron": "* * * * *", "timeZone": "UTC", "idleCount": self.idle_count,
                  "evictionStrategy": "oldest_first"}
        return {
            "ENABLE_ORGANIZATION_RUNNERS": "true",
            "ENABLE_EPHEMERAL_RUNNERS": "false",
            "RUNNERS_MAXIMUM_COUNT": str(self.max_runners),
            "SCALE_DOWN_CONFIG": json.dumps([window]),
            "MINIMUM_RUNNING_TIME_IN_MINUTES": _decimal(self.minimum_running_minutes / self.speed),
            "RUNNER_BOOT_TIME_IN_MINUTES": _decimal(self.runner_boot_minutes / self.speed),
            "LOG_LEVEL": "INFO",
        }


def _decimal(minutes: float) -> str:
    return f"{minutes:.6f}".rstrip("0").rstrip(".") or "0"


class Demo:
    """One replay of a scenario; `run()` returns what was recorded."""

    def __init__(self, scenario: Scenario, config: DemoConfig, console: Console,
                 log_path: Path) -> None:
        self.scenario = scenario
        self.config = config
        self.console = console
        self.log_path = log_path
        self.recording = Recording(scenario=scenario.name, speed=config.speed,
                                   jobs_total=len(scenario.jobs))
        self.webhooks: deque[tuple[str, int]] = deque()

    def run(self) -> Recording:
        """Start devstack, configure the system, replay the scenario, stop devstack."""
        from devstack import Devstack

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.console.status("starting devstack (moto + GitHub fake) ..."):
            stack = Devstack.start(validate_github=False)
        saved = dict(os.environ)
        try:
            with self.log_path.open("w", encoding="utf-8") as log:
                self._replay(stack, log)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            _reset_wiring()
            stack.stop()
        return self.recording

    def _configure(self, stack: Any) -> dict[str, str]:
        # The build queue's delivery delay (30 s, as the reference deployment) gives a running
        # reuse runner the time to take a new job before scale-up decides to launch another.
        # moto keeps its state per process, not per server: start from an empty AWS (the tests
        # run the demo in a process whose own devstack may have deployed already).
        stack.reset()
        stack.deploy(queue_delay_seconds=max(1, round(self.config.queue_delay_seconds /
                                                      self.config.speed)))
        for owner in self.scenario.owners:
            stack.github.add_installation(owner)
        env: dict[str, str] = stack.env(**self.config.environment())
        os.environ.update(env)
        _reset_wiring()
        _warm_up()
        shown = ("ENABLE_ORGANIZATION_RUNNERS", "ENABLE_EPHEMERAL_RUNNERS", "RUNNERS_MAXIMUM_COUNT",
                 "SCALE_DOWN_CONFIG", "MINIMUM_RUNNING_TIME_IN_MINUTES",
                 "RUNNER_BOOT_TIME_IN_MINUTES", "INSTANCE_TYPES", "INSTANCE_TARGET_CAPACITY_TYPE")
        self.recording.config = {k: env[k] for k in shown if k in env}
        self.recording.config["time compression"] = f"{self.config.speed:g}x"
        return env

    def _replay(self, stack: Any, log: Any) -> None:
        config = self.config
        env = self._configure(stack)
        # Every job event of the fake (queued, in_progress, completed) is delivered as a webhook.
        stack.github.on_job_event = lambda action, job: self.webhooks.append((action, job["id"]))
        lambdas = Lambdas(stack, log, visibility_seconds=max(1, round(30 / config.speed)))
        simulation = _simulation(stack, config, env["ENVIRONMENT"])
        observer = Observer(stack, config.speed, env["ENVIRONMENT"])
        pending = list(self.scenario.jobs)
        started = time.monotonic()
        next_scale_down = config.scale_down_every_minutes * 60.0
        quiet_since: float | None = None
        try:
            with LiveView(self.console, len(self.scenario.jobs)) as view:
                while True:
                    tick_started = time.monotonic()
                    now = (tick_started - started) * config.speed
                    while pending and pending[0].queued_at <= now:
                        job = pending.pop(0)
                        stack.github.add_job(job.owner, job.repo, list(job.labels),
                                             duration=job.duration / config.speed)
                    self._deliver_webhooks(lambdas)
                    lambdas.drain_build_queue()
                    for _, kind, detail in simulation.step():
                        if kind in SIMULATION_EVENTS:
                            view.event(Event(now, kind, detail))
                    self._deliver_webhooks(lambdas)
                    if now >= next_scale_down:
                        next_scale_down += config.scale_down_every_minutes * 60.0
                        view.event(Event(now, "scale-down", "scheduled run"))
                        lambdas.scale_down()
                    sample, events = observer.look(now)
                    self.recording.samples.append(sample)
                    for event in events:
                        view.event(event)
                    view.update(observer.completed, sample)
                    all_done = not pending and observer.completed >= len(self.scenario.jobs)
                    quiet_since = (quiet_since or now) if all_done else None
                    if quiet_since is not None and now - quiet_since >= config.tail_minutes * 60:
                        break
                    if time.monotonic() - started > config.wall_limit_seconds:
                        self.console.print("[yellow]wall-clock limit reached: stopping[/yellow]")
                        break
                    time.sleep(max(0.0, config.tick_seconds - (time.monotonic() - tick_started)))
        finally:
            stack.github.on_job_event = None
            lambdas.close()
        rec = self.recording
        rec.wall_seconds = time.monotonic() - started
        rec.jobs_done = observer.completed
        rec.waits = list(observer.waits.values())
        rec.launched, rec.terminated = observer.launched, observer.terminated
        rec.github_calls, rec.aws_calls = lambdas.stats.github, lambdas.stats.aws
        rec.invocations = lambdas.stats.counts

    def _deliver_webhooks(self, lambdas: Lambdas) -> None:
        while self.webhooks:
            action, job_id = self.webhooks.popleft()
            lambdas.post_webhook(action, job_id)


def _simulation(stack: Any, config: DemoConfig, environment: str) -> Any:
    from devstack.runner_sim import RunnerSimulation

    return RunnerSimulation(stack.github, stack.boto("ec2"), stack.boto("ssm"),
                            environment=environment, token_path=stack.deployment.token_path,
                            boot_delay=config.instance_boot_seconds / config.speed)


def _warm_up() -> None:
    """Import the handlers' modules and build their clients, as warm Lambda containers have.

    Creating a boto3 client costs a second on a small machine; at 30x that would read as half a
    minute of waiting in the first burst. `make bench` measures the cold start on its own.
    """
    import importlib

    from chalicelib import wiring

    for module in ("chalicelib.scale_up", "chalicelib.scale_down", "chalicelib.webhook"):
        importlib.import_module(module)
    for function in ("scale_up", "scale_down", "webhook"):
        wiring.settings(function)
    for service in ("ec2", "ssm", "sqs"):
        wiring.aws(service)
    wiring.github("scale_up")


def _reset_wiring() -> None:
    from chalicelib import wiring

    wiring.reset()
