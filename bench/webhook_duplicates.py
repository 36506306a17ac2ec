"""The webhook under duplicate deliveries (issue 14): 1000 deliveries of which 100 repeat an
earlier delivery's id and body, as GitHub does when it redelivers (a timeout, a manual or
automatic redelivery); how many messages reach the build queue, and the handler's time.

900 distinct `workflow_job` `queued` deliveries of one org are posted to `/webhook` through
chalice's test client, signed with the deployment's secret; after every ninth, the delivery
that came eight before it is posted again with the same `X-GitHub-Delivery`. No latency profile
(the handler's own time and devstack's): the figures say what the code spends, which a profile
would only offset. The queue is counted afterwards: each delivery enqueued at most once leaves
900 messages; today every accepted delivery is enqueued, duplicates included.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import time
from collections import Counter
from typing import Any

from bench.common import Figures
from bench.containers import harness_client
from bench.stack import function_environment, lambda_client, shared_devstack
from devstack.webhooks import signed_headers

ORG = "acme"
DISTINCT = 900
REPEAT_EVERY = 9  # one duplicate per nine distinct deliveries: 100 of 1000


def deliveries(bodies: list[bytes]) -> list[tuple[str, bytes]]:
    """(delivery id, body) in posting order: every body once, and after each ninth the one eight
    before it again, with the same delivery id."""
    order: list[tuple[str, bytes]] = []
    for n, body in enumerate(bodies):
        order.append((f"delivery-{n:04d}", body))
        if (n + 1) % REPEAT_EVERY == 0:
            first = n + 1 - REPEAT_EVERY
            order.append((f"delivery-{first:04d}", bodies[first]))
    return order


def bench_webhook_duplicates(distinct: int = DISTINCT, stack: Any = None) -> Figures:
    """Post the deliveries of `distinct` jobs and their repeats; count what was enqueued, the
    answers and the handler's times (on the shared devstack unless given one)."""
    stack = stack or shared_devstack()
    stack.set_latency("off")
    stack.reset()
    stack.deploy()
    fake = stack.github
    fake.add_installation(ORG)
    bodies = [json.dumps(fake.workflow_job_payload(
        "queued", fake.add_job(ORG, "app", ["self-hosted", "linux"]))).encode()
        for _ in range(distinct)]
    order = deliveries(bodies)
    secret = stack.deployment.webhook_secret
    statuses: Counter[int] = Counter()
    times: list[float] = []
    # The function's JSON log lines are not the report.
    with function_environment(stack), lambda_client() as client, \
            contextlib.redirect_stdout(io.StringIO()):
        stack.aws_faults.reset()
        fake.clear_log()
        for delivery_id, body in order:
            headers = {**signed_headers(body, secret), "X-GitHub-Delivery": delivery_id}
            started = time.perf_counter()
            response = client.http.post("/webhook", headers=headers, body=body)
            times.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
        aws = dict(stack.aws_faults.calls)
        github_calls = len(fake.requests)
    enqueued = _messages(stack)
    times.sort()
    return {
        "deliveries": len(order),
        "distinct_delivery_ids": len({delivery_id for delivery_id, _ in order}),
        "messages_enqueued": enqueued,
        "duplicates_enqueued": enqueued - distinct,
        "answers": ", ".join(f"{status}={n}" for status, n in sorted(statuses.items())),
        # The first delivery also builds the container's clients and reads the secret.
        "handler_p50_ms": round(statistics.median(times) * 1000, 2),
        "handler_p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 2),
        "handler_max_ms": round(times[-1] * 1000, 2),
        "aws_calls": sum(aws.values()),
        "aws_calls_by_action": ", ".join(f"{a}={n}" for (_, a), n in sorted(aws.items())),
        "github_calls": github_calls,
    }


def _messages(stack: Any) -> int:
    """Messages on the build queue, visible or not (uncounted calls)."""
    attributes = harness_client("sqs", stack.aws_endpoint).get_queue_attributes(
        QueueUrl=stack.deployment.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(value) for value in attributes.values())


if __name__ == "__main__":
    for name, value in bench_webhook_duplicates().items():
        print(f"{name}: {value}")
