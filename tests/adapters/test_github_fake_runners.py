"""Contract of the GitHub fake: runners, JIT configs, groups, jobs, releases and scheduling."""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Any

import pytest

from devstack.github_fake import GitHubFake
from devstack.github_records import ApiError
from devstack.github_testing import FakeGitHubClient

ORG = "/orgs/acme/actions/runners"
REPO = "/repos/acme/app/actions/runners"


@pytest.fixture
def fake(fake: GitHubFake) -> GitHubFake:
    """The emptied fake of tests/adapters/conftest.py, with `acme` installed."""
    fake.add_installation("acme")
    return fake


def jit(client: FakeGitHubClient, token: str, name: str, base: str = ORG, **body: Any) -> Any:
    """POST generate-jitconfig with sensible defaults."""
    payload = {"name": name, "runner_group_id": 1, "labels": ["self-hosted", "linux"], **body}
    return client.call("POST", f"{base}/generate-jitconfig", token, json=payload)


@pytest.mark.parametrize("base", [ORG, REPO])
@pytest.mark.parametrize("kind", ["registration-token", "remove-token"])
def test_scope_tokens_are_created_for_one_hour(
    fake: GitHubFake, client: FakeGitHubClient, token: str, base: str, kind: str
) -> None:
    fake.clock = lambda: 1_700_000_000.0
    answer = client.call("POST", f"{base}/{kind}", token)
    assert answer.status_code == 201
    assert answer.json()["expires_at"] == "2023-11-14T23:13:20Z"
    assert answer.json()["token"]


def test_jitconfig_creates_an_offline_ephemeral_runner_at_once(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    group = fake.add_runner_group("acme", "ci")
    answer = jit(client, token, "i-0abc", runner_group_id=group, labels=["self-hosted", "gpu"])
    assert answer.status_code == 201
    runner = answer.json()["runner"]
    assert (runner["name"], runner["status"], runner["busy"]) == ("i-0abc", "offline", False)
    assert runner["runner_group_id"] == group and runner["ephemeral"] is True
    assert [label["name"] for label in runner["labels"]] == ["self-hosted", "gpu"]
    assert answer.json()["encoded_jit_config"]
    listed = client.call("GET", ORG, token).json()
    assert [r["id"] for r in listed["runners"]] == [runner["id"]]


def test_jitconfig_with_a_taken_name_answers_409(client: FakeGitHubClient, token: str) -> None:
    assert jit(client, token, "i-0abc").status_code == 201
    again = jit(client, token, "i-0abc")
    assert again.status_code == 409
    assert again.json()["message"] == (
        "Already exists - A runner with the name i-0abc already exists."
    )


def test_jitconfig_without_labels_answers_422(client: FakeGitHubClient, token: str) -> None:
    assert jit(client, token, "i-0abc", labels=[]).status_code == 422
    assert jit(client, token, "").status_code == 422


def test_jitconfig_with_unknown_group_answers_404(client: FakeGitHubClient, token: str) -> None:
    assert jit(client, token, "i-0abc", runner_group_id=999).status_code == 404


def test_jit_runner_comes_online_once_per_config(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    config = jit(client, token, "i-0abc", base=REPO).json()["encoded_jit_config"]
    runner_id = fake.jit_runner_online(config)
    assert fake.runners("acme/app")[0].status == "online"
    assert fake.runners("acme/app")[0].id == runner_id
    with pytest.raises(ApiError):
        fake.jit_runner_online(config)


def test_runner_list_paginates_with_link_header_across_pages(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    for n in range(7):
        jit(client, token, f"runner-{n}")
    seen: list[int] = []
    url: str | None = f"{fake.api_url}{ORG}?per_page=3"
    pages = 0
    while url:
        answer = client.call("GET", url, token)
        assert answer.json()["total_count"] == 7
        seen += [r["id"] for r in answer.json()["runners"]]
        links = answer.links
        if pages == 0:
            assert links["last"]["url"].endswith("per_page=3&page=3")
        url = links.get("next", {}).get("url")
        pages += 1
    assert pages == 3
    assert seen == sorted(seen) and len(set(seen)) == 7


def test_runner_list_clamps_per_page_to_100_and_filters_by_name(
    client: FakeGitHubClient, token: str
) -> None:
    for n in range(3):
        jit(client, token, f"runner-{n}")
    everything = client.call("GET", f"{ORG}?per_page=500", token)
    assert len(everything.json()["runners"]) == 3 and "Link" not in everything.headers
    named = client.call("GET", f"{ORG}?name=runner-1", token).json()
    assert named["total_count"] == 1 and named["runners"][0]["name"] == "runner-1"


def test_org_and_repo_runners_are_separate_scopes(client: FakeGitHubClient, token: str) -> None:
    org_runner = jit(client, token, "same-name").json()["runner"]["id"]
    repo_runner = jit(client, token, "same-name", base=REPO).json()["runner"]["id"]
    assert client.call("GET", f"{ORG}/{org_runner}", token).status_code == 200
    assert client.call("GET", f"{REPO}/{org_runner}", token).status_code == 404
    assert client.call("GET", f"{REPO}/{repo_runner}", token).json()["name"] == "same-name"


def test_delete_runner_answers_204_then_404(client: FakeGitHubClient, token: str) -> None:
    runner = jit(client, token, "i-0abc").json()["runner"]["id"]
    assert client.call("DELETE", f"{ORG}/{runner}", token).status_code == 204
    assert client.call("DELETE", f"{ORG}/{runner}", token).status_code == 404
    assert client.call("GET", f"{ORG}/{runner}", token).status_code == 404


def test_delete_busy_runner_answers_422_as_github(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    runner = jit(client, token, "i-0abc").json()["runner"]["id"]
    fake.set_runner_busy(runner, True)
    answer = client.call("DELETE", f"{ORG}/{runner}", token)
    assert answer.status_code == 422
    assert answer.json()["message"] == 'Bad request - Runner "i-0abc" is still running a job'
    assert client.call("GET", f"{ORG}/{runner}", token).json()["busy"] is True


def test_runner_groups_list_default_first_and_paginate(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    ids = [fake.add_runner_group("acme", f"group-{n}") for n in range(3)]
    first = client.call("GET", "/orgs/acme/actions/runner-groups?per_page=2", token)
    groups = first.json()["runner_groups"]
    assert first.json()["total_count"] == 4
    assert (groups[0]["id"], groups[0]["name"], groups[0]["default"]) == (1, "Default", True)
    assert groups[1]["id"] == ids[0]
    assert 'rel="next"' in first.headers["Link"]


def test_job_is_found_in_its_repository_only(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    job = fake.add_job("acme", "app", ["self-hosted", "linux"])
    answer = client.call("GET", f"/repos/acme/app/actions/jobs/{job}", token)
    assert answer.status_code == 200
    assert answer.json()["status"] == "queued"
    assert answer.json()["labels"] == ["self-hosted", "linux"]
    assert client.call("GET", f"/repos/acme/other/actions/jobs/{job}", token).status_code == 404
    assert client.call("GET", "/repos/acme/app/actions/jobs/1", token).status_code == 404


def test_latest_runner_release_lists_assets_the_fake_serves(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    fake.set_latest_runner_version("v2.330.1")
    release = client.call("GET", "/repos/actions/runner/releases/latest").json()
    assert release["tag_name"] == "v2.330.1"
    names = {asset["name"] for asset in release["assets"]}
    assert "actions-runner-linux-x64-2.330.1.tar.gz" in names
    assert "actions-runner-win-arm64-2.330.1.zip" in names
    asset = next(a for a in release["assets"] if a["name"].startswith("actions-runner-linux-x64"))
    download = client.session.get(asset["browser_download_url"], timeout=10)
    assert download.status_code == 200
    assert download.content == fake.release_bytes("linux", "x64") and asset["size"] > 1000
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(download.content))) as archive:
        assert "config.sh" in archive.getnames()


def test_release_bytes_are_deterministic_per_asset(fake: GitHubFake) -> None:
    assert fake.release_bytes("osx", "arm64") == fake.release_bytes("osx", "arm64")
    assert fake.release_bytes("osx", "arm64") != fake.release_bytes("linux", "arm64")


def test_releases_of_other_repositories_answer_404(client: FakeGitHubClient) -> None:
    assert client.call("GET", "/repos/acme/app/releases/latest").status_code == 404


def test_register_runner_checks_the_registration_token(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    now = [1_700_000_000.0]
    fake.clock = lambda: now[0]
    registration = client.call("POST", f"{ORG}/registration-token", token).json()["token"]
    remove = client.call("POST", f"{ORG}/remove-token", token).json()["token"]
    with pytest.raises(ApiError):
        fake.register_runner("acme/app", "i-1", [], token=registration)  # other scope
    with pytest.raises(ApiError):
        fake.register_runner("acme", "i-1", [], token=remove)
    runner_id = fake.register_runner("acme", "i-1", ["gpu"], token=registration, ephemeral=True)
    runner = fake.runners("acme")[0]
    assert (runner.id, runner.status, runner.ephemeral) == (runner_id, "online", True)
    assert runner.labels == ["self-hosted", "Linux", "X64", "gpu"]
    now[0] += 3601
    with pytest.raises(ApiError):
        fake.register_runner("acme", "i-2", [], token=registration)


def _online_runner(fake: GitHubFake, scope: str, name: str, labels: list[str], **kw: Any) -> int:
    registration, _ = fake.mint_scope_token(scope, "registration")
    return fake.register_runner(scope, name, labels, token=registration, **kw)


def test_dispatch_matches_labels_case_insensitively_and_respects_scope(fake: GitHubFake) -> None:
    repo_runner = _online_runner(fake, "acme/app", "repo-runner", ["gpu"])
    org_runner = _online_runner(fake, "acme", "org-runner", ["cpu"])
    other_repo_job = fake.add_job("acme", "web", ["self-hosted", "GPU"])
    cpu_job = fake.add_job("acme", "web", ["self-hosted", "linux", "cpu"])
    gpu_job = fake.add_job("acme", "app", ["self-hosted", "gpu"])
    started = {job.id: job.runner_id for job in fake.dispatch()}
    assert started == {cpu_job: org_runner, gpu_job: repo_runner}
    assert fake.jobs[other_repo_job].status == "queued"


def test_job_life_cycle_fires_events_and_removes_the_ephemeral_runner(fake: GitHubFake) -> None:
    events: list[tuple[str, int, str]] = []
    fake.on_job_event = lambda action, job: events.append((action, job["id"], job["status"]))
    runner = _online_runner(fake, "acme", "i-1", [], ephemeral=True)
    job = fake.add_job("acme", "app", ["self-hosted"], duration=30)
    fake.dispatch(now=1000.0)
    assert fake.runners("acme")[0].busy is True
    assert fake.complete_due(now=1029.0) == []
    done = fake.complete_due(now=1030.0)
    assert [(j.id, j.status, j.runner_id) for j in done] == [(job, "completed", runner)]
    assert fake.runners("acme") == []
    assert events == [
        ("queued", job, "queued"),
        ("in_progress", job, "in_progress"),
        ("completed", job, "completed"),
    ]


def test_reusable_runner_goes_idle_after_its_job(fake: GitHubFake) -> None:
    _online_runner(fake, "acme", "i-1", [])
    fake.add_job("acme", "app", ["self-hosted"])
    fake.dispatch()
    fake.complete_due()
    assert [(r.busy, r.status) for r in fake.runners("acme")] == [(False, "online")]


def test_offline_runner_gets_no_job(fake: GitHubFake) -> None:
    runner = _online_runner(fake, "acme", "i-1", [])
    fake.set_runner_status(runner, "offline")
    fake.add_job("acme", "app", ["self-hosted"])
    assert fake.dispatch() == []


def test_workflow_job_payload_is_a_webhook_body(fake: GitHubFake) -> None:
    job = fake.add_job("acme", "app", ["self-hosted"])
    payload = fake.workflow_job_payload("queued", job)
    assert payload["action"] == "queued"
    assert payload["workflow_job"]["id"] == job
    assert payload["repository"]["full_name"] == "acme/app"
    assert payload["installation"]["id"] == fake.installation_id("acme")
