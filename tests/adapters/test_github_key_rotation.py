"""Rotating the GitHub App key without downtime (RELIABILITY R-AUTH-04, BI-24).

The operator's procedure (docs/DEPLOY.md): generate a second key on GitHub, put it in SSM, delete
the old key on GitHub. A warm container still signs with the old key; its next App call is
refused once, it reads SSM again and goes on with the new key.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from github_client_support import ORG, ManualClock, make_client

from chalicelib.errors import PermanentError
from chalicelib.github.client import GitHubClient


@pytest.fixture
def client(stack: Any, clock: ManualClock) -> GitHubClient:
    return make_client(stack, clock)


def ssm_reads(stack: Any) -> int:
    return int(stack.aws_faults.count("ssm", "GetParameters"))


def put_key(stack: Any, pem: str) -> None:
    stack.boto("ssm").put_parameter(
        Name=stack.deployment.app_key_parameter, Type="SecureString", Overwrite=True,
        Value=base64.b64encode(pem.encode()).decode())


def test_a_key_rotated_in_ssm_then_deleted_on_github_is_picked_up(
    stack: Any, client: GitHubClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake = stack.github
    for owner in (ORG, "beta", "gamma"):
        fake.add_installation(owner)
    client.installation_token(ORG, "Org")  # the container signs with the first key
    reads = ssm_reads(stack)

    new_key = fake.add_app_key()
    put_key(stack, new_key.private_key_pem)
    fake.revoke_app_key(fake.key)
    token = client.installation_token("beta", "Org")

    assert token.token
    assert ssm_reads(stack) == reads + 1
    assert "github app key reloaded from SSM" in caplog.text
    # Later App calls sign with the new key straight away.
    client.installation_token("gamma", "Org")
    assert ssm_reads(stack) == reads + 1


def test_a_refused_key_that_ssm_still_holds_fails_after_one_reading(
    stack: Any, client: GitHubClient
) -> None:
    fake = stack.github
    fake.add_installation(ORG)
    fake.add_installation("beta")
    client.installation_token(ORG, "Org")
    reads, calls = ssm_reads(stack), len(fake.requests)

    fake.revoke_app_key(fake.key)  # deleted on GitHub, never replaced in SSM
    with pytest.raises(PermanentError, match="401"):
        client.installation_token("beta", "Org")

    assert ssm_reads(stack) == reads + 1
    assert len(fake.requests) == calls + 1  # refused once, not tried again with the same key
