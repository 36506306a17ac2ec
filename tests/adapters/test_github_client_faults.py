"""The GitHub client under faults (devstack's GitHub fake): retries, rate limits, 401s, no secrets.

The client and the fake share a manual clock, and the client's sleep advances it: waits of minutes
take no real time, and what the client waited is read from `clock.sleeps`.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from typing import Any

import pytest
from github_client_support import (
    ORG,
    ManualClock,
    RecordingSession,
    make_client,
    rendered_logs,
    token_calls,
)

from chalicelib import metrics
from chalicelib.errors import PermanentError, RetryableError
from chalicelib.github.client import GitHubClient
from chalicelib.github.http import DEADLINE_MARGIN_SECONDS

JIT = "POST /orgs/{org}/actions/runners/generate-jitconfig"
REGISTRATION = "POST /orgs/{org}/actions/runners/registration-token"
RUNNERS = "GET /orgs/{org}/actions/runners"


@pytest.fixture
def client(stack: Any, clock: ManualClock) -> GitHubClient:
    stack.github.add_installation(ORG)
    return make_client(stack, clock)


def _jit(client: GitHubClient, name: str = "i-0abc") -> Any:
    return client.jit_config(ORG, "Org", name, 1, ["self-hosted"])


# -- 5xx, network errors, timeouts, client errors -------------------------------------------------


def test_5xx_then_success_retries_with_jittered_backoff_and_logs_the_call(
    stack: Any, client: GitHubClient, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ghr")
    stack.github.fail_next(JIT, 2, 502)
    assert _jit(client).runner_id
    assert stack.github.count(route=JIT) == 3
    assert len(clock.sleeps) == 2 and all(0 <= s <= 1.0 for s in clock.sleeps)
    retries = [r for r in caplog.records if r.getMessage() == "github retry"]
    assert len(retries) == 2
    assert retries[0].fields["call"] == JIT and retries[0].fields["failure"].startswith("502")


def test_5xx_persistent_then_retryable_error_naming_the_call_after_4_attempts(
    stack: Any, client: GitHubClient
) -> None:
    stack.github.fail_next(JIT, 10, 503)
    expected = r"^POST /orgs/\{org\}/actions/runners/generate-jitconfig: 503 .*after 4 attempts"
    with pytest.raises(RetryableError, match=expected):
        _jit(client)
    assert stack.github.count(route=JIT) == 4


def test_5xx_when_backoff_exceeds_the_deadline_then_retryable_at_once(
    stack: Any, client: GitHubClient
) -> None:
    client.registration_token(ORG, "Org")
    client.set_deadline(DEADLINE_MARGIN_SECONDS)  # nothing left to wait with
    stack.github.fail_next(JIT, 3, 500)
    with pytest.raises(RetryableError, match="would exceed the time left"):
        _jit(client)
    assert stack.github.count(route=JIT) == 1


def test_connection_refused_then_retryable_error_after_bounded_retries(
    stack: Any, clock: ManualClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    client = make_client(stack, clock, GHES_URL=closed)
    with pytest.raises(RetryableError, match=r"GET /orgs/\{org\}/installation: ConnectionError"):
        client.installation_id(ORG, "Org")
    assert len(clock.sleeps) == 3


def test_read_timeout_is_cut_to_the_deadline_and_classed_retryable(
    stack: Any, clock: ManualClock
) -> None:
    session = RecordingSession()
    client = make_client(stack, clock, session=session)
    stack.github.add_installation(ORG)
    client.registration_token(ORG, "Org")
    stack.github.add_latency(RUNNERS, 1.5)
    client.set_deadline(DEADLINE_MARGIN_SECONDS)
    started = time.monotonic()
    with pytest.raises(RetryableError, match=r"GET /orgs/\{org\}/actions/runners: ReadTimeout"):
        client.list_runners(ORG, "Org")
    assert time.monotonic() - started < 1.45
    assert session.calls[-1]["timeout"][1] == 1.0


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_client_errors_are_permanent_and_not_retried(
    stack: Any, client: GitHubClient, status: int
) -> None:
    stack.github.fail_next(JIT, 1, status)
    with pytest.raises(PermanentError, match=rf"generate-jitconfig: {status} "):
        _jit(client)
    assert stack.github.count(route=JIT) == 1


# -- rate limits -----------------------------------------------------------------------------------


def test_primary_limit_within_the_deadline_then_waits_until_reset_and_succeeds(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    client.set_deadline(900)
    stack.github.primary_limit_next(JIT, 1, reset_in=120)
    assert _jit(client).runner_id
    assert 120 <= sum(clock.sleeps) <= 123
    assert stack.github.count(route=JIT) == 2


def test_primary_limit_beyond_the_deadline_then_retryable_and_no_call_until_reset(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    client.set_deadline(30)
    stack.github.primary_limit_next(JIT, 1, reset_in=120)
    with pytest.raises(RetryableError, match="primary rate limit"):
        _jit(client, "i-1")
    client.set_deadline(30)  # the next invocation, same container
    with pytest.raises(RetryableError, match="primary rate limit"):
        client.registration_token(ORG, "Org")
    assert stack.github.count(route=JIT) == 1 and stack.github.count(route=REGISTRATION) == 0
    assert clock.sleeps == []
    clock.advance(125)
    assert client.registration_token(ORG, "Org")


def test_spent_budget_seen_on_success_then_next_call_waits_and_metric_published(
    stack: Any, client: GitHubClient, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    installation = client.installation_id(ORG, "Org")
    stack.github.set_rate_limit(installation, remaining=2, reset_epoch=clock.now + 600)
    client.registration_token(ORG, "Org")  # token mint is on the App's budget; this spends 1
    client.registration_token(ORG, "Org")  # spends the last one: remaining 0
    client.set_deadline(60)
    before = stack.github.count(route=REGISTRATION)
    with pytest.raises(RetryableError, match="primary rate limit exhausted"):
        client.registration_token(ORG, "Org")
    assert stack.github.count(route=REGISTRATION) == before
    assert client.rate_limit["remaining"] == 0 and client.rate_limit["resource"] == "core"
    metrics.flush()
    capsys.readouterr()
    client.log_summary()
    metrics.flush()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                 if "GitHubAppRateLimitRemaining" in line and line.startswith("{")]
    assert any(doc.get("GitHubAppRateLimitRemaining") == 0 for doc in documents)


def test_secondary_limit_honours_retry_after(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    stack.github.secondary_limit_next(JIT, 1, retry_after=30)
    assert _jit(client).runner_id
    assert clock.sleeps == [30.0]


def test_secondary_limit_repeated_then_exponential_waits_and_bounded_requests(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    stack.github.secondary_limit_next(JIT, 10, retry_after=30)
    with pytest.raises(RetryableError, match="secondary rate limit"):
        _jit(client)
    assert clock.sleeps == [30.0, 60.0, 120.0]
    assert stack.github.count(route=JIT) == 4


def test_secondary_limit_without_retry_after_then_waits_a_minute(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    stack.github.fail_next(JIT, 1, 429)
    assert _jit(client).runner_id
    assert clock.sleeps == [60.0]


def test_secondary_limit_beyond_the_deadline_then_retryable_at_once(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    client.set_deadline(20)
    stack.github.secondary_limit_next(JIT, 1, retry_after=60)
    with pytest.raises(RetryableError, match="would exceed the time left"):
        _jit(client)
    assert clock.sleeps == [] and stack.github.count(route=JIT) == 1


def test_burst_of_181_writes_paced_to_180_per_minute_never_meets_the_secondary_limit(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    for _ in range(181):
        client.registration_token(ORG, "Org")
    assert len(clock.sleeps) == 1 and 59.0 <= clock.sleeps[0] <= 61.0
    statuses = {entry.status for entry in stack.github.requests if entry.route == REGISTRATION}
    assert statuses == {201}


# -- 401s ------------------------------------------------------------------------------------------


def test_clock_90s_fast_then_permanent_error_naming_clock_skew_without_a_loop(
    stack: Any, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    fast = ManualClock(offset=clock.now - time.time() + 90)
    client = make_client(stack, fast)
    with pytest.raises(PermanentError, match="check the host clock"):
        client.registration_token(ORG, "Org")
    assert len(stack.github.requests) == 1


def test_token_revoked_mid_batch_then_one_refresh_and_retry(
    stack: Any, client: GitHubClient
) -> None:
    client.registration_token(ORG, "Org")
    stack.github.revoke_tokens(client.installation_id(ORG, "Org"))
    assert _jit(client).runner_id
    assert token_calls(stack) == 2


def test_token_rejected_twice_then_permanent_error_and_no_more_tries(
    stack: Any, client: GitHubClient
) -> None:
    client.registration_token(ORG, "Org")
    stack.github.fail_next(JIT, 2, 401)
    with pytest.raises(PermanentError, match="401 installation token rejected after a refresh"):
        _jit(client)
    assert stack.github.count(route=JIT) == 2 and token_calls(stack) == 2


# -- secrets ---------------------------------------------------------------------------------------


def test_no_token_key_or_config_appears_in_logs_or_errors(
    stack: Any, client: GitHubClient, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The project's loggers at their most verbose (botocore's own DEBUG output, which would
    # print SSM responses, stays off as it does in Lambda).
    caplog.set_level(logging.DEBUG, logger="ghr")
    errors: list[str] = []
    registration = client.registration_token(ORG, "Org")
    stack.github.fail_next(JIT, 1, 502)
    stack.github.secondary_limit_next(JIT, 1, retry_after=5)
    jit = _jit(client)
    stack.github.revoke_tokens(client.installation_id(ORG, "Org"))
    client.list_runners(ORG, "Org")
    for fault in (lambda: stack.github.fail_next(JIT, 2, 401),
                  lambda: stack.github.fail_next(JIT, 4, 502),
                  lambda: stack.github.primary_limit_next(JIT, 1, reset_in=3600)):
        fault()
        client.set_deadline(60)
        with pytest.raises((RetryableError, PermanentError)) as raised:
            _jit(client, f"i-{len(errors)}")
        errors.append(str(raised.value))
    client.log_summary()
    pem = stack.github.private_key_pem
    secrets = [registration, jit.encoded_jit_config, *stack.github.installation_tokens,
               pem.splitlines()[1], base64.b64encode(pem.encode()).decode()[:40]]
    text = rendered_logs(caplog.records) + "\n".join(errors) + caplog.text
    assert len(stack.github.installation_tokens) >= 2
    assert "github retry" in text and "primary rate limit" in errors[2]
    for secret in secrets:
        assert secret not in text
    assert "eyJ" not in text  # no JWT
