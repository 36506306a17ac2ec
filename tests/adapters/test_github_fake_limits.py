"""Contract of the GitHub fake: rate limits, fault injection and the request log."""

from __future__ import annotations

import socket
import threading

import pytest

from devstack.github_fake import GitHubFake
from devstack.github_http import make_server
from devstack.github_testing import FakeGitHubClient

REG = "POST /orgs/{org}/actions/runners/registration-token"
LIST = "GET /orgs/{org}/actions/runners"
REG_PATH = "/orgs/acme/actions/runners/registration-token"
LIST_PATH = "/orgs/acme/actions/runners"


@pytest.fixture
def fake(fake: GitHubFake) -> GitHubFake:
    """The emptied fake of tests/adapters/conftest.py, with `acme` installed."""
    fake.add_installation("acme")
    return fake


@pytest.fixture
def now(fake: GitHubFake) -> list[float]:
    """The fake's clock: now[0] is the current epoch."""
    moment = [1_700_000_000.0]
    fake.clock = lambda: moment[0]
    return moment


def test_every_response_carries_rate_limit_headers(
    client: FakeGitHubClient, token: str, now: list[float]
) -> None:
    first = client.call("GET", LIST_PATH, token)
    second = client.call("GET", LIST_PATH, token)
    for name in ("limit", "remaining", "used", "reset", "resource"):
        assert f"x-ratelimit-{name}" in first.headers
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert int(second.headers["x-ratelimit-remaining"]) == (
        int(first.headers["x-ratelimit-remaining"]) - 1
    )
    assert int(second.headers["x-ratelimit-used"]) == int(first.headers["x-ratelimit-used"]) + 1
    assert first.headers["x-ratelimit-reset"] == str(1_700_000_000 + 3600)


def test_spent_primary_budget_answers_403_until_reset(
    fake: GitHubFake, client: FakeGitHubClient, token: str, now: list[float]
) -> None:
    installation_id = fake.installation_id("acme")
    assert installation_id is not None
    fake.set_rate_limit(installation_id, remaining=2, reset_epoch=now[0] + 100)
    assert client.call("GET", LIST_PATH, token).status_code == 200
    last = client.call("GET", LIST_PATH, token)
    assert last.headers["x-ratelimit-remaining"] == "0"
    refused = client.call("GET", LIST_PATH, token)
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("API rate limit exceeded")
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == str(int(now[0] + 100))
    now[0] += 100
    assert client.call("GET", LIST_PATH, token).status_code == 200


def test_181st_write_within_60s_hits_the_secondary_limit(
    client: FakeGitHubClient, token: str, now: list[float]
) -> None:
    for n in range(180):
        now[0] += 0.1
        assert client.call("POST", REG_PATH, token).status_code == 201, n
    refused = client.call("POST", REG_PATH, token)
    assert refused.status_code == 403
    assert "secondary rate limit" in refused.json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert int(refused.headers["x-ratelimit-remaining"]) > 0  # not the primary limit
    # Another endpoint keeps its own window.
    assert client.call("POST", "/repos/acme/app/actions/runners/registration-token", token).ok


def test_secondary_window_slides(client: FakeGitHubClient, token: str, now: list[float]) -> None:
    for _ in range(90):
        assert client.call("POST", REG_PATH, token).status_code == 201
    now[0] += 30
    for _ in range(90):
        assert client.call("POST", REG_PATH, token).status_code == 201
    now[0] += 29
    refused = client.call("POST", REG_PATH, token)
    assert refused.status_code == 403
    assert refused.headers["Retry-After"] == "1"  # the first 90 leave the window at +60 s
    now[0] += 1
    assert client.call("POST", REG_PATH, token).status_code == 201


def test_reads_cost_one_point(client: FakeGitHubClient, token: str, now: list[float]) -> None:
    for _ in range(179):
        client.call("POST", REG_PATH, token)
    # 895 points spent on the route; GETs are another route and have their own 900 points.
    assert client.call("GET", LIST_PATH, token).status_code == 200
    assert client.call("POST", REG_PATH, token).status_code == 201
    assert client.call("POST", REG_PATH, token).status_code == 403


def test_fail_next_answers_5xx_n_times(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    fake.fail_next(LIST, n=2, status=503)
    assert [client.call("GET", LIST_PATH, token).status_code for _ in range(3)] == [503, 503, 200]
    assert client.call("POST", REG_PATH, token).status_code == 201


def test_fail_next_on_every_route(fake: GitHubFake, client: FakeGitHubClient, token: str) -> None:
    fake.fail_next("*", n=1)
    assert client.call("POST", REG_PATH, token).status_code == 502
    assert client.call("POST", REG_PATH, token).status_code == 201


def test_injected_secondary_limit_has_retry_after(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    fake.secondary_limit_next(REG, n=1, retry_after=42)
    refused = client.call("POST", REG_PATH, token)
    assert refused.status_code == 403
    assert refused.headers["Retry-After"] == "42"
    assert "secondary rate limit" in refused.json()["message"]
    assert client.call("POST", REG_PATH, token).status_code == 201


def test_injected_primary_limit_has_zero_remaining_and_reset(
    fake: GitHubFake, client: FakeGitHubClient, token: str, now: list[float]
) -> None:
    fake.primary_limit_next(LIST, n=1, reset_in=120)
    refused = client.call("GET", LIST_PATH, token)
    assert refused.status_code == 403
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == str(int(now[0]) + 120)
    assert refused.json()["message"].startswith("API rate limit exceeded for installation ID")
    assert client.call("GET", LIST_PATH, token).status_code == 200


def test_added_latency_holds_the_route(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    held: list[float] = []
    fake.sleep = held.append  # the fake's reset() puts time.sleep back
    fake.add_latency(LIST, 0.2)
    client.call("GET", LIST_PATH, token)
    client.call("POST", REG_PATH, token)
    assert held == [0.2]  # the listing was held, the other route was not


def test_fault_on_unknown_route_is_refused(fake: GitHubFake) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        fake.fail_next("GET /orgs/{org}/runners")


def test_download_route_can_fail(fake: GitHubFake, client: FakeGitHubClient) -> None:
    fake.fail_next("GET /actions/runner/releases/download/{tag}/{name}", status=500)
    release = client.call("GET", "/repos/actions/runner/releases/latest").json()
    url = release["assets"][0]["browser_download_url"]
    assert client.session.get(url, timeout=10).status_code == 500
    assert client.session.get(url, timeout=10).status_code == 200


def test_request_log_counts_by_route_method_and_prefix(
    fake: GitHubFake, client: FakeGitHubClient, token: str
) -> None:
    fake.clear_log()
    client.call("GET", LIST_PATH, token)
    client.call("GET", LIST_PATH, token)
    client.call("POST", REG_PATH, token)
    client.call("GET", "/nowhere", token)
    assert fake.count(route=LIST) == 2
    assert fake.count(method="POST") == 1
    assert fake.count(prefix="/orgs/acme/") == 3
    assert fake.count() == 4
    assert fake.requests[-1].status == 404 and fake.requests[0].route == LIST
    fake.clear_log()
    assert fake.count() == 0


def test_keep_alive_answers_without_delayed_ack_stalls(
    fake: GitHubFake, client: FakeGitHubClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With Nagle's algorithm on, each keep-alive answer would wait ~40 ms for the delayed ACK:
    # every call reuses one connection, and that connection has TCP_NODELAY set. A second server
    # of the same fake, so that its accepted connections can be seen.
    server = make_server(fake, "127.0.0.1", 0)
    accepted: list[socket.socket] = []
    accept = server.get_request

    def get_request() -> tuple[socket.socket, object]:
        connection, address = accept()
        accepted.append(connection)
        return connection, address

    monkeypatch.setattr(server, "get_request", get_request)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                               daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/v3{REG_PATH}"
    try:
        for _ in range(15):
            assert client.call("POST", url, token).status_code == 201
        assert len(accepted) == 1
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        serving.join(timeout=5)
