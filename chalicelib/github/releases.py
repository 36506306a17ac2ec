"""The releases of actions/runner, which `sync_runner_binaries` caches (docs/REFERENCE.md §4).

Raw release JSON stops here; callers get a `RunnerRelease` with the SHA-256 GitHub published.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from chalicelib.errors import PermanentError
from chalicelib.github.http import GitHubHttp
from chalicelib.models import RunnerRelease

_RELEASE_OS = {"linux": "linux", "windows": "win", "osx": "osx", "macos": "osx"}
# How actions/runner's release notes publish each archive's checksum.
_SHA_MARKER = "<!-- BEGIN SHA {name} -->([0-9a-fA-F]{{64}})<!-- END SHA {name} -->"


class RunnerReleases:
    """actions/runner's releases, read anonymously from github.com's API or a mirror of it.

    Never from GitHub Enterprise Server, which does not host actions/runner; so no App token is
    needed. Anonymous calls get 60 an hour per address, plenty for an hourly sync.
    """

    def __init__(self, api_url: str, *, prerelease: bool = False,
                 session: requests.Session | None = None) -> None:
        self.http = GitHubHttp(api_url, session=session)
        self.prerelease = prerelease

    def latest(self, os: str, arch: str) -> RunnerRelease:
        """The newest release's asset for `os` (linux, windows) and `arch`, with its SHA-256
        (the notes' marker, else the asset's digest); a prerelease only when allowed and newer
        than the latest release (first in GitHub's newest-first list)."""
        data = self._release()
        version = str(data.get("tag_name", "")).lstrip("v")
        name = f"{_RELEASE_OS.get(os, os)}-{arch}"
        prefix = f"actions-runner-{name}-{version}."
        for asset in data.get("assets", []):
            if str(asset.get("name", "")).startswith(prefix):
                marker = re.search(_SHA_MARKER.format(name=name), str(data.get("body") or ""))
                digest = str(asset.get("digest") or "")
                sha = marker.group(1) if marker else digest.removeprefix("sha256:") or None
                return RunnerRelease(version=version, filename=str(asset["name"]),
                                     download_url=str(asset["browser_download_url"]),
                                     sha256=sha.lower() if sha else None)
        raise PermanentError(f"actions/runner release {version}: no asset {prefix}*")

    def _release(self) -> dict[str, Any]:
        path = {"owner": "actions", "repo": "runner"}
        if not self.prerelease:
            answer = self.http.request("GET", "/repos/{owner}/{repo}/releases/latest", path)
            return dict(answer.json())
        listed = self.http.request("GET", "/repos/{owner}/{repo}/releases", path,
                                   query={"per_page": 10}).json()
        published = [r for r in listed if isinstance(r, dict) and not r.get("draft")]
        if not published:
            raise PermanentError("GET /repos/{owner}/{repo}/releases: no published release")
        return dict(published[0])
