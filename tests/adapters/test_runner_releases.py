"""actions/runner's releases against the GitHub fake standing in for github.com's API: the asset
of each OS and architecture, its published SHA-256, and the prerelease option."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests

from chalicelib.errors import PermanentError
from chalicelib.github.releases import RunnerReleases


@pytest.fixture
def releases(stack: Any) -> RunnerReleases:
    return RunnerReleases(stack.github.api_url)


@pytest.mark.parametrize(("os_name", "arch", "suffix"),
                         [("linux", "x64", "linux-x64"), ("windows", "x64", "win-x64"),
                          ("linux", "arm64", "linux-arm64")])
def test_latest_picks_the_asset_of_os_and_arch_with_the_sha256_of_the_release_notes(
        stack: Any, releases: RunnerReleases, os_name: str, arch: str, suffix: str) -> None:
    release = releases.latest(os_name, arch)

    assert release.version == stack.github.runner_version
    assert release.filename.startswith(f"actions-runner-{suffix}-{release.version}.")
    assert release.filename.endswith(".zip" if os_name == "windows" else ".tar.gz")
    body = requests.get(release.download_url, timeout=5).content
    assert release.sha256 == hashlib.sha256(body).hexdigest()
    assert stack.github.count(route="GET /repos/{owner}/{repo}/releases/latest") == 1


def test_latest_is_anonymous(stack: Any, releases: RunnerReleases) -> None:
    sent: list[requests.PreparedRequest] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, **_: sent.append(response.request))

    RunnerReleases(stack.github.api_url, session=session).latest("linux", "x64")

    assert [r.headers.get("Authorization") for r in sent] == [None]


def test_a_prerelease_is_taken_only_when_allowed_and_newer(stack: Any,
                                                           releases: RunnerReleases) -> None:
    stack.github.set_runner_prerelease("2.400.0")
    allowed = RunnerReleases(stack.github.api_url, prerelease=True)

    assert releases.latest("linux", "x64").version == stack.github.runner_version
    assert allowed.latest("linux", "x64").version == "2.400.0"
    assert stack.github.count(route="GET /repos/{owner}/{repo}/releases") == 1
    stack.github.set_runner_prerelease(None)
    assert allowed.latest("linux", "x64").version == stack.github.runner_version


def test_the_asset_digest_stands_in_for_notes_without_a_marker(
        stack: Any, monkeypatch: pytest.MonkeyPatch, releases: RunnerReleases) -> None:
    monkeypatch.setattr("devstack.github_releases.release_notes", lambda version: "no markers")

    release = releases.latest("linux", "x64")

    assert release.sha256 == hashlib.sha256(stack.github.release_bytes("linux", "x64")).hexdigest()


def test_an_os_without_an_asset_is_a_permanent_error(releases: RunnerReleases) -> None:
    with pytest.raises(PermanentError, match="no asset actions-runner-solaris-x64-"):
        releases.latest("solaris", "x64")
