"""Builders shared by the GitHub client's adapter tests: a manual clock and a client on devstack."""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from chalicelib.aws.ssm import Ssm
from chalicelib.github.client import GitHubClient
from chalicelib.logs import JsonFormatter
from chalicelib.settings import load_settings
from chalicelib.wiring import github_config

ORG = "acme"


class ManualClock:
    """Wall time frozen at creation; moves only when slept on or advanced (no real waiting)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.now = time.time() + offset
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSession(requests.Session):
    """A real session that also remembers the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, *args, **kwargs)


def make_client(stack: Any, clock: ManualClock, *, org: bool = True,
                session: requests.Session | None = None, **env: str) -> GitHubClient:
    """A GitHubClient on devstack driven by `clock` (give the fake the same clock)."""
    values = stack.env(ENABLE_ORGANIZATION_RUNNERS="true" if org else "false", **env)
    settings = load_settings(values, "scale_down")
    return GitHubClient(github_config(settings, "scale_down"), Ssm(stack.boto("ssm")),
                        session=session, clock=clock, sleep=clock.sleep)


def rendered_logs(records: list[logging.LogRecord]) -> str:
    """Every captured record as the production JSON line, fields included."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in records)


def token_calls(stack: Any) -> int:
    """How many installation tokens the fake has minted."""
    return int(stack.github.count(route="POST /app/installations/{installation_id}/access_tokens"))
