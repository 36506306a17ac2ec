"""devstack's AWS: moto behind the fault layer counts calls and injects the faults asked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.aws import AwsServer
from devstack.provision import Deployment, deploy


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsServer]:
    server = AwsServer().start()
    yield server
    server.stop()


@pytest.fixture
def clients(aws: AwsServer) -> Any:
    requests.post(f"{aws.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    aws.faults.reset()
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(
                service, endpoint_url=aws.endpoint, region_name="eu-west-1",
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        return cache[service]

    return client


@pytest.fixture
def deployment(clients: Any) -> Deployment:
    key = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"
    return deploy(clients, 42, key, environment="t")


def fleet(clients: Any, deployment: Deployment, capacity: int) -> dict[str, Any]:
    response: dict[str, Any] = clients("ec2").create_fleet(
        Type="instant",
        TargetCapacitySpecification={"TotalTargetCapacity": capacity,
                                     "DefaultTargetCapacityType": "spot"},
        LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {
            "LaunchTemplateName": deployment.launch_template_name, "Version": "$Default"}}],
    )
    return response


def launched(response: dict[str, Any]) -> list[str]:
    return [i for item in response.get("Instances", []) for i in item["InstanceIds"]]


def test_server_binds_loopback_only(aws: AwsServer) -> None:
    assert aws.endpoint.startswith("http://127.0.0.1:")


def test_deploy_lays_down_what_a_deployment_has(clients: Any, deployment: Deployment) -> None:
    assert len(deployment.subnet_ids) == 2
    names = [p["Name"] for p in clients("ssm").describe_parameters()["Parameters"]]
    assert deployment.app_key_parameter in names and deployment.webhook_secret_parameter in names
    attributes = clients("sqs").get_queue_attributes(
        QueueUrl=deployment.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert '"maxReceiveCount": 5' in attributes["RedrivePolicy"]
    assert deployment.env()["SUBNET_IDS"] == ",".join(deployment.subnet_ids)


def test_calls_are_counted_by_service_and_action(aws: AwsServer, clients: Any,
                                                 deployment: Deployment) -> None:
    aws.faults.reset()
    clients("ec2").describe_instances()
    clients("ssm").get_parameter(Name=deployment.app_id_parameter)
    clients("sqs").get_queue_attributes(QueueUrl=deployment.queue_url)
    assert aws.faults.calls[("ec2", "DescribeInstances")] == 1
    assert aws.faults.calls[("ssm", "GetParameter")] == 1
    assert aws.faults.calls[("sqs", "GetQueueAttributes")] == 1
    assert aws.faults.count("ec2") == 1


def test_fail_next_answers_the_next_calls_with_the_error_then_passes(
    aws: AwsServer, clients: Any, deployment: Deployment
) -> None:
    aws.faults.fail_next("ec2", "CreateFleet", "RequestLimitExceeded", times=2, status=503)
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            fleet(clients, deployment, 1)
        assert caught.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert len(launched(fleet(clients, deployment, 1))) == 1


def test_json_protocol_errors_carry_their_code(aws: AwsServer, clients: Any) -> None:
    aws.faults.fail_next("ssm", "PutParameter", "ThrottlingException")
    with pytest.raises(ClientError) as caught:
        clients("ssm").put_parameter(Name="/x", Value="y", Type="String")
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"


def test_partial_fleet_launches_less_and_reports_errors(aws: AwsServer, clients: Any,
                                                        deployment: Deployment) -> None:
    aws.faults.partial_fleet(3, [("InsufficientInstanceCapacity", "no spot capacity")])
    response = fleet(clients, deployment, 5)
    assert len(launched(response)) == 3
    assert [e["ErrorCode"] for e in response["Errors"]] == ["InsufficientInstanceCapacity"]
    assert len(launched(fleet(clients, deployment, 2))) == 2  # only the next call


def test_empty_fleet_has_only_errors(aws: AwsServer, clients: Any, deployment: Deployment) -> None:
    aws.faults.partial_fleet(0, [("UnfulfillableCapacity", "none")])
    response = fleet(clients, deployment, 2)
    assert launched(response) == []
    assert response["Errors"][0]["ErrorCode"] == "UnfulfillableCapacity"


def test_new_instances_can_be_left_out_of_describe_instances(
    aws: AwsServer, clients: Any, deployment: Deployment
) -> None:
    old = launched(fleet(clients, deployment, 1))
    time.sleep(2.2)  # moto's launch times have whole seconds
    aws.faults.hide_new_instances(1.5)
    new = launched(fleet(clients, deployment, 2))

    def described() -> set[str]:
        pages = clients("ec2").get_paginator("describe_instances").paginate()
        return {i["InstanceId"] for page in pages for r in page["Reservations"]
                for i in r["Instances"]}

    assert described() >= set(old)
    assert described().isdisjoint(new)
    aws.faults.hide_new_instances(0)
    assert described() >= {*old, *new}


def test_a_long_poll_does_not_hold_the_other_sqs_calls(clients: Any,
                                                       deployment: Deployment) -> None:
    # SQS calls run one at a time in moto, but a long poll waits there: were it held like the
    # others, the message sent meanwhile would only be sent once the poll had given up empty.
    sqs = clients("sqs")
    with ThreadPoolExecutor(1) as pool:
        polled = pool.submit(sqs.receive_message, QueueUrl=deployment.queue_url,
                             WaitTimeSeconds=5)
        sqs.send_message(QueueUrl=deployment.queue_url, MessageBody="{}")
        assert [m["Body"] for m in polled.result().get("Messages", [])] == ["{}"]
