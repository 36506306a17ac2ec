"""The concurrency and webhook workloads of `make bench`, small and without latency: they drain
what they queue, count only the functions' calls, and report what they saw."""

from __future__ import annotations

from typing import Any

from bench.burst_concurrency import Burst, run_burst
from bench.webhook_duplicates import bench_webhook_duplicates, deliveries


def test_deliveries_repeat_one_in_ten_with_the_same_id_and_body() -> None:
    bodies = [f"body-{n}".encode() for n in range(900)]
    order = deliveries(bodies)
    assert len(order) == 1000
    assert len({delivery_id for delivery_id, _ in order}) == 900
    first: dict[str, bytes] = {}
    for delivery_id, body in order:
        assert first.setdefault(delivery_id, body) == body  # a repeat carries the same body


def test_a_burst_is_drained_by_concurrent_containers_and_a_pool(stack: Any) -> None:
    figures = run_burst(Burst(containers=2, jobs=20, owners=2, cap=8, pool_size=1,
                              pool_every=2.0, profile="off"), stack=stack)

    assert figures["left_in_queue"] == 0
    assert figures["deliveries"] >= 20  # every message reached a container
    assert 0 < int(figures["runners"]) <= 20 + 1  # one per job at most, and the pool's
    assert int(figures["max_instances_per_owner"]) >= 8
    assert int(figures["pool_runs"]) >= 1 and figures["pool_failures"] == 0
    assert int(figures["github_calls"]) >= 20  # a queued check per job
    # The containers' own polling is not counted: only the functions' calls are.
    assert "ReceiveMessage" not in str(figures["aws_calls_by_action"])
    assert "DeleteMessageBatch" not in str(figures["aws_calls_by_action"])
    assert "PutParameter=" in str(figures["aws_calls_by_action"])
    assert stack.latency.name == "off"


def test_the_webhook_workload_counts_what_reached_the_queue(stack: Any) -> None:
    figures = bench_webhook_duplicates(distinct=18, stack=stack)

    assert figures["deliveries"] == 20
    assert figures["distinct_delivery_ids"] == 18
    assert figures["answers"] == "201=20" or figures["messages_enqueued"] == 18
    assert 18 <= int(figures["messages_enqueued"]) <= 20
    assert figures["github_calls"] == 0


def test_scale_down_over_three_configurations_stays_within_one_configurations_budget(
        stack: Any) -> None:
    from bench.multi import bench_scale_down_multi

    figures = bench_scale_down_multi(per=6, stack=stack)

    assert figures["runners"] == 18
    assert figures["deleted"] == figures["terminated"] == 9 and figures["busy_terminated"] == 0
    assert figures["github_delete_calls"] == 9
    assert figures["github_calls_over_budget"] == 0  # one listing of the org, as for one
    assert "DescribeInstances=1" in str(figures["aws_calls_by_action"])
    assert "GetParameter=1" in str(figures["aws_calls_by_action"])  # the list's look


def test_a_mixed_burst_launches_for_each_configuration(stack: Any) -> None:
    from bench.multi import bench_burst_multi

    figures = bench_burst_multi(n=12, stack=stack)

    assert figures["runners"] == 12 and figures["left_in_queue"] == 0
    assert figures["runners_by_config"] == "linux-x64=4, linux-arm64=4, gpu=4"
    # One call per job (the queued check, or the JIT config), and the few a container makes
    # once: the runner group's id, a registration token for each reuse configuration.
    assert int(figures["github_calls"]) <= 12 + 3
    assert "generate-jitconfig=4" in str(figures["github_calls_by_route"])
    assert figures["redeliveries_gpu_without_jit"] == 0
