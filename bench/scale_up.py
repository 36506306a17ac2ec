"""Scale-up bursts on devstack: GitHub and AWS calls per launched runner, wall time, JIT pacing.

Each burst queues N jobs in the GitHub fake and feeds their build-queue messages to the
`scale_up` handler (through chalice's test client) in batches of 10, the way the event source
mapping does; messages the handler returns for retry go back in the queue with their receive
count raised, as SQS would redeliver them. One container serves the whole burst.

Counts are taken in a warm container, the convention of every workload here: the App credentials
and the installation token of each org were fetched by an earlier invocation. What a cold
container adds is measured while warming and reported apart (`cold_extra_*`), and the totals a
cold container would spend are reported as `*_per_runner_cold`.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from bench.common import Figures, logged_problems
from bench.stack import function_environment, lambda_client, shared_devstack
from chalicelib.github.limits import WRITE_WINDOW_SECONDS, WRITES_PER_WINDOW

ORG = "acme"
BATCH = 10
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:github-runners-queued-builds"


def _record(n: int, body: dict[str, Any], receive_count: int) -> dict[str, Any]:
    return {"messageId": f"msg-{n}", "receiptHandle": f"handle-{n}", "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count)},
            "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN,
            "awsRegion": "eu-west-1", "md5OfBody": ""}


def _burst(orgs: list[str], n: int, apps: int = 1, **env: str) -> Figures:
    """Queue `n` jobs spread over `orgs`, drain the queue through scale_up, count the calls;
    with `apps` GitHub Apps installed on every org (REFERENCE §10), warmed as the first one."""
    stack = shared_devstack()
    stack.reset()
    stack.deploy()
    # devstack's subnets are /24s, and moto fills the first override's subnet before failing;
    # a /20 holds a thousand runners.
    subnet = stack.boto("ec2").create_subnet(VpcId=stack.deployment.vpc_id,
                                             CidrBlock="10.0.16.0/20")["Subnet"]["SubnetId"]
    env = {"SUBNET_IDS": subnet, **env}
    fake = stack.github
    installations = {org: fake.add_installation(org) for org in orgs}
    for _ in range(apps - 1):
        stack.add_app(*orgs)
    bodies = []
    for index in range(n):
        org = orgs[index % len(orgs)]
        job_id = fake.add_job(org, "app", ["self-hosted", "linux"])
        # As the webhook writes it: the installation id comes from the delivery.
        bodies.append({"id": job_id, "eventType": "workflow_job", "repositoryName": "app",
                       "repositoryOwner": org, "installationId": installations[org],
                       "repoOwnerType": "Organization", "labels": ["self-hosted", "linux"]})
    logged = io.StringIO()
    with function_environment(stack, ENABLE_ORGANIZATION_RUNNERS="true", **env), \
            lambda_client() as client, contextlib.redirect_stdout(logged):
        from chalicelib import wiring

        # Warm the container as an earlier invocation would have: boto3 clients, App
        # credentials (one SSM call), an installation token per org (one GitHub call each).
        stack.aws_faults.reset()
        fake.clear_log()
        wiring.aws("ec2"), wiring.aws("ssm")
        github = wiring.github("scale_up")
        for org in orgs:
            github.installation_token(org, "Org", installations[org])
            # With several Apps, an earlier invocation's calls went to each in turn (an App
            # not seen yet counts as full): its installation lookup and token are cached too.
            for _ in range(apps if apps > 1 else 0):
                github.list_runners(org, "Org")
        cold_github, cold_aws = len(fake.requests), stack.aws_faults.count()
        stack.aws_faults.reset()
        fake.clear_log()

        queue = deque((i, body, 1) for i, body in enumerate(bodies))
        invocations = redeliveries = 0
        started = time.perf_counter()
        while queue and invocations < 20 * (n // BATCH + 1):
            batch = [queue.popleft() for _ in range(min(BATCH, len(queue)))]
            event = {"Records": [_record(i, body, count) for i, body, count in batch]}
            answer = client.lambda_.invoke("scale_up", event).payload
            invocations += 1
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            for i, body, count in batch:
                if f"msg-{i}" in failed:
                    queue.append((i, body, count + 1))
                    redeliveries += 1
        wall = time.perf_counter() - started
        requests = fake.requests
        aws = dict(stack.aws_faults.calls)
    runners = _runners(stack)
    return {
        **drain_figures(requests, aws, runners, Drain(wall, invocations, redeliveries, len(queue)),
                        (cold_github, cold_aws), logged.getvalue()),
        "_github_calls_by_app": json.dumps(Counter(str(r.app_id) for r in requests)),
        "_requests": json.dumps([[r.method, r.route, r.status, r.time] for r in requests]),
    }


@dataclass(frozen=True)
class Drain:
    """How a queue was drained through scale_up."""

    wall: float
    invocations: int
    redeliveries: int
    left_in_queue: int


def drain_figures(requests: list[Any], aws: dict[tuple[str, str], int], runners: int,
                  drain: Drain, cold: tuple[int, int], log_text: str) -> Figures:
    """The figures of a queue drained through scale_up: calls in all and per runner (warm, and
    with what warming the container cost), the drain itself, problems logged, calls by kind."""
    github_calls, aws_calls = len(requests), sum(aws.values())
    cold_github, cold_aws = cold
    per = max(1, runners)
    routes = Counter(r.route for r in requests)
    return {
        "runners": runners,
        "github_calls": github_calls,
        "aws_calls": aws_calls,
        "github_calls_per_runner": round(github_calls / per, 3),
        "aws_calls_per_runner": round(aws_calls / per, 3),
        "github_calls_per_runner_cold": round((github_calls + cold_github) / per, 3),
        "aws_calls_per_runner_cold": round((aws_calls + cold_aws) / per, 3),
        "wall_s": round(drain.wall, 3),
        "invocations": drain.invocations,
        "redeliveries": drain.redeliveries,
        "left_in_queue": drain.left_in_queue,
        "cold_extra_github_calls": cold_github,
        "cold_extra_aws_calls": cold_aws,
        "problems_logged": logged_problems(log_text),
        "github_calls_by_route": ", ".join(f"{r}={c}" for r, c in sorted(routes.items())),
        "aws_calls_by_action": ", ".join(f"{a}={c}" for (_, a), c in sorted(aws.items())),
    }


def _runners(stack: Any) -> int:
    """Instances of the deployment that got their registration parameter."""
    ec2, ssm = stack.boto("ec2"), stack.boto("ssm")
    ids = {i["InstanceId"]
           for page in ec2.get_paginator("describe_instances").paginate(Filters=[
               {"Name": "tag:ghr:environment", "Values": [stack.deployment.environment]},
               {"Name": "instance-state-name", "Values": ["pending", "running"]}])
           for r in page["Reservations"] for i in r["Instances"]}
    names = {p["Name"].rsplit("/", 1)[-1]
             for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=[
                 {"Key": "Path", "Option": "Recursive",
                  "Values": [stack.deployment.token_path]}])
             for p in page["Parameters"]}
    return len(ids & names)


def _public(figures: Figures) -> Figures:
    return {k: v for k, v in figures.items() if not k.startswith("_")}


def bench_burst_reuse(n: int = 100) -> Figures:
    """`n` jobs of one org, reuse runners, queued check on, a cap of `n`: the cap is set, so
    its one DescribeInstances per batch is counted (with no cap there is none)."""
    figures = _burst([ORG], n, RUNNERS_MAXIMUM_COUNT=str(n), ENABLE_JOB_QUEUED_CHECK="true")
    return {"config": f"reuse, queued check on, cap {n}", **_public(figures)}


def bench_burst_jit(n: int = 100) -> Figures:
    """`n` jobs of one org, ephemeral JIT runners (queued check off, their default), no cap."""
    figures = _burst([ORG], n, ENABLE_EPHEMERAL_RUNNERS="true", ENABLE_JIT_CONFIG="true",
                     RUNNERS_MAXIMUM_COUNT="-1")
    requests = json.loads(str(figures["_requests"]))
    writes = sorted(t for method, route, _, t in requests
                    if method == "POST" and route.endswith("generate-jitconfig"))
    secondary = sum(1 for _, _, status, _ in requests if status in (403, 429))
    wall = float(figures["wall_s"])
    return {
        "config": "ephemeral JIT, queued check off, no cap",
        **_public(figures),
        "jit_writes": len(writes),
        # A burst of up to 180 fits one sliding minute, so it goes at the speed of the calls;
        # past 180 the pacer holds writes to GitHub's rate, and scale-up launches no more than
        # it can configure (the sustained ceiling).
        "burst_runners_per_minute": round(int(figures["runners"]) / wall * 60, 1) if wall else 0,
        "sustained_runners_per_minute_ceiling": WRITES_PER_WINDOW * 60 / WRITE_WINDOW_SECONDS,
        "max_writes_in_any_60s": _max_in_window(writes, 60.0),
        "secondary_limit_answers": secondary,
    }


def bench_burst_orgs(n: int = 100, orgs: int = 10) -> Figures:
    """`n` jobs spread over `orgs` orgs (10 groups of 1 per batch), reuse runners, check on."""
    names = [f"org{k:02d}" for k in range(orgs)]
    figures = _burst(names, n, RUNNERS_MAXIMUM_COUNT=str(n), ENABLE_JOB_QUEUED_CHECK="true")
    return {"config": f"reuse, queued check on, cap {n} per org, {orgs} orgs",
            **_public(figures)}


def bench_burst_1000() -> Figures:
    """1000 jobs of one org, ephemeral runners with registration tokens (queued check off,
    the ephemeral default), no cap: the wall time of draining the queue."""
    figures = _burst([ORG], 1000, ENABLE_EPHEMERAL_RUNNERS="true", ENABLE_JIT_CONFIG="false",
                     RUNNERS_MAXIMUM_COUNT="-1")
    return {"config": "ephemeral, registration tokens, queued check off, no cap",
            **_public(figures)}


def _max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


if __name__ == "__main__":
    import sys

    names = sys.argv[1:] or ["bench_burst_reuse"]
    for name in names:
        print(name)
        for key, value in globals()[name]().items():
            print(f"  {key}: {value}")
