"""sync_runner_binaries against devstack: moto S3 and the GitHub fake's releases and downloads
(the fake stands in for github.com's release API through RUNNER_RELEASES_API_URL)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib import wiring
from chalicelib.errors import PermanentError, RetryableError
from chalicelib.models import RunnerRelease
from chalicelib.services.runner_binaries import (
    SHA256_METADATA_KEY,
    VERSION_METADATA_KEY,
    ChecksumMismatch,
    object_key,
    run_sync,
    sync_runner_binaries,
)
from devstack.github_fake import DOWNLOAD_ROUTE

BUCKET = "devstack-runner-binaries"
NO_SHA = "0" * 64


@pytest.fixture
def binaries(env: dict[str, str], stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty runner-binaries bucket, named in the functions' environment."""
    s3 = stack.boto("s3")
    s3.create_bucket(Bucket=BUCKET,
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("RUNNER_BINARIES_BUCKET", BUCKET)
    wiring.reset()
    return s3


def _object(s3: Any, key: str) -> tuple[bytes, dict[str, str]]:
    response = s3.get_object(Bucket=BUCKET, Key=key)
    return response["Body"].read(), response["Metadata"]


def test_sync_copies_the_latest_release_when_the_bucket_is_empty(binaries: Any,
                                                                  stack: Any) -> None:
    result = run_sync(wiring.sync_runner_binaries())

    body, metadata = _object(binaries, "actions-runner-linux-x64.tar.gz")
    assert result.uploaded is True
    assert body == stack.github.release_bytes("linux", "x64")
    assert metadata[VERSION_METADATA_KEY] == result.version == stack.github.runner_version
    # What the start scripts check before installing: the SHA-256 GitHub published.
    assert metadata[SHA256_METADATA_KEY] == hashlib.sha256(body).hexdigest()


def test_sync_leaves_the_object_alone_when_version_and_checksum_are_unchanged(
        binaries: Any) -> None:
    deps = wiring.sync_runner_binaries()
    first = run_sync(deps)
    assert first is not None
    sha = _object(binaries, first.key)[1][SHA256_METADATA_KEY]
    # Same version and checksum recorded, other bytes: a second upload would overwrite them.
    binaries.put_object(Bucket=BUCKET, Key=first.key, Body=b"kept",
                        Metadata={VERSION_METADATA_KEY: first.version, SHA256_METADATA_KEY: sha})

    second = run_sync(deps)

    assert second is not None and second.uploaded is False
    assert _object(binaries, first.key)[0] == b"kept"


def test_sync_uploads_again_a_current_version_that_lacks_its_checksum(binaries: Any,
                                                                       stack: Any) -> None:
    key = object_key("linux", "x64")
    binaries.put_object(Bucket=BUCKET, Key=key, Body=b"older syncer",
                        Metadata={VERSION_METADATA_KEY: stack.github.runner_version})

    result = run_sync(wiring.sync_runner_binaries())

    body, metadata = _object(binaries, key)
    assert result is not None and result.uploaded is True
    assert body == stack.github.release_bytes("linux", "x64")
    assert metadata[SHA256_METADATA_KEY] == hashlib.sha256(body).hexdigest()


def test_sync_replaces_the_object_when_a_new_release_is_out(binaries: Any, stack: Any) -> None:
    deps = wiring.sync_runner_binaries()
    run_sync(deps)
    stack.github.set_latest_runner_version("2.999.1")

    result = run_sync(deps)

    assert result is not None
    body, metadata = _object(binaries, result.key)
    assert (result.uploaded, result.version) == (True, "2.999.1")
    assert metadata[VERSION_METADATA_KEY] == "2.999.1"
    assert body == stack.github.release_bytes("linux", "x64")


def test_sync_caches_the_windows_zip_under_its_own_key(binaries: Any, stack: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_OS", "windows")
    wiring.reset()

    result = run_sync(wiring.sync_runner_binaries())

    assert result is not None
    assert result.key == object_key("windows", "x64") == "actions-runner-windows-x64.zip"
    assert _object(binaries, result.key)[0] == stack.github.release_bytes("win", "x64")


class _SpySession(requests.Session):
    """A real session that remembers how each GET was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[dict[str, Any]] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.gets.append(kwargs)
        return super().get(url, **kwargs)


def test_sync_streams_the_download_instead_of_reading_it_whole(binaries: Any) -> None:
    settings = wiring.settings("sync_runner_binaries")
    session = _SpySession()

    sync_runner_binaries(settings, wiring.sync_runner_binaries().find_release, binaries,
                         session=session)

    assert [get["stream"] for get in session.gets] == [True]


def test_sync_reports_a_5xx_download_as_retryable_and_publishes_nothing(binaries: Any,
                                                                      stack: Any) -> None:
    stack.github.fail_next(DOWNLOAD_ROUTE, status=503)

    with pytest.raises(RetryableError, match="HTTP 503"):
        run_sync(wiring.sync_runner_binaries())

    assert binaries.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    """Promises 1 MiB, sends 1 KiB, then hangs up: a connection lost mid-download."""

    def do_GET(self) -> None:
        if self.path.endswith("missing.tar.gz"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(1024 * 1024))
        self.end_headers()
        self.wfile.write(b"x" * 1024)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def truncating_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sync_never_publishes_a_truncated_download(binaries: Any, truncating_server: str) -> None:
    release = RunnerRelease("9.9.9", "actions-runner-linux-x64-9.9.9.tar.gz",
                            f"{truncating_server}/actions-runner-linux-x64-9.9.9.tar.gz", NO_SHA)

    with pytest.raises(RetryableError):
        sync_runner_binaries(wiring.settings("sync_runner_binaries"),
                             lambda os, arch: release, binaries)

    assert binaries.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_sync_reports_a_missing_asset_as_permanent(binaries: Any, truncating_server: str) -> None:
    release = RunnerRelease("9.9.9", "missing.tar.gz", f"{truncating_server}/missing.tar.gz",
                            NO_SHA)

    with pytest.raises(PermanentError, match="HTTP 404"):
        sync_runner_binaries(wiring.settings("sync_runner_binaries"),
                             lambda os, arch: release, binaries)


class _ArchiveHandler(http.server.BaseHTTPRequestHandler):
    """Serves `/<n>.tar.gz`: n reproducible bytes."""

    def do_GET(self) -> None:
        size = int(self.path.strip("/").split(".")[0])
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(_archive(size))

    def log_message(self, *args: Any) -> None:
        """Keep the test output quiet."""


def _archive(size: int) -> bytes:
    return (b"actions-runner " * (size // 15 + 1))[:size]


@pytest.fixture
def archive_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ArchiveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("size", [4096, 20 * 1024 * 1024], ids=["one-put", "multipart"])
def test_sync_publishes_nothing_when_the_download_is_not_what_github_published(
        binaries: Any, archive_server: str, size: int) -> None:
    published = hashlib.sha256(_archive(size) + b"!").hexdigest()
    release = RunnerRelease("9.9.9", "actions-runner-linux-x64-9.9.9.tar.gz",
                            f"{archive_server}/{size}.tar.gz", published)

    with pytest.raises(ChecksumMismatch, match=f"GitHub published {published}"):
        sync_runner_binaries(wiring.settings("sync_runner_binaries"),
                             lambda os, arch: release, binaries)

    assert binaries.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    # The multipart upload was aborted, not left half done.
    assert binaries.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_sync_publishes_a_multipart_download_whose_checksum_matches(
        binaries: Any, archive_server: str) -> None:
    size = 20 * 1024 * 1024
    release = RunnerRelease("9.9.9", "actions-runner-linux-x64-9.9.9.tar.gz",
                            f"{archive_server}/{size}.tar.gz",
                            hashlib.sha256(_archive(size)).hexdigest())

    sync_runner_binaries(wiring.settings("sync_runner_binaries"), lambda os, arch: release,
                         binaries)

    body, metadata = _object(binaries, object_key("linux", "x64"))
    assert body == _archive(size)
    assert metadata[SHA256_METADATA_KEY] == release.sha256


def test_sync_refuses_a_release_without_a_published_checksum(binaries: Any,
                                                             archive_server: str) -> None:
    release = RunnerRelease("9.9.9", "a.tar.gz", f"{archive_server}/10.tar.gz")

    with pytest.raises(PermanentError, match="no SHA-256"):
        sync_runner_binaries(wiring.settings("sync_runner_binaries"),
                             lambda os, arch: release, binaries)

    assert binaries.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_sync_turned_off_asks_nothing_and_caches_nothing(binaries: Any, stack: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_RUNNER_BINARIES_SYNCER", "false")
    wiring.reset()

    assert run_sync(wiring.sync_runner_binaries()) is None

    assert stack.github.count() == 0
    assert binaries.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_sync_caches_the_newer_prerelease_when_allowed(binaries: Any, stack: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    stack.github.set_runner_prerelease("2.400.0")
    monkeypatch.setenv("RUNNER_ALLOW_PRERELEASE_BINARIES", "true")
    wiring.reset()

    result = run_sync(wiring.sync_runner_binaries())

    assert result is not None and result.version == "2.400.0"
    body, metadata = _object(binaries, result.key)
    assert metadata[VERSION_METADATA_KEY] == "2.400.0"
    assert metadata[SHA256_METADATA_KEY] == hashlib.sha256(body).hexdigest()


def test_on_ghes_the_releases_come_from_github_com_anonymously(
        binaries: Any, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """GHES does not host actions/runner: the syncer asks github.com's API, never GHES_URL and
    with no credential. github.com is answered here by the fake's own release JSON (tests may
    reach only 127.0.0.1); the download is then the fake's."""
    from devstack.github_releases import latest_release

    monkeypatch.delenv("RUNNER_RELEASES_API_URL")
    wiring.reset()
    asked: list[requests.PreparedRequest] = []
    real_send = requests.Session.send

    def send(session: requests.Session, request: requests.PreparedRequest,
             **kwargs: Any) -> requests.Response:
        if not str(request.url).startswith("https://api.github.com/"):
            return real_send(session, request, **kwargs)
        asked.append(request)
        answer = requests.Response()
        answer.status_code, answer.url = 200, str(request.url)
        answer._content = requests.models.complexjson.dumps(latest_release(
            stack.github.runner_version, stack.github.url, stack.github.api_url)).encode()
        return answer

    monkeypatch.setattr(requests.Session, "send", send)

    result = run_sync(wiring.sync_runner_binaries())

    assert [r.url for r in asked] == [
        "https://api.github.com/repos/actions/runner/releases/latest"]
    assert asked[0].headers.get("Authorization") is None
    # GHES (the fake) was asked for nothing but the download the release named.
    assert [entry.route for entry in stack.github.requests] == [DOWNLOAD_ROUTE]
    assert result is not None and result.uploaded is True
