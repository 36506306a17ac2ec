"""The demo engine: replay a scenario against the whole system on devstack, with time compressed.

Every step: queue the jobs that are due (in the GitHub fake, and as signed `workflow_job`
webhooks), drain the build queue into `scale_up`, step the runner simulation (instances register,
GitHub dispatches jobs, jobs finish), run `scale_down`, the pool's `adjust_pool` and
`sync_runner_binaries` on their schedules, then look at the world and record a sample. Settings
given in minutes are divided by the compression factor, so one simulated minute of a 60x run
lasts one second.
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
from demo.scenario import Interruption, Scenario
from demo.schedules import Schedules

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
    # The pool: `adjust_pool` every `pool_every_minutes` while jobs are being queued (a working
    # day's schedule), keeping `pool_size` runners free; None = the idle count, so the pool and
    # scale-down's idle window agree on how many idle runners to keep; 0 = no pool.
    pool_size: int | None = None
    pool_every_minutes: float = 5.0
    # `sync_runner_binaries` runs at the start and then on this schedule; GitHub publishes a new
    # runner release at `new_release_at_minutes` (None: never), which the next run caches.
    sync_every_minutes: float = 15.0
    new_release_at_minutes: float | None = 10.0
    tail_minutes: float = 8.0  # quiet time after the last job, for scale-down to reclaim
    wall_limit_seconds: float = 150.0  # stop replaying here whatever happens (< 3 minutes)

    @property
    def pool(self) -> int:
        """The pool size `adjust_pool` is invoked with."""
        return self.idle_count if self.pool_size is None else self.pool_size

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

    def shown(self) -> dict[str, str]:
        """The configuration as the report shows it: in simulated units, with what the
        functions were given where compression changed the value."""
        def minutes(value: float) -> str:
            return f"{value:g} min (given as {_decimal(value / self.speed)} at {self.speed:g}x)"

        def seconds(value: float) -> str:
            return f"{value:g} s (given as {max(1, round(value / self.speed))} s)"

        return {
            "ENABLE_ORGANIZATION_RUNNERS": "true",
            "ENABLE_EPHEMERAL_RUNNERS": "false (reuse runners)",
            "RUNNERS_MAXIMUM_COUNT": str(self.max_runners),
            "SCALE_DOWN_CONFIG": f"keep {self.idle_count} idle runner(s), oldest evicted first",
            "MINIMUM_RUNNING_TIME_IN_MINUTES": minutes(self.minimum_running_minutes),
            "RUNNER_BOOT_TIME_IN_MINUTES": minutes(self.runner_boot_minutes),
            "build queue delay (DelayWebhookEvent)": seconds(self.queue_delay_seconds),
            "scale_down schedule": f"every {self.scale_down_every_minutes:g} min",
            "pool (adjust_pool)": (f"poolSize {self.pool} every {self.pool_every_minutes:g} min "
                                   "while jobs are queued") if self.pool else "none",
            "sync_runner_binaries schedule": f"at the start, then every "
                                             f"{self.sync_every_minutes:g} min",
            "instance boot (simulated)": f"{self.instance_boot_seconds:g} s to register",
            "time compression": f"{self.speed:g}x (one simulated minute = "
                                f"{60 / self.speed:g} s)",
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
        if self.scenario.runner_configs:  # one launch template each, and the SSM parameter
            stack.add_runner_configs(self.scenario.runner_configs)
        for owner in self.scenario.owners:
            stack.github.add_installation(owner)
        for _ in range(self.scenario.apps - 1):  # more Apps, on every owner (REFERENCE §10)
            stack.add_app(*self.scenario.owners)
        environment = stack.deployment.environment
        # What infra/ creates for sync_runner_binaries: the bucket of the runner cache.
        bucket = f"{environment}-runner-binaries"
        stack.boto("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "LocationConstraint": stack.boto("s3").meta.region_name})
        env: dict[str, str] = stack.env(**self.config.environment(),
                                        RUNNER_OWNER=self.scenario.owners[0],
                                        RUNNER_BINARIES_BUCKET=bucket)
        os.environ.update(env)
        _reset_wiring()
        _warm_up()
        self.recording.config = self.config.shown()
        if self.scenario.apps > 1:
            ids = ", ".join(str(app.app_id) for app in stack.github.apps)
            self.recording.config["GitHub Apps"] = (
                f"{self.scenario.apps} ({ids}), each installed on every owner; the first is "
                "the webhook's")
        self.recording.cap = self.config.max_runners
        if self.scenario.runner_configs:
            self._show_runner_configs(stack)
        if self.scenario.interruptions:
            self.recording.config["spot interruptions"] = ", ".join(
                f"{i.count} busy runner(s) at {i.at / 60:g} min" for i in
                self.scenario.interruptions) + "; EC2 takes each back 2 min after its notice"
        return env

    def _show_runner_configs(self, stack: Any) -> None:
        """The configurations in the report's settings, and what the summary needs of them."""
        rec = self.recording
        rec.runner_configs = self.scenario.config_ids
        rec.cap = None  # each configuration has its own cap, shown with its figures
        environments = stack.deployment.runner_environments
        overridden = {name for config in stack.deployment.runner_configs
                      for name in config.get("environment", {})}
        for name in overridden & rec.config.keys():
            rec.config[name] += " (top level; some runner configurations override it)"
        for config in stack.deployment.runner_configs:
            values = config.get("environment", {})
            rec.config_caps[config["id"]] = values.get("RUNNERS_MAXIMUM_COUNT",
                                                       str(self.config.max_runners))
            matcher = config.get("matcherConfig")
            labels = (" | ".join(",".join(s) for s in matcher["labelMatchers"])
                      if matcher else "its own labels")
            mode = ("exact" if matcher and matcher.get("exactMatch") else
                    "bidirectional" if matcher and matcher.get("bidirectionalLabelMatch")
                    else "any label") if matcher else "exact"
            overrides = ", ".join(f"{k}={v}" for k, v in values.items()
                                  if k != "LAUNCH_TEMPLATE_NAME")
            rec.config[f"runner configuration {config['id']}"] = (
                f"jobs labelled {labels} ({mode}); {overrides}; instances tagged "
                f"ghr:environment={environments[config['id']]}")

    def _replay(self, stack: Any, log: Any) -> None:
        config = self.config
        env = self._configure(stack)
        # Every job event of the fake (queued, in_progress, completed) is delivered as a webhook.
        stack.github.on_job_event = lambda action, job: self.webhooks.append((action, job["id"]))
        lambdas = Lambdas(stack, log, visibility_seconds=max(1, round(30 / config.speed)))
        simulation, observer = self._watchers(stack, env["ENVIRONMENT"])
        spot = _spot(simulation, config)
        interruptions = list(self.scenario.interruptions)
        schedules = Schedules(config, lambdas, stack.github, env["RUNNER_BINARIES_BUCKET"],
                              self.scenario.last_queued_at, self.scenario.config_ids)
        pending = list(self.scenario.jobs)
        started = time.monotonic()
        quiet_since: float | None = None
        try:
            with LiveView(self.console, len(self.scenario.jobs)) as view:

                def show(event: Event) -> None:
                    view.event(event)
                    self.recording.events.append((event.t, event.kind, event.text))

                while True:
                    tick_started = time.monotonic()
                    now = (tick_started - started) * config.speed
                    while pending and pending[0].queued_at <= now:
                        self._queue(stack, pending.pop(0), observer)
                    self._deliver_webhooks(lambdas)
                    lambdas.drain_build_queue()
                    stepped = [Event(now, kind, detail) for _, kind, detail
                               in simulation.step() if kind in SIMULATION_EVENTS]
                    for event in (*stepped, *self._interrupt(now, interruptions, spot,
                                                             lambdas)):
                        show(event)
                    self._deliver_webhooks(lambdas)
                    for event in schedules.due(now):
                        show(event)
                    sample, events = observer.look(now)
                    self.recording.samples.append(sample)
                    for event in events:
                        show(event)
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
        rec.github_calls_by_app = lambdas.stats.github_by_app
        rec.invocations = lambdas.stats.counts
        rec.runs = schedules.runs
        rec.jobs_lost, rec.reruns = observer.lost, observer.reruns
        rec.config_waits = observer.waits_by_config()
        rec.config_done = observer.completed_by_config()
        rec.config_launched = observer.launched_by_config

    def _watchers(self, stack: Any, environment: str) -> tuple[Any, Observer]:
        """The runner simulation and the observer, of every runner configuration's instances
        (each registering with its machine's labels) when the scenario has several."""
        if not self.scenario.runner_configs:
            return (_simulation(stack, self.config, environment),
                    Observer(stack, self.config.speed, environment))
        environments = stack.deployment.runner_environments
        machines = stack.deployment.machine_labels
        simulation = _simulation(stack, self.config,
                                 {e: machines[e] for e in environments.values()})
        return simulation, Observer(stack, self.config.speed,
                                    {e: i for i, e in environments.items()})

    def _queue(self, stack: Any, job: Any, observer: Observer) -> None:
        """GitHub queues a job of the scenario; noted with the configuration it is routed to."""
        job_id = stack.github.add_job(job.owner, job.repo, list(job.labels),
                                      duration=job.duration / self.config.speed)
        routed = self.scenario.config_of(job)
        if routed is not None:
            observer.job_config[job_id] = routed
            self.recording.config_jobs[routed] += 1

    def _interrupt(self, now: float, due: list[Interruption], spot: Any,
                   lambdas: Lambdas) -> list[Event]:
        """Spot interruptions of busy runners when the scenario says so, instances taken back
        when their notice runs out, and every EC2 event delivered to ec2_events."""
        events: list[Event] = []
        # An interruption waits for busy runners to hit (the burst may not have started yet).
        while due and due[0].at <= now and (busy := spot.busy_instances()):
            first = due.pop(0)
            for instance_id in busy[:first.count]:
                spot.interrupt(instance_id)
                self.recording.interruptions.append((now, instance_id))
                events.append(Event(now, "interrupted", f"{instance_id}: EC2's two-minute "
                                                        "spot interruption notice"))
            if first.count > len(busy):
                due.insert(0, Interruption(first.at, first.count - len(busy)))
        events.extend(Event(now, kind, detail) for _, kind, detail in spot.step())
        for event in spot.take_events():
            lambdas.ec2_event(event)
        return events

    def _deliver_webhooks(self, lambdas: Lambdas) -> None:
        while self.webhooks:
            action, job_id = self.webhooks.popleft()
            lambdas.post_webhook(action, job_id)


def _simulation(stack: Any, config: DemoConfig,
                environment: str | dict[str, tuple[str, ...]]) -> Any:
    from devstack.runner_sim import RunnerSimulation

    return RunnerSimulation(stack.github, stack.boto("ec2"), stack.boto("ssm"),
                            environment=environment, token_path=stack.deployment.token_path,
                            boot_delay=config.instance_boot_seconds / config.speed)


def _spot(simulation: Any, config: DemoConfig) -> Any:
    from devstack.spot import SpotInterruptions

    # EC2 takes an instance back two minutes (simulated) after its notice.
    return SpotInterruptions(simulation, notice_seconds=120.0 / config.speed)


def _warm_up() -> None:
    """Import the handlers' modules and build their clients, as warm Lambda containers have.

    Creating a boto3 client costs a second on a small machine; at 30x that would read as half a
    minute of waiting in the first burst. `make bench` measures the cold start on its own.
    """
    import importlib

    from chalicelib import wiring

    for module in ("chalicelib.services.scale_up", "chalicelib.services.scale_down",
                   "chalicelib.services.webhook", "chalicelib.services.ec2_events"):
        importlib.import_module(module)
    for function in ("scale_up", "scale_down", "webhook", "adjust_pool",
                     "sync_runner_binaries", "ec2_events"):
        wiring.settings(function)
    for service in ("ec2", "ssm", "sqs", "s3"):
        wiring.aws(service)
    wiring.github("scale_up")


def _reset_wiring() -> None:
    from chalicelib import wiring

    wiring.reset()
