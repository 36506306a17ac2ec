"""Lambda containers for the concurrency workloads: each one a process of its own, as each Lambda
container has its own module state (chalicelib.wiring's clients and caches, the launch ledger).

A scale-up container stands in for one concurrent execution fed by the SQS event source mapping:
it receives up to 10 messages, invokes `scale_up` on them through chalice's test client, deletes
the messages not returned as batch item failures and leaves those for SQS to deliver again, as
the mapping does, but after RETRY_VISIBILITY_S rather than the queue's visibility timeout (six
minutes in a deployment): the workloads measure the functions, not that wait. It polls every
quarter of a second while the queue is empty, where the mapping long-polls: devstack serves a
long poll beside the other SQS calls, unserialized, and moto could then hand the same message to
two containers. A pool container invokes `adjust_pool` at once and then every `pool_every`
seconds, as its schedule would.

The poller's own SQS calls are signed with HARNESS_KEY, which devstack answers (and holds for
its latency profile) without counting them: Lambda's poller is not the function.

Each process reports through `reports`: ("ready", index, None) once warm, then
("done", index, summary), or ("failed", index, traceback) at any point; the benchmark waits
for those reports and for an empty queue with `await_reports` and `wait_for_empty_queue`.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import queue
import time
import traceback
from dataclasses import dataclass
from typing import Any

from bench.common import problem_counts
from bench.stack import lambda_client
from chalicelib.settings import FunctionName
from devstack.invoke import sqs_record

HARNESS_KEY = "bench-harness"
BATCH = 10  # the event source mapping's batch size (docs/REFERENCE.md §1)
IDLE_POLL_S = 0.25


@dataclass(frozen=True)
class ContainerPlan:
    """What one container runs: its environment, its queue, the owners it holds tokens for."""

    index: int
    env: dict[str, str]
    queue_url: str
    installations: tuple[tuple[str, int], ...]
    pool_size: int = -1  # a pool container (adjust_pool with this poolSize) when >= 0
    pool_every: float = 10.0


@dataclass(frozen=True)
class Signals:
    """The parent's multiprocessing primitives: start serving, stop serving, report."""

    go: Any
    stop: Any
    reports: Any


# How long a message returned for retry stays invisible here (time compressed, see above).
RETRY_VISIBILITY_S = 1

# Set to a directory, each container writes its functions' log lines there when it stops.
LOG_DIR_VARIABLE = "BENCH_CONTAINER_LOGS"


def harness_client(service: str, endpoint: str) -> Any:
    """A boto3 client of devstack signed with HARNESS_KEY: answered, not counted."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id=HARNESS_KEY, aws_secret_access_key=HARNESS_KEY)


def run_container(plan: ContainerPlan, signals: Signals) -> None:
    """Process entry point: warm up, report ready, serve until stopped, report what it did."""
    try:
        os.environ.update(plan.env)
        logged = io.StringIO()
        # The functions print their JSON log lines (and Python's last-resort handler echoes
        # warnings to stderr): counted, not shown.
        with contextlib.redirect_stdout(logged), contextlib.redirect_stderr(io.StringIO()):
            summary = _pool(plan, signals) if plan.pool_size >= 0 else _scale_up(plan, signals)
        summary["problems"] = dict(problem_counts(logged.getvalue()))
        if os.environ.get(LOG_DIR_VARIABLE):  # kept for a look when a burst misbehaves
            path = os.path.join(os.environ[LOG_DIR_VARIABLE], f"container-{plan.index}.log")
            with open(path, "w", encoding="utf-8") as file:
                file.write(logged.getvalue())
        signals.reports.put(("done", plan.index, summary))
    except BaseException:  # the parent must hear of it rather than wait
        signals.reports.put(("failed", plan.index, traceback.format_exc()))


def _warm(plan: ContainerPlan, function: FunctionName) -> None:
    """What an earlier invocation would have left in the container: boto3 clients, the App's
    credentials and an installation token per owner (the convention of every workload here)."""
    from chalicelib import wiring

    for service in ("ec2", "ssm", "sqs", "dynamodb"):
        wiring.aws(service)
    github = wiring.github(function)
    for owner, installation_id in plan.installations:
        github.installation_token(owner, "Org", installation_id)


def _scale_up(plan: ContainerPlan, signals: Signals) -> dict[str, Any]:
    """Feed the build queue to scale_up until stopped; what was received, retried, deleted."""
    sqs = harness_client("sqs", plan.env["AWS_ENDPOINT_URL"])
    handler_s: list[float] = []
    fed = retried = not_deleted = 0
    last_done = 0.0
    with lambda_client() as client:
        _warm(plan, "scale_up")
        signals.reports.put(("ready", plan.index, None))
        _wait_for(signals.go)
        while not signals.stop.is_set() and _parent_alive():
            received = sqs.receive_message(
                QueueUrl=plan.queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=0,
                AttributeNames=["All"]).get("Messages", [])
            if not received:
                time.sleep(IDLE_POLL_S)
                continue
            started = time.perf_counter()
            answer = client.lambda_.invoke("scale_up", {
                "Records": [sqs_record(m, plan.queue_url) for m in received]}).payload or {}
            handler_s.append(time.perf_counter() - started)
            failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            done = [m for m in received if m["MessageId"] not in failed]
            _return_soon(sqs, plan.queue_url, [m for m in received if m["MessageId"] in failed])
            if done:
                answer = sqs.delete_message_batch(QueueUrl=plan.queue_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done)])
                # A message not deleted comes back after the visibility timeout.
                not_deleted += len(answer.get("Failed", []))
            fed += len(received)
            retried += len(failed)
            last_done = time.time()
    return {"batches": len(handler_s), "fed": fed, "retried": retried,
            "not_deleted": not_deleted, "last_done": last_done, "handler_s": handler_s}


def _return_soon(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Make the messages returned for retry visible again after RETRY_VISIBILITY_S."""
    if messages:
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"],
             "VisibilityTimeout": RETRY_VISIBILITY_S} for n, m in enumerate(messages)])


def _pool(plan: ContainerPlan, signals: Signals) -> dict[str, Any]:
    """Run adjust_pool at once and every `pool_every` seconds until stopped."""
    handler_s: list[float] = []
    failures = 0
    with lambda_client() as client:
        _warm(plan, "adjust_pool")
        signals.reports.put(("ready", plan.index, None))
        _wait_for(signals.go)
        while _parent_alive():
            started = time.perf_counter()
            try:
                client.lambda_.invoke("adjust_pool", {"poolSize": plan.pool_size})
            except Exception:  # a failed run is counted; the schedule runs it again
                failures += 1
            handler_s.append(time.perf_counter() - started)
            if signals.stop.wait(plan.pool_every):
                break
    return {"pool_runs": len(handler_s), "pool_failures": failures, "handler_s": handler_s}


def await_reports(signals: Signals, processes: list[Any], kind: str,
                  timeout: float) -> list[dict[str, Any]]:
    """A report of `kind` from every container; RuntimeError if one failed, died or is late."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < len(processes):
        try:
            report, index, detail = signals.reports.get(timeout=1.0)
        except queue.Empty:
            dead = [p.name for p in processes if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{len(processes) - len(found)} container(s) not {kind} "
                                   f"(died: {', '.join(dead) or 'none'})") from None
            continue
        if report == "failed":
            raise RuntimeError(f"container {index} failed:\n{detail}")
        if report == kind:
            found.append(detail or {})
    return found


def wait_for_empty_queue(endpoint: str, queue_url: str, deadline: float) -> int:
    """Poll until no message is visible, in flight or delayed; the messages left at the end."""
    sqs = harness_client("sqs", endpoint)
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        left = sum(int(value) for value in attributes.values())
        if left == 0 or time.time() > deadline:
            return left
        time.sleep(0.25)


def _parent_alive() -> bool:
    """Whether the benchmark that started this container still runs (else: stop serving)."""
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _wait_for(event: Any) -> None:
    """Wait for `event`, or raise when the benchmark has gone."""
    while not event.wait(1.0):
        if not _parent_alive():
            raise RuntimeError("the benchmark process has gone")
