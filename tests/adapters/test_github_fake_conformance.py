"""Contract of the GitHub fake: every answer conforms to GitHub's OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack import github_render
from devstack.github_fake import GitHubFake
from devstack.github_openapi import operations
from devstack.github_routes import ROUTE_KEYS
from devstack.github_testing import FakeGitHubClient, app_jwt

LIST = "GET /orgs/{org}/actions/runners"


@pytest.fixture
def fake(devstack: Any) -> Iterator[GitHubFake]:
    """The session's GitHub fake, emptied (it validates every response it sends)."""
    github: GitHubFake = devstack.github
    assert github.validate
    github.reset()
    github.add_installation("acme")
    yield github
    github.reset()


def test_every_route_is_an_operation_of_the_openapi_description() -> None:
    assert operations() == ROUTE_KEYS


def test_every_route_answers_success_and_errors_that_conform(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    token = client.installation_token("acme")
    job = fake.add_job("acme", "app", ["self-hosted"])
    client.as_app("GET", "/app")
    client.as_app("GET", "/repos/acme/app/installation")
    client.as_app("GET", "/orgs/acme/installation")
    client.as_app("GET", "/orgs/nobody/installation")
    client.call("GET", "/app", app_jwt(fake, lifetime=900), scheme="Bearer")
    client.as_app("POST", "/app/installations/1/access_tokens")
    delivery = fake.deliveries.add(fake.clock(), status_code=502)
    fake.deliveries.add(fake.clock())
    client.as_app("GET", "/app/hook/deliveries", params={"per_page": 1, "status": "failure"})
    client.as_app("GET", "/app/hook/deliveries", params={"per_page": 1})
    client.as_app("POST", f"/app/hook/deliveries/{delivery.id}/attempts")
    client.as_app("POST", "/app/hook/deliveries/1/attempts")  # 404
    client.call("GET", f"/repos/acme/app/actions/jobs/{job}", token)
    client.call("GET", "/repos/acme/app/actions/jobs/1", token)
    client.call("POST", f"/repos/acme/app/actions/jobs/{job}/rerun", token)  # 403: run going
    done = fake.add_job("acme", "app", ["self-hosted"], status="completed")
    client.call("POST", f"/repos/acme/app/actions/jobs/{done}/rerun", token)
    client.call("POST", "/repos/acme/app/actions/jobs/1/rerun", token)  # 404
    client.call("GET", "/repos/actions/runner/releases/latest")
    client.call("GET", "/repos/actions/runner/releases")
    client.call("GET", "/repos/acme/app/releases")  # 404
    client.call("GET", "/repos/acme/app/releases/latest", "bad-token")
    client.call("GET", "/orgs/acme/actions/runner-groups", token)
    client.call("GET", "/orgs/other/actions/runner-groups", token)
    for base in ("/orgs/acme/actions/runners", "/repos/acme/app/actions/runners"):
        client.call("POST", f"{base}/registration-token", token)
        client.call("POST", f"{base}/remove-token", token)
        body = {"name": "r", "runner_group_id": 1, "labels": ["x"]}
        runner = client.call("POST", f"{base}/generate-jitconfig", token, json=body).json()
        client.call("POST", f"{base}/generate-jitconfig", token, json=body)  # 409
        client.call("POST", f"{base}/generate-jitconfig", token, json={"name": "r"})  # 422
        client.call("GET", f"{base}?per_page=1", token)
        client.call("GET", f"{base}/{runner['runner']['id']}", token)
        fake.set_runner_busy(runner["runner"]["id"], True)
        client.call("DELETE", f"{base}/{runner['runner']['id']}", token)  # 422
        fake.set_runner_busy(runner["runner"]["id"], False)
        client.call("DELETE", f"{base}/{runner['runner']['id']}", token)
        client.call("DELETE", f"{base}/{runner['runner']['id']}", token)  # 404
    fake.fail_next(LIST)
    fake.secondary_limit_next(LIST)
    fake.primary_limit_next(LIST)
    for _ in range(3):
        client.call("GET", "/orgs/acme/actions/runners", token)
    answered = {(entry.route, entry.status) for entry in fake.requests}
    assert {route for route, _ in answered} >= ROUTE_KEYS
    assert {status for _, status in answered} >= {200, 201, 204, 401, 403, 404, 409, 422, 502}
    assert fake.violations == []


def test_validation_records_a_response_that_breaks_the_spec(
    fake: GitHubFake, client: FakeGitHubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = client.installation_token("acme")
    body = {"name": "r", "runner_group_id": 1, "labels": ["x"]}
    client.call("POST", "/orgs/acme/actions/runners/generate-jitconfig", token, json=body)
    real_runner = github_render.runner
    monkeypatch.setattr(
        github_render,
        "runner",
        lambda record, counters: {**real_runner(record, counters), "busy": "no"},
    )
    client.call("GET", "/orgs/acme/actions/runners", token)
    assert [(v.route, v.status) for v in fake.violations] == [(LIST, 200)]
    assert "'no' is not of type 'boolean'" in fake.violations[0].message
