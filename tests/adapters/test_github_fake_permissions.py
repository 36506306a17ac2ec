"""Contract of the GitHub fake: installation tokens carry permissions, and routes require them."""

from __future__ import annotations

from typing import Any

from devstack.github_fake import GitHubFake
from devstack.github_testing import FakeGitHubClient


def mint(client: FakeGitHubClient, installation: int, permissions: Any = None) -> Any:
    body = None if permissions is None else {"permissions": permissions}
    return client.as_app("POST", f"/app/installations/{installation}/access_tokens", json=body)


def test_a_token_without_permissions_asked_carries_all_the_installations(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    installation = fake.add_installation("acme")
    answer = mint(client, installation)
    assert answer.status_code == 201
    assert answer.json()["permissions"]["organization_self_hosted_runners"] == "write"
    token = answer.json()["token"]
    job = fake.add_job("acme", "app", ["self-hosted"])
    assert client.call("GET", "/orgs/acme/actions/runners", token).status_code == 200
    assert client.call("GET", f"/repos/acme/app/actions/jobs/{job}", token).status_code == 200


def test_a_scoped_token_is_refused_where_it_lacks_the_permission(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    installation = fake.add_installation("acme")
    answer = mint(client, installation, {"organization_self_hosted_runners": "write"})
    assert answer.status_code == 201
    assert answer.json()["permissions"] == {"metadata": "read",
                                            "organization_self_hosted_runners": "write"}
    token = answer.json()["token"]
    job = fake.add_job("acme", "app", ["self-hosted"])

    assert client.call("POST", "/orgs/acme/actions/runners/registration-token",
                       token).status_code == 201
    refused = client.call("GET", f"/repos/acme/app/actions/jobs/{job}", token)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by integration"


def test_a_read_permission_does_not_allow_writes(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    installation = fake.add_installation("acme")
    token = mint(client, installation, {"organization_self_hosted_runners": "read"}).json()["token"]
    assert client.call("GET", "/orgs/acme/actions/runners", token).status_code == 200
    assert client.call("POST", "/orgs/acme/actions/runners/registration-token",
                       token).status_code == 403


def test_permissions_the_installation_does_not_grant_answer_422(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    installation = fake.add_installation(
        "acme", permissions={"metadata": "read", "organization_self_hosted_runners": "write"})
    refused = mint(client, installation, {"actions": "read"})
    assert refused.status_code == 422
    assert refused.json()["message"] == ("The permissions requested are not granted to this "
                                         "installation.")
    assert mint(client, installation, {"organization_self_hosted_runners": "admin"}
                ).status_code == 422
    assert mint(client, installation, {"organization_self_hosted_runners": "write"}
                ).status_code == 201
