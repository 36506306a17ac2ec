"""The pure rules of GitHub traffic: base URL, backoff, rate-limit classification, write pacing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from chalicelib.github.limits import (
    SlidingWindowPacer,
    api_base_url,
    backoff_delay,
    classify_rate_limit,
    unauthorized_hint,
)
from chalicelib.rules.launch import web_base_url


@pytest.mark.parametrize(
    ("ghes_url", "expected"),
    [
        (None, "https://api.github.com"),
        ("", "https://api.github.com"),
        ("https://ghes.example.com", "https://ghes.example.com/api/v3"),
        ("https://ghes.example.com/", "https://ghes.example.com/api/v3"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v3"),
        ("https://acme.ghe.com", "https://api.acme.ghe.com"),
        ("https://ACME.GHE.COM/", "https://api.ACME.GHE.COM"),
        ("https://api.acme.ghe.com", "https://api.acme.ghe.com"),
    ],
)
def test_api_base_url_when_ghes_url_given_then_follows_github_hosting(
    ghes_url: str | None, expected: str
) -> None:
    assert api_base_url(ghes_url) == expected


def test_web_base_url_when_unset_then_github_com_else_ghes_url() -> None:
    assert web_base_url(None) == "https://github.com"
    assert web_base_url("https://ghes.example.com/") == "https://ghes.example.com"


def test_backoff_delay_when_attempts_grow_then_ceiling_doubles_up_to_cap() -> None:
    ceilings = [backoff_delay(n, base=0.5, cap=8.0, rand=lambda: 1.0) for n in range(7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@given(attempt=st.integers(min_value=0, max_value=60), fraction=st.floats(0.0, 1.0))
def test_backoff_delay_is_full_jitter_between_zero_and_ceiling(
    attempt: int, fraction: float
) -> None:
    delay = backoff_delay(attempt, base=0.5, cap=8.0, rand=lambda: fraction)
    assert 0.0 <= delay <= 8.0
    assert delay == pytest.approx(fraction * min(8.0, 0.5 * 2**attempt))


def _headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({name.replace("_", "-"): value for name, value in values.items()})


def test_classify_when_remaining_zero_then_primary_wait_until_reset() -> None:
    hit = classify_rate_limit(
        403, _headers(x_ratelimit_remaining="0", x_ratelimit_reset="1120"), "API rate limit", 1000.0
    )
    assert hit is not None and hit.kind == "primary"
    assert 120.0 <= hit.wait_seconds <= 122.0


def test_classify_when_429_remaining_zero_and_reset_past_then_short_primary_wait() -> None:
    hit = classify_rate_limit(
        429, _headers(X_RateLimit_Remaining="0", X_RateLimit_Reset="900"), "", 1000.0
    )
    assert hit is not None and hit.kind == "primary" and hit.wait_seconds <= 2.0


def test_classify_when_retry_after_then_secondary_honours_it_and_doubles_on_repeat() -> None:
    headers = _headers(retry_after="30", x_ratelimit_remaining="4000")
    first = classify_rate_limit(429, headers, "secondary rate limit", 0.0)
    second = classify_rate_limit(429, headers, "secondary rate limit", 0.0, earlier_hits=1)
    assert first is not None and first.kind == "secondary" and first.wait_seconds == 30.0
    assert second is not None and second.wait_seconds == 60.0


def test_classify_when_secondary_message_without_retry_after_then_waits_a_minute() -> None:
    hit = classify_rate_limit(
        403, _headers(x_ratelimit_remaining="4999"),
        "You have exceeded a secondary rate limit. Please wait a few minutes.", 0.0,
    )
    assert hit is not None and hit.kind == "secondary" and hit.wait_seconds == 60.0


@pytest.mark.parametrize("status", [400, 401, 404, 422, 500, 502])
def test_classify_when_not_403_or_429_then_none(status: int) -> None:
    assert classify_rate_limit(status, _headers(retry_after="5"), "", 0.0) is None


def test_classify_when_plain_forbidden_then_not_a_rate_limit() -> None:
    message = "Resource not accessible by integration"
    assert classify_rate_limit(403, _headers(x_ratelimit_remaining="10"), message, 0.0) is None


def test_unauthorized_hint_names_clock_skew_key_or_token() -> None:
    skew = "'Expiration time' claim ('exp') is too far in the future"
    assert "clock" in unauthorized_hint(skew)
    assert "key" in unauthorized_hint("A JSON web token could not be decoded")
    assert unauthorized_hint("Bad credentials") == "credentials rejected"


def test_pacer_when_burst_within_limit_then_no_wait() -> None:
    pacer = SlidingWindowPacer(limit=180, window=60.0)
    waits = [pacer.try_acquire("POST /x", 1000.0 + i * 0.01) for i in range(180)]
    assert waits == [0.0] * 180


def test_pacer_when_limit_reached_then_waits_until_oldest_leaves_window() -> None:
    pacer = SlidingWindowPacer(limit=3, window=60.0)
    for at in (0.0, 10.0, 20.0):
        assert pacer.try_acquire("k", at) == 0.0
    assert pacer.try_acquire("k", 30.0) == pytest.approx(30.0)
    assert pacer.wait_time("k", 59.0) == pytest.approx(1.0)
    assert pacer.try_acquire("k", 60.0) == 0.0  # the event at 0 has left the window
    assert pacer.try_acquire("k", 61.0) == pytest.approx(9.0)


def test_pacer_when_keys_differ_then_windows_are_independent() -> None:
    pacer = SlidingWindowPacer(limit=1, window=60.0)
    assert pacer.try_acquire("POST /a", 0.0) == 0.0
    assert pacer.try_acquire("POST /b", 0.0) == 0.0
    assert pacer.try_acquire("POST /a", 1.0) > 0.0


@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=600))
def test_pacer_never_admits_more_than_limit_in_any_window(gaps: list[float]) -> None:
    pacer = SlidingWindowPacer(limit=180, window=60.0)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        while (wait := pacer.try_acquire("k", now)) > 0:
            now += wait
        admitted.append(now)
    for index, start in enumerate(admitted):
        in_window = [t for t in admitted[index:] if t < start + 60.0]
        assert len(in_window) <= 180


def test_pacer_capacity_counts_what_fits_now_and_what_frees_up_before_a_horizon() -> None:
    pacer = SlidingWindowPacer(limit=3, window=60.0)
    assert pacer.capacity("k", 0.0) == 3
    for moment in (0.0, 10.0):
        assert pacer.try_acquire("k", moment) == 0.0
    assert pacer.capacity("k", 20.0) == 1
    assert pacer.capacity("k", 20.0, within=45.0) == 2  # the write at 0 has left by 65
    assert pacer.capacity("k", 20.0, within=120.0) == 3
    assert pacer.capacity("other", 20.0) == 3
