"""devstack's latency profiles: which delay each AWS operation and GitHub call gets."""

from __future__ import annotations

import pytest

from devstack.latency import OFF, REALISTIC, LatencyProfile, profile_named, resolve


def test_realistic_profile_names_a_delay_per_aws_operation() -> None:
    assert REALISTIC.aws_delay("ec2", "CreateFleet") == 1.5
    assert REALISTIC.aws_delay("ec2", "DescribeInstances") == 0.3
    assert REALISTIC.aws_delay("ssm", "PutParameter") == 0.04
    assert REALISTIC.aws_delay("dynamodb", "PutItem") == 0.008
    assert REALISTIC.aws_delay("dynamodb", "TransactWriteItems") == 0.015


def test_an_operation_the_profile_does_not_name_gets_its_service_default_else_nothing() -> None:
    assert REALISTIC.aws_delay("ec2", "DescribeLaunchTemplates") == REALISTIC.aws["ec2:*"]
    assert REALISTIC.aws_delay("lambda", "Invoke") == 0.0


def test_an_exact_operation_wins_over_its_service_and_over_everything() -> None:
    profile = LatencyProfile("t", aws={"*": 1.0, "sqs:*": 0.5, "sqs:SendMessage": 0.1})
    assert profile.aws_delay("sqs", "SendMessage") == 0.1
    assert profile.aws_delay("sqs", "ReceiveMessage") == 0.5
    assert profile.aws_delay("s3", "PutObject") == 1.0


def test_github_reads_and_writes_have_their_own_delay_and_a_route_may_override() -> None:
    assert REALISTIC.github_delay("GET /repos/{owner}/{repo}/actions/jobs/{job_id}") == 0.12
    assert REALISTIC.github_delay("POST /orgs/{org}/actions/runners/registration-token") == 0.2
    assert REALISTIC.github_delay("DELETE /orgs/{org}/actions/runners/{runner_id}") == 0.2
    profile = LatencyProfile("t", github_read=0.1, github_routes={"GET /app": 0.5})
    assert profile.github_delay("GET /app") == 0.5


def test_off_adds_nothing_anywhere() -> None:
    assert OFF.off and not REALISTIC.off
    assert OFF.aws_delay("ec2", "CreateFleet") == 0.0
    assert OFF.github_delay("POST /app/installations/{installation_id}/access_tokens") == 0.0


def test_the_environment_variable_chooses_the_profile_and_unset_is_off() -> None:
    assert resolve(None, {"DEVSTACK_LATENCY": "realistic"}) is REALISTIC
    assert resolve(None, {"DEVSTACK_LATENCY": " Realistic "}) is REALISTIC
    assert resolve(None, {}) is OFF
    assert resolve(None, {"DEVSTACK_LATENCY": ""}) is OFF


def test_a_name_or_a_profile_given_wins_over_the_environment() -> None:
    assert resolve("off", {"DEVSTACK_LATENCY": "realistic"}) is OFF
    custom = LatencyProfile("custom", github_read=0.01)
    assert resolve(custom, {"DEVSTACK_LATENCY": "realistic"}) is custom


def test_an_unknown_profile_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown latency profile 'slow'; known: off, realistic"):
        profile_named("slow")
