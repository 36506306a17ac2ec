"""A burst across owners drained by concurrent scale-up containers, under the realistic latency
profile (issue 14's benchmark): wall time, runners, cap violations, calls per runner.

The world: `jobs` queued jobs across `owners` organizations, in owner-contiguous order as a
matrix arrives (50 jobs of org00, then 50 of org01, ...), each with its build-queue message.
Then devstack takes the realistic profile (devstack/README.md) and N containers, each its own
process (bench/containers.py), drain the queue together; optionally a pool container runs
`adjust_pool` for the last owner every 10 seconds alongside. The drain ends when the queue holds
no message, visible or in flight: every job was launched for or consumed.

Counted: every AWS call devstack saw from the functions (the poller's are not counted) and every
GitHub request, from the moment every container is warm (what warming cost is `cold_extra_*`).
Cap violations are read from EC2 afterwards: nothing terminates an instance during the burst
(`instances_terminated` says if something did), so the live count per owner at the end is the
highest it ever was.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.common import Figures, problems_text
from bench.containers import (
    HARNESS_KEY,
    ContainerPlan,
    Signals,
    await_reports,
    harness_client,
    run_container,
    wait_for_empty_queue,
)
from bench.stack import shared_devstack
from chalicelib.models import TAG_CREATED_BY, TAG_ENVIRONMENT, TAG_OWNER

LABELS = ["self-hosted", "linux"]
# A deployment's build queue keeps a message invisible for six times the scale-up timeout
# (infra/src/runners.yaml; AWS refuses a mapping whose queue's is shorter than the function's):
# devstack's queue has 30 s, less than the 60 s the containers' invocations may take.
VISIBILITY_TIMEOUT_S = 6 * 60
DRAIN_DEADLINE_S = 900.0  # the burst is reported unfinished past this
READY_TIMEOUT_S = 300.0
# The concurrency whose wall time the target is on (issue 14: the template's default, to be
# chosen from these figures; ScaleUpReservedConcurrency is 1 today).
DEFAULT_CONCURRENCY = 10


@dataclass(frozen=True)
class Burst:
    """One run's shape."""

    containers: int
    jobs: int = 1000
    owners: int = 20
    cap: int = 100
    pool_size: int = -1  # >= 0: a pool of this size for the last owner, adjusted every 10 s
    pool_every: float = 10.0
    profile: str = "realistic"

    def names(self) -> list[str]:
        """The owners, org00 first."""
        return [f"org{k:02d}" for k in range(self.owners)]


def run_burst(burst: Burst, stack: Any = None) -> Figures:
    """Lay the world down with latency off, then drain it under `burst.profile` (on the
    benchmarks' shared devstack unless given one)."""
    stack = stack or shared_devstack()
    stack.set_latency("off")
    stack.reset()
    stack.deploy()
    try:
        subnet, installations = _lay_down(stack, burst)
        stack.set_latency(burst.profile)
        return _drain(stack, burst, subnet, installations)
    finally:
        stack.set_latency("off")


def _lay_down(stack: Any, burst: Burst) -> tuple[str, dict[str, int]]:
    """A subnet for every instance, the App on every owner, the jobs and their messages."""
    # devstack's subnets are /24s; a /20 holds the whole burst and the pool.
    subnet = stack.boto("ec2").create_subnet(VpcId=stack.deployment.vpc_id,
                                             CidrBlock="10.0.16.0/20")["Subnet"]["SubnetId"]
    fake = stack.github
    installations = {owner: int(fake.add_installation(owner)) for owner in burst.names()}
    per_owner = burst.jobs // burst.owners
    bodies = []
    for owner in burst.names():
        for _ in range(per_owner):
            job_id = fake.add_job(owner, "app", LABELS)
            bodies.append({"id": job_id, "eventType": "workflow_job", "repositoryName": "app",
                           "repositoryOwner": owner, "installationId": installations[owner],
                           "repoOwnerType": "Organization", "labels": LABELS})
    sqs = stack.boto("sqs")
    sqs.set_queue_attributes(QueueUrl=stack.deployment.queue_url,
                             Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)})
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=stack.deployment.queue_url, Entries=[
            {"Id": str(n), "MessageBody": json.dumps(body)}
            for n, body in enumerate(bodies[start:start + 10])])
    return subnet, installations


def _drain(stack: Any, burst: Burst, subnet: str, installations: dict[str, int]) -> Figures:
    """Run the containers over the queue laid down, then read what they left in EC2."""
    env = stack.env(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT=str(burst.cap),
                    SUBNET_IDS=subnet)
    queue_url = stack.deployment.queue_url
    plans = [ContainerPlan(n, env, queue_url, tuple(installations.items()))
             for n in range(burst.containers)]
    if burst.pool_size >= 0:
        owner = burst.names()[-1]
        plans.append(ContainerPlan(len(plans), {**env, "RUNNER_OWNER": owner}, queue_url,
                                   ((owner, installations[owner]),), burst.pool_size,
                                   burst.pool_every))
    run = _run_containers(stack, plans)
    return _figures(stack, burst, run)


@dataclass(frozen=True)
class _Run:
    """What the containers did, and the calls the functions made."""

    started: float
    left_in_queue: int
    summaries: list[dict[str, Any]]
    aws: Counter[tuple[str, str]]
    busy: dict[str, float]  # seconds moto answered each service, one call at a time
    requests: list[Any]
    cold_github: int
    cold_aws: int


def _run_containers(stack: Any, plans: list[ContainerPlan]) -> _Run:
    """Start the containers, release them together once warm, stop them at an empty queue."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a new container
    signals = Signals(context.Event(), context.Event(), context.Queue())
    stack.aws_faults.uncounted_keys.add(HARNESS_KEY)
    processes = [context.Process(target=run_container, args=(plan, signals), daemon=True,
                                 name=f"container-{plan.index}") for plan in plans]
    try:
        for process in processes:
            process.start()
        await_reports(signals, processes, "ready", READY_TIMEOUT_S)
        cold_github, cold_aws = len(stack.github.requests), stack.aws_faults.count()
        stack.aws_faults.reset()
        stack.github.clear_log()
        started = time.time()
        signals.go.set()
        left = wait_for_empty_queue(stack.aws_endpoint, plans[0].queue_url,
                                     started + DRAIN_DEADLINE_S)
        signals.stop.set()
        summaries = await_reports(signals, processes, "done", 120.0)
        busy = dict(stack.aws_faults.busy_seconds)
        return _Run(started, left, summaries, Counter(stack.aws_faults.calls), busy,
                    stack.github.requests, cold_github, cold_aws)
    finally:
        signals.stop.set()
        for process in (p for p in processes if p.ident is not None):  # the started ones
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        stack.aws_faults.uncounted_keys.discard(HARNESS_KEY)


def _figures(stack: Any, burst: Burst, run: _Run) -> Figures:
    """The burst's figures: time, what EC2 holds, calls per runner, what the containers saw."""
    served = [s for s in run.summaries if "batches" in s]
    finished = max((s["last_done"] for s in served), default=run.started)
    world = _instances(stack, burst)
    batches = sorted(t for s in served for t in s["handler_s"])
    per = max(1, world["runners"])
    github_calls, aws_calls = len(run.requests), sum(run.aws.values())
    pool = next((s for s in run.summaries if "pool_runs" in s), None)
    return {
        "config": _config(burst),
        "wall_s": round(max(0.0, finished - run.started), 1),
        **world,
        "github_calls_per_runner": round(github_calls / per, 3),
        "aws_calls_per_runner": round(aws_calls / per, 3),
        "github_calls_per_runner_cold": round((github_calls + run.cold_github) / per, 3),
        "aws_calls_per_runner_cold": round((aws_calls + run.cold_aws) / per, 3),
        "github_calls": github_calls,
        "aws_calls": aws_calls,
        # More runners than jobs: a job launched for twice (a delivery again, across
        # containers, that the first launch did not stop).
        "runners_beyond_jobs": max(0, world["runners"] - world["pool_instances"] - burst.jobs),
        "batches": len(batches),
        "deliveries": sum(s["fed"] for s in served),
        "returned_for_retry": sum(s["retried"] for s in served),
        "delete_failures": sum(s["not_deleted"] for s in served),
        "left_in_queue": run.left_in_queue,
        "dead_letters": _messages(stack, stack.deployment.dead_letter_queue_url),
        "batch_p50_s": round(statistics.median(batches), 2) if batches else 0.0,
        "batch_max_s": round(batches[-1], 2) if batches else 0.0,
        # devstack's moto answers one call of a service at a time: the busiest service's total
        # bounds the wall time from below on this machine, whatever the concurrency.
        "moto_busy_s_max": round(max(run.busy.values(), default=0.0), 1),
        "moto_busy_s_by_service": ", ".join(f"{k}={v:.1f}" for k, v in sorted(run.busy.items())),
        **({"pool_runs": pool["pool_runs"], "pool_failures": pool["pool_failures"]}
           if pool else {}),
        "cold_extra_github_calls": run.cold_github,
        "cold_extra_aws_calls": run.cold_aws,
        "problems_logged": problems_text(sum((Counter(s["problems"]) for s in run.summaries),
                                             Counter())),
        "github_calls_by_route": ", ".join(
            f"{r}={c}" for r, c in sorted(Counter(r.route for r in run.requests).items())),
        "aws_calls_by_action": ", ".join(f"{a}={c}" for (_, a), c in sorted(run.aws.items())),
    }


def _messages(stack: Any, queue_url: str) -> int:
    attributes = harness_client("sqs", stack.aws_endpoint).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _instances(stack: Any, burst: Burst) -> dict[str, int]:
    """Runners launched, the most instances any owner has, and the owners over the cap."""
    ec2, ssm = (harness_client(s, stack.aws_endpoint) for s in ("ec2", "ssm"))
    alive: Counter[str] = Counter()
    ids, terminated, pool = set(), 0, 0
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": [stack.deployment.environment]}]):
        for instance in (i for r in page["Reservations"] for i in r["Instances"]):
            if instance["State"]["Name"] not in ("pending", "running"):
                terminated += 1
                continue
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            alive[tags.get(TAG_OWNER, "")] += 1
            pool += tags.get(TAG_CREATED_BY) == "pool-lambda"
            ids.add(instance["InstanceId"])
    names = {p["Name"].rsplit("/", 1)[-1]
             for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=[
                 {"Key": "Path", "Option": "Recursive",
                  "Values": [stack.deployment.token_path]}])
             for p in page["Parameters"]}
    over = {owner: n - burst.cap for owner, n in alive.items() if n > burst.cap}
    return {"runners": len(ids & names), "instances_alive": sum(alive.values()),
            "pool_instances": pool, "instances_terminated": terminated,
            "max_instances_per_owner": max(alive.values(), default=0),
            "cap_violations": len(over), "instances_over_cap": sum(over.values())}


def _config(burst: Burst) -> str:
    pool = (f", pool of {burst.pool_size} for {burst.names()[-1]} every "
            f"{burst.pool_every:g} s" if burst.pool_size >= 0 else "")
    return (f"{burst.jobs} jobs across {burst.owners} orgs, cap {burst.cap} per org, reuse "
            f"runners, queued check on, {burst.containers} scale-up container(s){pool}, "
            f"{burst.profile} latency")


def bench_burst_owners(containers: int) -> Figures:
    """1000 jobs across 20 orgs, cap 100 per org, drained by `containers` containers."""
    return run_burst(Burst(containers))


def bench_burst_owners_c1() -> Figures:
    """The burst with one container, as scale-up runs today (reserved concurrency 1)."""
    return bench_burst_owners(1)


def bench_burst_owners_c4() -> Figures:
    """The burst with four containers."""
    return bench_burst_owners(4)


def bench_burst_owners_c10() -> Figures:
    """The burst with ten containers."""
    return bench_burst_owners(DEFAULT_CONCURRENCY)


def bench_burst_owners_with_pool() -> Figures:
    """The burst with a pool the size of the cap for the last org, adjusted every 10 s."""
    return run_burst(Burst(DEFAULT_CONCURRENCY, pool_size=Burst(1).cap))


def bench_burst_tight_cap() -> Figures:
    """The burst with a cap of 40 per org (below its 50 jobs): containers that count an owner's
    instances before each other's launches land would go over it."""
    return run_burst(Burst(DEFAULT_CONCURRENCY, cap=40))
