"""devstack's latency profiles on the wire: each AWS operation and GitHub call is held for its own
delay, only that call, and a held call does not hold the others.

The holds are recorded through the servers' injectable sleep, not timed: a busy machine cannot
make these tests fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.github_testing import FakeGitHubClient
from devstack.latency import OFF, REALISTIC, LatencyProfile

JOB_PATH = "/repos/acme/app/actions/jobs/{job_id}"
REGISTRATION_PATH = "/orgs/acme/actions/runners/registration-token"


@pytest.fixture
def held(stack: Any) -> Iterator[dict[str, list[float]]]:
    """The delays each server held its calls for, recorded instead of slept; the profile is off
    again afterwards (a profile outlives the stack's reset, by design)."""
    holds: dict[str, list[float]] = {"aws": [], "github": []}
    stack.aws_faults.sleep = holds["aws"].append
    stack.github.sleep = holds["github"].append
    yield holds
    stack.set_latency(OFF)
    stack.reset()  # puts both sleeps back


def test_the_session_devstack_starts_with_latency_off(stack: Any) -> None:
    assert stack.latency is OFF
    assert stack.github.latency is OFF


def test_an_aws_call_is_held_for_its_own_operation_only(stack: Any,
                                                       held: dict[str, list[float]]) -> None:
    ssm, ec2 = stack.boto("ssm"), stack.boto("ec2")
    ssm.put_parameter(Name="/before", Value="x", Type="String")
    assert held["aws"] == []  # off: nothing held
    stack.set_latency("realistic")
    ssm.put_parameter(Name="/latency/x", Value="x", Type="String")
    assert held["aws"] == [0.04]
    ec2.describe_instances()
    assert held["aws"] == [0.04, 0.3]
    stack.boto("dynamodb").get_item(TableName=stack.deployment.state_table,
                                    Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    assert held["aws"] == [0.04, 0.3, 0.008]
    assert held["github"] == []


def test_held_calls_are_still_counted_and_answered(stack: Any,
                                                   held: dict[str, list[float]]) -> None:
    stack.set_latency(REALISTIC)
    stack.aws_faults.reset()
    stack.aws_faults.sleep = held["aws"].append
    queue = stack.deployment.queue_url
    stack.boto("sqs").send_message(QueueUrl=queue, MessageBody="{}")
    assert stack.aws_faults.calls[("sqs", "SendMessage")] == 1
    assert held["aws"] == [REALISTIC.aws_delay("sqs", "SendMessage")]


def test_calls_signed_with_an_uncounted_key_are_held_and_answered_but_not_counted(
    stack: Any, held: dict[str, list[float]]
) -> None:
    import boto3

    stack.set_latency("realistic")
    before = stack.aws_faults.count("sqs")
    stack.aws_faults.uncounted_keys.add("harness")
    try:
        harness = boto3.client("sqs", endpoint_url=stack.aws_endpoint, region_name="eu-west-1",
                               aws_access_key_id="harness", aws_secret_access_key="x")
        harness.send_message(QueueUrl=stack.deployment.queue_url, MessageBody="{}")
    finally:
        stack.aws_faults.uncounted_keys.clear()
    assert stack.aws_faults.count("sqs") == before
    assert held["aws"] == [REALISTIC.aws_delay("sqs", "SendMessage")]
    assert stack.boto("sqs").receive_message(QueueUrl=stack.deployment.queue_url)["Messages"]


def test_a_github_call_is_held_for_a_read_or_a_write(stack: Any,
                                                     held: dict[str, list[float]]) -> None:
    fake = stack.github
    fake.add_installation("acme")
    job_id = fake.add_job("acme", "app", ["self-hosted"])
    client = FakeGitHubClient(fake)
    try:
        token = client.installation_token("acme")
        assert held["github"] == []  # off: nothing held
        stack.set_latency("realistic")
        assert client.call("GET", JOB_PATH.format(job_id=job_id), token).status_code == 200
        assert held["github"] == [0.12]
        assert client.call("POST", REGISTRATION_PATH, token).status_code == 201
        assert held["github"] == [0.12, 0.2]
    finally:
        client.close()
    assert held["aws"] == []


def test_the_profile_stays_through_a_reset(stack: Any, held: dict[str, list[float]]) -> None:
    stack.set_latency("realistic")
    stack.reset()
    assert stack.latency is REALISTIC and stack.github.latency is REALISTIC


def _meeting(parties: int) -> Callable[[float], None]:
    """A sleep that returns only once `parties` calls are held at the same time: if the server
    held one call at a time, the first would wait for a second that could never arrive."""
    barrier = threading.Barrier(parties, timeout=10)

    def sleep(_: float) -> None:
        barrier.wait()

    return sleep


def test_held_aws_calls_overlap(stack: Any, held: dict[str, list[float]]) -> None:
    stack.set_latency(LatencyProfile("t", aws={"ssm:GetParameter": 1.0}))
    stack.aws_faults.sleep = _meeting(3)
    name = stack.deployment.app_id_parameter
    ssm = stack.boto("ssm")  # botocore clients are thread-safe, with a pool of connections
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: ssm.get_parameter(Name=name), range(3)))
    assert [a["Parameter"]["Name"] for a in answers] == [name] * 3


def test_held_github_calls_overlap(stack: Any, held: dict[str, list[float]]) -> None:
    fake = stack.github
    fake.add_installation("acme")
    job_id = fake.add_job("acme", "app", ["self-hosted"])
    clients = [FakeGitHubClient(fake) for _ in range(3)]
    try:
        tokens = [client.installation_token("acme") for client in clients]
        stack.set_latency("realistic")
        fake.sleep = _meeting(3)
        path = JOB_PATH.format(job_id=job_id)
        with ThreadPoolExecutor(3) as pool:
            statuses = list(pool.map(lambda pair: pair[0].call("GET", path, pair[1]).status_code,
                                     zip(clients, tokens, strict=True)))
    finally:
        for client in clients:
            client.close()
    assert statuses == [200, 200, 200]

