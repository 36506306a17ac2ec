"""Fixtures of the GitHub fake's contract tests (the GitHub client tests define their own
`client`, the App client under test, which takes precedence in their modules)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from github_client_support import ManualClock

from devstack.github_fake import GitHubFake
from devstack.github_testing import FakeGitHubClient


@pytest.fixture
def fake(devstack: Any) -> Iterator[GitHubFake]:
    """The session's GitHub fake, emptied; every response it sent must conform to the spec."""
    github: GitHubFake = devstack.github
    github.reset()
    yield github
    assert github.violations == []


@pytest.fixture
def client(fake: GitHubFake) -> Iterator[FakeGitHubClient]:
    """An HTTP client of the fake."""
    http = FakeGitHubClient(fake)
    yield http
    http.close()


@pytest.fixture
def token(client: FakeGitHubClient) -> str:
    """An installation token of `acme` (the test module's `fake` installs it)."""
    return client.installation_token("acme")


@pytest.fixture
def clock(stack: Any, monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """One manual clock for the GitHub client under test and the GitHub fake."""
    manual = ManualClock()
    monkeypatch.setattr(stack.github, "clock", manual)
    return manual
