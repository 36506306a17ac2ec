"""sync_runner_binaries against devstack: moto S3 and the GitHub fake's releases and downloads."""

from __future__ import annotations

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
    VERSION_METADATA_KEY,
    object_key,
    run_sync,
    sync_runner_binaries,
)
from devstack.github_fake import DOWNLOAD_ROUTE

BUCKET = "devstack-runner-binaries"


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


def test_sync_leaves_the_object_alone_when_the_version_is_unchanged(binaries: Any) -> None:
    deps = wiring.sync_runner_binaries()
    first = run_sync(deps)
    # Same version recorded, different bytes: a second upload would overwrite them.
    binaries.put_object(Bucket=BUCKET, Key=first.key, Body=b"kept",
                        Metadata={VERSION_METADATA_KEY: first.version})

    second = run_sync(deps)

    assert second.uploaded is False
    assert _object(binaries, first.key)[0] == b"kept"


def test_sync_replaces_the_object_when_a_new_release_is_out(binaries: Any, stack: Any) -> None:
    deps = wiring.sync_runner_binaries()
    run_sync(deps)
    stack.github.set_latest_runner_version("2.999.1")

    result = run_sync(deps)

    body, metadata = _object(binaries, result.key)
    assert (result.uploaded, result.version) == (True, "2.999.1")
    assert metadata[VERSION_METADATA_KEY] == "2.999.1"
    assert body == stack.github.release_bytes("linux", "x64")


def test_sync_caches_the_windows_zip_under_its_own_key(binaries: Any, stack: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_OS", "windows")
    wiring.reset()

    result = run_sync(wiring.sync_runner_binaries())

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

    sync_runner_binaries(settings, wiring.github("sync_runner_binaries").latest_runner_release,
                         binaries, session=session)

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
                            f"{truncating_server}/actions-runner-linux-x64-9.9.9.tar.gz")

    with pytest.raises(RetryableError):
        sync_runner_binaries(wiring.settings("sync_runner_binaries"),
                             lambda os, arch: release, binaries)

    assert binaries.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_sync_reports_a_missing_asset_as_permanent(binaries: Any, truncating_server: str) -> None:
    release = RunnerRelease("9.9.9", "missing.tar.gz", f"{truncating_server}/missing.tar.gz")

    with pytest.raises(PermanentError, match="HTTP 404"):
        sync_runner_binaries(wiring.settings("sync_runner_binaries"),
                             lambda os, arch: release, binaries)
