"""Releases of `actions/runner` as the GitHub fake serves them: metadata and deterministic archives.

The archives are small but real (a gzip'd tar, or a zip for Windows) so a downloader can check
what it stored; the same os/arch/version always gives the same bytes. As on github.com, a
release's notes carry each archive's SHA-256 between `<!-- BEGIN SHA <os>-<arch> -->` and
`<!-- END SHA <os>-<arch> -->` markers, and a prerelease is listed (`GET .../releases`) but never
`latest`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from typing import Any

from devstack.github_render import iso, node_id, user

OSES = ("linux", "osx", "win")
ARCHES = ("x64", "arm64")
RELEASE_ID = 180_000_000
DOWNLOAD_PREFIX = "/actions/runner/releases/download/"
ASSET_NAME = re.compile(
    r"^actions-runner-(?P<os>linux|osx|win)-(?P<arch>x64|arm64)-(?P<version>\d+\.\d+\.\d+)"
    r"\.(?P<ext>tar\.gz|zip)$"
)
PUBLISHED_AT = 1_733_000_000.0  # a fixed date keeps responses reproducible


def asset_name(os_name: str, arch: str, version: str) -> str:
    """`actions-runner-<os>-<arch>-<version>.tar.gz`, or `.zip` for Windows."""
    ext = "zip" if os_name == "win" else "tar.gz"
    return f"actions-runner-{os_name}-{arch}-{version}.{ext}"


def download_path(os_name: str, arch: str, version: str) -> str:
    """The fake's (github.com-shaped) path of an asset."""
    return f"{DOWNLOAD_PREFIX}v{version}/{asset_name(os_name, arch, version)}"


def parse_download_path(path: str) -> tuple[str, str, str] | None:
    """(os, arch, version) of a download path the fake serves, else None."""
    if not path.startswith(DOWNLOAD_PREFIX):
        return None
    tag, _, name = path[len(DOWNLOAD_PREFIX) :].partition("/")
    match = ASSET_NAME.match(name)
    if match is None or tag != f"v{match['version']}":
        return None
    if (match["ext"] == "zip") != (match["os"] == "win"):
        return None
    return match["os"], match["arch"], match["version"]


@functools.lru_cache(maxsize=64)
def asset_bytes(os_name: str, arch: str, version: str) -> bytes:
    """The archive for os/arch/version: same input, same bytes."""
    seed = f"actions-runner {os_name} {arch} {version}".encode()
    # 4 KiB of incompressible, reproducible payload.
    payload = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(128))
    files = {
        "config.sh" if os_name != "win" else "config.cmd": f"# config {version}\n".encode(),
        "run.sh" if os_name != "win" else "run.cmd": f"# run {version}\n".encode(),
        f"bin/Runner.Listener{'.exe' if os_name == 'win' else ''}": payload,
    }
    buffer = io.BytesIO()
    if os_name == "win":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
        return buffer.getvalue()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def release_notes(version: str) -> str:
    """The release body: a line, then each archive's SHA-256 between GitHub's markers."""
    lines = [f"Runner {version}", "",
             "The SHA-256 checksums for the packages included in this build are shown below:", ""]
    for os_name, arch in ((o, a) for o in OSES for a in ARCHES):
        digest = hashlib.sha256(asset_bytes(os_name, arch, version)).hexdigest()
        lines.append(f"- {asset_name(os_name, arch, version)} <!-- BEGIN SHA {os_name}-{arch} -->"
                     f"{digest}<!-- END SHA {os_name}-{arch} -->")
    return "\n".join(lines)


def latest_release(version: str, web: str, api: str, prerelease: bool = False,
                   offset: int = 0) -> dict[str, Any]:
    """The `release` object of GET /repos/actions/runner/releases/latest (or, with `offset`,
    another release of the list)."""
    author = user("github-actions[bot]", 41898282, "Bot", web, api)
    repo_api = f"{api}/repos/actions/runner"
    release_id = RELEASE_ID + offset
    assets = []
    for index, (os_name, arch) in enumerate((o, a) for o in OSES for a in ARCHES):
        asset_id = release_id * 10 + index
        name = asset_name(os_name, arch, version)
        assets.append(
            {
                "url": f"{repo_api}/releases/assets/{asset_id}",
                "browser_download_url": web + download_path(os_name, arch, version),
                "id": asset_id,
                "node_id": node_id("ReleaseAsset", asset_id),
                "name": name,
                "label": "",
                "state": "uploaded",
                "content_type": "application/zip" if os_name == "win" else "application/gzip",
                "size": len(asset_bytes(os_name, arch, version)),
                "digest": "sha256:"
                + hashlib.sha256(asset_bytes(os_name, arch, version)).hexdigest(),
                "download_count": 0,
                "created_at": iso(PUBLISHED_AT),
                "updated_at": iso(PUBLISHED_AT),
                "uploader": author,
            }
        )
    return {
        "url": f"{repo_api}/releases/{release_id}",
        "html_url": f"{web}/actions/runner/releases/tag/v{version}",
        "assets_url": f"{repo_api}/releases/{release_id}/assets",
        "upload_url": f"{repo_api}/releases/{release_id}/assets{{?name,label}}",
        "tarball_url": f"{repo_api}/tarball/v{version}",
        "zipball_url": f"{repo_api}/zipball/v{version}",
        "id": release_id,
        "node_id": node_id("Release", release_id),
        "tag_name": f"v{version}",
        "target_commitish": "main",
        "name": f"v{version}",
        "body": release_notes(version),
        "draft": False,
        "prerelease": prerelease,
        "created_at": iso(PUBLISHED_AT),
        "published_at": iso(PUBLISHED_AT),
        "author": author,
        "assets": assets,
    }


def release_list(version: str, prerelease: str | None, web: str, api: str) -> list[dict[str, Any]]:
    """GET /repos/actions/runner/releases: newest first, so the prerelease (when newer than the
    latest release) before it."""
    releases = [latest_release(version, web, api)]
    if prerelease is not None and _numbers(prerelease) > _numbers(version):
        releases.insert(0, latest_release(prerelease, web, api, prerelease=True, offset=1))
    return releases


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())
