"""Scale-down over 200 registered runners of one org: 50 idle past the minimum, 150 busy.

The world is laid down in devstack (moto instances tagged as scale-up tags them, runners in the
GitHub fake, five stale token parameters), then one `run_scale_down` runs in a warm container
(App credentials and the installation token already cached, as in a Lambda that ran before).
The calls a cold container adds are reported apart. Counted: every request the GitHub fake
answered and every AWS call devstack's endpoint saw during the run.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Figures
from bench.stack import function_environment, shared_devstack
from chalicelib import wiring
from chalicelib.models import (
    APPLICATION,
    TAG_APPLICATION,
    TAG_CREATED_BY,
    TAG_ENVIRONMENT,
    TAG_OWNER,
    TAG_TYPE,
)

ORG = "acme"
RUNNERS = 200
IDLE = 50
STALE_TOKENS = 5
def _world(stack: Any) -> tuple[list[str], set[str]]:
    """200 running instances with registered runners; returns (all ids, idle ids)."""
    deployment = stack.deployment
    stack.github.add_installation(ORG)
    # every fourth: idle runners spread through the pages
    ids, idle = runner_world(stack, deployment.environment, RUNNERS, deployment.subnet_ids[0],
                             idle_every=RUNNERS // IDLE)
    put_stale_tokens(stack)
    return ids, idle


def runner_world(stack: Any, environment: str, count: int, subnet: str,
                 idle_every: int) -> tuple[list[str], set[str]]:
    """`count` running instances of `environment` tagged as scale-up tags them, each with an
    online runner of ORG, every `idle_every`-th idle and the others busy; (ids, idle ids)."""
    tags = {TAG_APPLICATION: APPLICATION, TAG_ENVIRONMENT: environment, TAG_TYPE: "Org",
            TAG_OWNER: ORG, TAG_CREATED_BY: "scale-up-lambda"}
    answer = stack.boto("ec2").run_instances(
        ImageId=stack.deployment.image_id, MinCount=count, MaxCount=count, SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    ids = [i["InstanceId"] for i in answer["Instances"]]
    idle = set(ids[::idle_every])
    fake = stack.github
    for instance_id in ids:
        runner = fake.create_runner(ORG, instance_id, ["self-hosted"], 1, ephemeral=False,
                                    jit=False)
        fake.set_runner_status(runner.id, "online")
        fake.set_runner_busy(runner.id, instance_id not in idle)
    return ids, idle


def put_stale_tokens(stack: Any) -> None:
    """STALE_TOKENS token parameters of instances that do not exist."""
    ssm = stack.boto("ssm")
    for n in range(STALE_TOKENS):
        ssm.put_parameter(Name=f"{stack.deployment.token_path}/i-{0xdead0 + n:017x}", Value="x",
                          Type="SecureString")


def _time_describe(client: Any) -> list[float]:
    """Durations of the client's DescribeInstances calls, filled in as they happen."""
    durations: list[float] = []
    started: list[float] = []
    client.meta.events.register("before-call.ec2.DescribeInstances",
                                lambda **_: started.append(time.perf_counter()))
    client.meta.events.register("after-call.ec2.DescribeInstances",
                                lambda **_: durations.append(time.perf_counter() - started[-1]))
    return durations


def bench_scale_down_200() -> Figures:
    """Run one scale-down over the 200-runner world; its call counts, wall time and outcome."""
    from chalicelib.services.scale_down import run_scale_down

    stack = shared_devstack()
    stack.reset()
    stack.deploy()
    # An org-runner deployment, as the world is: its tokens are limited to org runners.
    with function_environment(stack, ENABLE_ORGANIZATION_RUNNERS="true"):
        ids, idle = _world(stack)
        # Warm the container: App credentials (SSM), installation id and token (2 GitHub calls).
        stack.aws_faults.reset()
        stack.github.clear_log()
        wiring.github("scale_down").installation_token(ORG, "Org")
        wiring.aws("ssm")  # boto3 clients: built once per container
        describe_s = _time_describe(wiring.aws("ec2"))
        cold_github, cold_aws = len(stack.github.requests), stack.aws_faults.count()
        stack.aws_faults.reset()
        stack.github.clear_log()

        started = time.perf_counter()
        report = run_scale_down(wiring.scale_down(), remaining_seconds=900,
                                now=datetime.now(UTC) + timedelta(minutes=10))
        wall = time.perf_counter() - started

        github = Counter(r.route for r in stack.github.requests)
        aws = dict(stack.aws_faults.calls)
        terminated = set(report.terminated)
        busy_terminated = len(terminated - idle)
        if busy_terminated or terminated != idle or len(report.deregistered) != IDLE:
            raise AssertionError(f"wrong outcome: terminated {len(terminated)} "
                                 f"({busy_terminated} busy), deleted {len(report.deregistered)}")
        return {
            "github_calls": sum(github.values()),
            "github_list_calls": github["GET /orgs/{org}/actions/runners"],
            "github_delete_calls": github["DELETE /orgs/{org}/actions/runners/{runner_id}"],
            "aws_calls": sum(aws.values()),
            "aws_calls_by_action": ", ".join(f"{a}={n}" for (_, a), n in sorted(aws.items())),
            "wall_s": round(wall, 3),
            # moto renders DescribeInstances slowly (seconds for 200 instances); EC2 does not.
            "describe_instances_s": round(sum(describe_s), 3),
            "wall_s_without_describe": round(wall - sum(describe_s), 3),
            "deleted": len(report.deregistered),
            "terminated": len(terminated),
            "busy_terminated": busy_terminated,
            "tokens_deleted": len(report.tokens_deleted),
            "runners": len(ids),
            "cold_extra_github_calls": cold_github,
            "cold_extra_aws_calls": cold_aws,
        }


if __name__ == "__main__":
    for name, value in bench_scale_down_200().items():
        print(f"{name}: {value}")
