"""Deterministic interleavings of the real services: each actor (a scale-up container, a pool
run, a scale-down run, GitHub handing a job to a runner) runs in its own thread, and only one
runs at a time. Before every call an actor makes to an outside system (EC2, SSM, the state
table, GitHub), it yields, and a list of choices drawn by hypothesis says who runs next. The
calls themselves reach moto and the GitHub fake for real, so what is checked is the code that
ships, at the granularity where containers really interleave: between two outside calls.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from scale_down_support import launch, register

from chalicelib import wiring
from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.ssm import Ssm
from chalicelib.aws.state import StateTable
from chalicelib.github.client import GitHubClient
from chalicelib.messages import JobMessage
from chalicelib.services.capacity import CapacityLedger
from chalicelib.services.job_claims import claim_key
from chalicelib.settings import FunctionName, load_settings

_ACTOR: ContextVar[str | None] = ContextVar("interleaving_actor", default=None)


class Scheduler:
    """Runs actors one at a time, switching at each yield as `choices` say."""

    def __init__(self, choices: Sequence[int],
                 events: dict[int, Callable[[], None]] | None = None) -> None:
        self.choices = list(choices)
        # What the outside world does at the n-th yield (GitHub handing a runner a job...).
        self.events = dict(events or {})
        self.points = 0
        self.position = 0
        self.running: str | None = None
        self.alive: list[str] = []
        self.switches = 0
        self._turn = threading.Condition()

    def run(self, actors: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Run every actor to its end; their results (an exception is a result too)."""
        results: dict[str, Any] = {}
        self.alive = list(actors)

        def body(name: str, work: Callable[[], Any]) -> None:
            _ACTOR.set(name)
            with self._turn:
                self._turn.wait_for(lambda: self.running == name)
            try:
                results[name] = work()
            except BaseException as error:
                results[name] = error
            with self._turn:
                self.alive.remove(name)
                self.running = self._next()
                self._turn.notify_all()

        threads = [threading.Thread(target=body, args=(name, work), daemon=True)
                   for name, work in actors.items()]
        for thread in threads:
            thread.start()
        with self._turn:
            self.running = self._next()
            self._turn.notify_all()
        for thread in threads:
            thread.join(timeout=120)
            if thread.is_alive():
                raise AssertionError(f"actor stuck; running={self.running}")
        return results

    def point(self) -> None:
        """Yield: let the next chosen actor run, and wait for this one's turn again."""
        name = _ACTOR.get()
        if name is None:
            return
        with self._turn:
            if self.running != name:
                # A worker thread of an actor whose turn it is not (the actor's own pool):
                # it waits like its actor.
                self._turn.wait_for(lambda: self.running == name)
                return
            event = self.events.pop(self.points, None)
            self.points += 1
            if event is not None:
                event()
            chosen = self._next()
            if chosen != name:
                self.switches += 1
                self.running = chosen
                self._turn.notify_all()
                self._turn.wait_for(lambda: self.running == name)

    def _next(self) -> str | None:
        if not self.alive:
            return None
        if self.position < len(self.choices):
            choice = self.choices[self.position]
            self.position += 1
            return self.alive[choice % len(self.alive)]
        return self.alive[0]


class Yielding:
    """An adapter whose every method yields to the scheduler before it runs; `after` sees each
    call's name, arguments and result (the test's invariants hook in there)."""

    def __init__(self, target: Any, scheduler: Scheduler,
                 after: Callable[[str, tuple[Any, ...], Any], None] | None = None) -> None:
        self._target = target
        self._scheduler = scheduler
        self._after = after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._scheduler.point()
            result = attribute(*args, **kwargs)
            if self._after is not None:
                self._after(name, args, result)
            return result

        return call


EXAMPLES = itertools.count()
RESETS = itertools.count()
LIVE = ("pending", "running")


class World:
    """One example's deployment: an environment and an owner of its own, and what it saw."""

    def __init__(self, stack: Any, env: dict[str, str], cap: int) -> None:
        n = next(EXAMPLES)
        self.stack, self.cap = stack, cap
        self.environment, self.owner = f"prop{n}", f"org{n}"
        stack.github.add_installation(self.owner)
        self.env = {**env, "ENVIRONMENT": self.environment, "RUNNERS_MAXIMUM_COUNT": str(cap),
                    "SSM_TOKEN_PATH": f"/interleavings/{self.environment}/tokens",
                    "ENABLE_ORGANIZATION_RUNNERS": "true", "ENABLE_EPHEMERAL_RUNNERS": "true",
                    "ENABLE_JIT_CONFIG": "false", "RUNNER_OWNER": self.owner,
                    "MINIMUM_RUNNING_TIME_IN_MINUTES": "0"}
        self.table = StateTable(wiring.aws("dynamodb"), env["STATE_TABLE_NAME"])
        self.violations: list[str] = []

    def live(self) -> list[str]:
        """The owner's running and pending instances, as moto has them (no lag, no yield)."""
        answer = self.stack.boto("ec2").describe_instances(Filters=[
            {"Name": "tag:ghr:environment", "Values": [self.environment]},
            {"Name": "instance-state-name", "Values": list(LIVE)}])
        return [i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]]

    def watch_ec2(self, call: str, args: tuple[Any, ...], result: Any) -> None:
        if call == "launch" and len(self.live()) > self.cap:
            self.violations.append(f"cap {self.cap} exceeded: {len(self.live())} live")
        if call == "terminate":
            busy = {r.name for r in self.stack.github.runners(self.owner) if r.busy}
            for instance_id in args[0]:
                if instance_id in busy:
                    self.violations.append(f"busy runner's instance {instance_id} terminated")

    def adapters(self, scheduler: Scheduler, function: FunctionName) -> dict[str, Any]:
        values = load_settings(self.env, function)
        return {"settings": values,
                "ec2": Yielding(Ec2(wiring.aws("ec2")), scheduler, self.watch_ec2),
                "ssm": Yielding(Ssm(wiring.aws("ssm")), scheduler),
                "github": Yielding(GitHubClient(wiring.github_config(values, function),
                                                Ssm(wiring.aws("ssm"))), scheduler)}

    def capacity(self, scheduler: Scheduler) -> CapacityLedger:
        """A container's own view of the cap, over the shared table."""
        return CapacityLedger(Yielding(self.table, scheduler), self.environment)  # type: ignore[arg-type]


def records(world: World, container: str, jobs: list[int]) -> list[dict[str, Any]]:
    return [{"messageId": f"{container}-{n}", "eventSource": "aws:sqs",
             "attributes": {"ApproximateReceiveCount": "1"},
             "body": JobMessage(id=job, repository_name="app",
                                repository_owner=world.owner).to_body()}
            for n, job in enumerate(jobs)]


class Dropped(logging.Handler):
    """The message ids the services dropped with a logged reason."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {}) or {}
        if record.getMessage() == "message dropped" and "message_id" in fields:
            self.ids.add(str(fields["message_id"]))


@pytest.fixture
def quick_github(stack: Any) -> Any:
    """The fake without checking each response against the OpenAPI description: the
    conformance tests do that; here it would be most of each example's time."""
    validating = stack.github.validate
    stack.github.validate = False
    yield stack.github
    stack.github.validate = validating


@pytest.fixture
def dropped() -> Any:
    handler = Dropped()
    logger = logging.getLogger("ghr")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def fresh(stack: Any, github: Any) -> None:
    if next(RESETS) % 40 == 39:
        # moto scans every instance it ever launched on each DescribeInstances: start afresh.
        stack.reset()
        stack.deploy()
        github.validate = False


def existing_runners(stack: Any, world: World, busy: list[bool]) -> list[int]:
    """Instances already there, each with a registered runner, busy or idle; runner ids."""
    instances = launch(stack, owner=world.owner, count=len(busy),
                       environment=world.environment) if busy else []
    return [register(stack, i, scope=world.owner, busy=b)
            for i, b in zip(instances, busy, strict=True)]


def check_messages(world: World, batch: dict[str, list[dict[str, Any]]],
                    jobs: dict[str, list[int]], results: dict[str, Any],
                    dropped: Dropped) -> None:
    for name, messages in batch.items():
        retried = results[name]
        assert isinstance(retried, list), retried
        for message, job in zip(messages, jobs[name], strict=True):
            launched = world.table.get(*claim_key(JobMessage(
                id=job, repository_name="app", repository_owner=world.owner))) is not None
            assert (message["messageId"] in retried or message["messageId"] in dropped.ids
                    or launched), f"message {message['messageId']} lost"


EXAMPLES_EACH = int(os.environ.get("INTERLEAVINGS", "250"))
SETTINGS = settings(max_examples=EXAMPLES_EACH, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
