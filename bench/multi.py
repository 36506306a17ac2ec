"""Several runner configurations behind one webhook (REFERENCE §6, issue 16): scale-down over three
configurations and a mixed burst across them, on devstack.

`scale_down_multi`: 3 configurations x 100 registered runners of one org, half of each idle past
the minimum running time, in one warm `scale_down` run. The budget of issue 16 is "the GitHub
calls of one configuration plus one DELETE per removal": the same 300 runners and instances are
laid down again as one configuration (no list) and scaled down by the same function, and its
calls but the DELETEs are the budget's first part (`github_calls_one_config_without_deletes`).

`burst_multi`: 300 queued jobs of one org, x64, arm64 and GPU in turn (so every batch of 10
mixes the three), their build-queue messages carrying `runnerConfig` as the webhook writes them,
fed to `scale_up` in batches of 10 by one warm container; a message returned for retry comes back
after RETRY_VISIBILITY_S (1 s, as bench/containers.py's poller has it). x64 and arm64: reuse
runners with the queued check; GPU: ephemeral JIT runners (queued check off, their default), whose
100 JIT configurations the shared write budget paces (36 per 15 s window, chalicelib/services/
write_budget.py), so GPU messages are returned and come back while it refills.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Figures
from bench.containers import RETRY_VISIBILITY_S
from bench.scale_down import ORG, put_stale_tokens, runner_world
from bench.scale_up import BATCH, Drain, _record, drain_figures
from bench.stack import function_environment, lambda_client, shared_devstack
from chalicelib import wiring

X64 = ["self-hosted", "linux", "x64"]
ARM64 = ["self-hosted", "linux", "arm64"]
GPU = ["self-hosted", "linux", "gpu"]
# The three configurations of both workloads, in REFERENCE §6's shape.
CONFIGS: tuple[dict[str, Any], ...] = (
    {"id": "linux-x64",
     "matcherConfig": {"labelMatchers": [X64], "exactMatch": True, "priority": 10},
     "environment": {"INSTANCE_TYPES": "m7i.large,m6i.large"}},
    {"id": "linux-arm64",
     "matcherConfig": {"labelMatchers": [ARM64], "exactMatch": True, "priority": 20},
     "environment": {"INSTANCE_TYPES": "m7g.large,m6g.large", "RUNNER_ARCHITECTURE": "arm64"}},
    {"id": "gpu",
     "matcherConfig": {"labelMatchers": [GPU], "bidirectionalLabelMatch": True},
     "environment": {"INSTANCE_TYPES": "g5.xlarge", "INSTANCE_TARGET_CAPACITY_TYPE": "on-demand",
                     "ENABLE_EPHEMERAL_RUNNERS": "true", "RUNNER_LABELS": "gpu"}},
)
LABELS = {"linux-x64": X64, "linux-arm64": ARM64, "gpu": GPU}
RUNNERS_PER_CONFIG = 100
LIST_ROUTE = "GET /orgs/{org}/actions/runners"
DELETE_ROUTE = "DELETE /orgs/{org}/actions/runners/{runner_id}"


def _fresh_stack(configs: tuple[dict[str, Any], ...] = CONFIGS, stack: Any = None) -> Any:
    """devstack (`stack`, or the workloads' shared one) emptied and deployed, with `configs`
    laid down (none: one configuration)."""
    stack = stack or shared_devstack()
    stack.reset()
    stack.deploy()
    if configs:
        stack.add_runner_configs(configs)
    return stack


def _subnet(stack: Any) -> str:
    subnet: str = stack.boto("ec2").create_subnet(
        VpcId=stack.deployment.vpc_id, CidrBlock="10.0.16.0/20")["Subnet"]["SubnetId"]
    return subnet


# -- scale-down -----------------------------------------------------------------------------


def _scale_down_world(stack: Any, environments: list[str], per: int) -> tuple[set[str], set[str]]:
    """`per` running instances of each environment with online runners of the org, every other
    one idle, and stale token parameters; returns (every instance id, the idle ones)."""
    subnet = _subnet(stack)
    stack.github.add_installation(ORG)
    every: set[str] = set()
    idle: set[str] = set()
    for environment in environments:
        # half idle, spread through the listing's pages
        ids, idle_ids = runner_world(stack, environment, per, subnet, idle_every=2)
        every.update(ids)
        idle.update(idle_ids)
    put_stale_tokens(stack)
    return every, idle


def _scale_down_once(stack: Any, environments: list[str], per: int) -> dict[str, Any]:
    """Lay the world down, warm a container, run one scale-down; what it did and called."""
    from chalicelib.services.scale_down import run_scale_down

    with function_environment(stack, ENABLE_ORGANIZATION_RUNNERS="true"):
        every, idle = _scale_down_world(stack, environments, per)
        # A warm container: boto3 clients, the App key (SSM) and the org's token (GitHub).
        wiring.github("scale_down").installation_token(ORG, "Org")
        wiring.aws("ssm"), wiring.aws("ec2")
        wiring.scale_down()
        # The schedule runs every 5 minutes, so each run finds the list's minute gone by and
        # looks at the parameter again (one GetParameter): counted, as a scheduled run pays it.
        wiring.runner_configs("scale_down")._checked -= 3600.0
        stack.aws_faults.reset()
        stack.github.clear_log()
        started = time.perf_counter()
        report = run_scale_down(wiring.scale_down(), remaining_seconds=900,
                                now=datetime.now(UTC) + timedelta(minutes=10))
        wall = time.perf_counter() - started
        github = Counter(r.route for r in stack.github.requests)
        aws = dict(stack.aws_faults.calls)
    terminated = set(report.terminated)
    return {"github": github, "aws": aws, "wall": wall, "terminated": terminated,
            "idle": idle, "every": every, "deleted": len(report.deregistered),
            "tokens_deleted": len(report.tokens_deleted)}


def bench_scale_down_multi(per: int = RUNNERS_PER_CONFIG, stack: Any = None) -> Figures:
    """Scale-down over 3 configurations x `per` runners (half idle), against the same runners
    as one configuration."""
    stack = _fresh_stack((), stack)
    one = _scale_down_once(stack, [stack.deployment.environment], len(CONFIGS) * per)
    stack = _fresh_stack(CONFIGS, stack)
    environments = list(stack.deployment.runner_environments.values())
    multi = _scale_down_once(stack, environments, per)
    terminated, idle = multi["terminated"], multi["idle"]
    busy_terminated = len(terminated - idle)
    if busy_terminated or terminated != idle or multi["deleted"] != len(idle):
        raise AssertionError(f"wrong outcome: terminated {len(terminated)} of {len(idle)} idle "
                             f"({busy_terminated} busy), deleted {multi['deleted']}")
    github, aws = multi["github"], multi["aws"]
    deletes = github[DELETE_ROUTE]
    one_without_deletes = sum(one["github"].values()) - one["github"][DELETE_ROUTE]
    budget = one_without_deletes + deletes
    return {
        "config": f"{len(CONFIGS)} configurations x {per} org runners, half idle, warm",
        "runners": len(multi["every"]),
        "github_calls": sum(github.values()),
        "github_list_calls": github[LIST_ROUTE],
        "github_delete_calls": deletes,
        "github_calls_one_config_without_deletes": one_without_deletes,
        "github_calls_budget": budget,
        "github_calls_over_budget": sum(github.values()) - budget,
        "github_calls_one_config": sum(one["github"].values()),
        "aws_calls": sum(aws.values()),
        "aws_calls_by_action": ", ".join(f"{a}={n}" for (_, a), n in sorted(aws.items())),
        # Without the Query of pending re-runs every run makes with
        # ENABLE_SPOT_INTERRUPTION_RERUN on (§9), one configuration or many.
        "aws_calls_without_rerun_query": sum(n for (_, a), n in aws.items() if a != "Query"),
        "aws_calls_one_config": sum(one["aws"].values()),
        "wall_s": round(multi["wall"], 3),
        "wall_s_one_config": round(one["wall"], 3),
        "deleted": multi["deleted"],
        "terminated": len(terminated),
        "busy_terminated": busy_terminated,
        "tokens_deleted": multi["tokens_deleted"],
    }


# -- burst ----------------------------------------------------------------------------------


def _instances_by_config(stack: Any) -> dict[str, set[str]]:
    """The live instances of each configuration, by its `ghr:environment`."""
    ec2 = stack.boto("ec2")
    found: dict[str, set[str]] = {}
    for config_id, environment in stack.deployment.runner_environments.items():
        found[config_id] = {
            i["InstanceId"]
            for page in ec2.get_paginator("describe_instances").paginate(Filters=[
                {"Name": "tag:ghr:environment", "Values": [environment]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])
            for r in page["Reservations"] for i in r["Instances"]}
    return found


def _token_parameters(stack: Any) -> set[str]:
    """Instance ids that got their registration parameter."""
    return {p["Name"].rsplit("/", 1)[-1]
            for page in stack.boto("ssm").get_paginator("describe_parameters").paginate(
                ParameterFilters=[{"Key": "Path", "Option": "Recursive",
                                   "Values": [stack.deployment.token_path]}])
            for p in page["Parameters"]}


def bench_burst_multi(n: int = 300, stack: Any = None) -> Figures:
    """`n` jobs of one org, x64, arm64 and GPU in turn, through scale_up in batches of 10; then
    the same with the GPU configuration on registration tokens instead of JIT, where no write
    budget holds messages back: what routing to three configurations costs on its own."""
    figures = _mixed_burst(n, stack)
    # At the top level: it only changes the ephemeral configuration, the GPU's. (Per
    # configuration the runtime refuses ENABLE_JIT_CONFIG as an unknown variable: settings.py
    # reads it only when ephemeral, so known_variables() never sees it.)
    plain = _mixed_burst(n, stack, ENABLE_JIT_CONFIG="false")
    return {
        **figures,
        "github_calls_per_runner_gpu_without_jit": plain["github_calls_per_runner"],
        "aws_calls_per_runner_gpu_without_jit": plain["aws_calls_per_runner"],
        "redeliveries_gpu_without_jit": plain["redeliveries"],
        "aws_calls_by_action_gpu_without_jit": plain["aws_calls_by_action"],
    }


def _mixed_burst(n: int, stack: Any = None, **top: str) -> Figures:
    """One burst of `n` jobs over CONFIGS, in turn, with `top` in the top-level environment."""
    stack = _fresh_stack(CONFIGS, stack)
    fake = stack.github
    installation = fake.add_installation(ORG)
    ids = [c["id"] for c in CONFIGS]
    bodies = []
    for index in range(n):
        config_id = ids[index % len(ids)]
        job_id = fake.add_job(ORG, "app", LABELS[config_id])
        bodies.append({"id": job_id, "eventType": "workflow_job", "repositoryName": "app",
                       "repositoryOwner": ORG, "installationId": installation,
                       "repoOwnerType": "Organization", "labels": LABELS[config_id],
                       "runnerConfig": config_id})
    logged = io.StringIO()
    # The queued check follows each configuration's ephemerality (REFERENCE §6's derived
    # default): on for the reuse ones, off for the GPU's; a top-level value would set it for all.
    env = {"SUBNET_IDS": _subnet(stack), "ENABLE_ORGANIZATION_RUNNERS": "true",
           "RUNNERS_MAXIMUM_COUNT": "-1", **top}
    with function_environment(stack, **env), lambda_client() as client, \
            contextlib.redirect_stdout(logged):
        # Warm the container as an earlier invocation would have: boto3 clients, the App key,
        # the configuration list (read at most once a minute), the org's installation token.
        stack.aws_faults.reset()
        fake.clear_log()
        wiring.aws("ec2"), wiring.aws("ssm")
        wiring.runner_configs("scale_up").get()
        wiring.github("scale_up").installation_token(ORG, "Org", installation)
        cold_github, cold_aws = len(fake.requests), stack.aws_faults.count()
        stack.aws_faults.reset()
        fake.clear_log()

        queue = deque((i, body, 1, 0.0) for i, body in enumerate(bodies))
        invocations = redeliveries = 0
        started = time.perf_counter()
        while queue and invocations < 40 * (n // BATCH + 1):
            visible = [m for m in queue if m[3] <= time.perf_counter()]
            if not visible:
                time.sleep(0.05)
                continue
            batch = visible[:BATCH]
            for message in batch:
                queue.remove(message)
            event = {"Records": [_record(i, body, count) for i, body, count, _ in batch]}
            answer = client.lambda_.invoke("scale_up", event).payload
            invocations += 1
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            for i, body, count, _ in batch:
                if f"msg-{i}" in failed:
                    # Back after RETRY_VISIBILITY_S, as bench/containers.py's poller has it.
                    queue.append((i, body, count + 1,
                                  time.perf_counter() + RETRY_VISIBILITY_S))
                    redeliveries += 1
        wall = time.perf_counter() - started
        requests = fake.requests
        aws = dict(stack.aws_faults.calls)
    configured = _token_parameters(stack)
    by_config = {k: len(v & configured) for k, v in _instances_by_config(stack).items()}
    figures = drain_figures(requests, aws, sum(by_config.values()),
                            Drain(wall, invocations, redeliveries, len(queue)),
                            (cold_github, cold_aws), logged.getvalue())
    return {
        "config": f"{n} jobs of one org, x64/arm64 reuse with the queued check, GPU ephemeral "
                  "JIT, no cap",
        "runners_by_config": ", ".join(f"{k}={v}" for k, v in by_config.items()),
        **figures,
    }


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or ["bench_scale_down_multi", "bench_burst_multi"]:
        print(name)
        for key, value in globals()[name]().items():
            print(f"  {key}: {value}")
