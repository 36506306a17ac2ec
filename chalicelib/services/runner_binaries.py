"""sync_runner_binaries: cache the latest `actions/runner` release in S3 for GitHub-free boots.

The tarball (about 200 MB) is streamed from GitHub straight into a multipart upload, never held
in memory, and only when the cached object's recorded version or checksum differs from the
latest release's. Both live in the object's own metadata, so the object and what it claims to be
change together. The bytes are hashed as they stream: a SHA-256 other than the one GitHub
published fails the upload at its last read, so the multipart upload is aborted and nothing is
published under the key (the start scripts check `runner-sha256` again before installing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from chalicelib.aws.errors import translate
from chalicelib.errors import GhrError, PermanentError, RetryableError
from chalicelib.logs import get_logger
from chalicelib.models import RunnerRelease
from chalicelib.settings import Settings

log = get_logger(__name__)

# S3 user metadata (x-amz-meta-runner-version) recording which release the object holds, and
# the SHA-256 of its bytes as GitHub published it (read by the start scripts).
VERSION_METADATA_KEY = "runner-version"
SHA256_METADATA_KEY = "runner-sha256"
CONNECT_TIMEOUT_SECONDS = 5.0
# Seconds without a byte before the download is abandoned (GitHub's CDN streams steadily).
READ_TIMEOUT_SECONDS = 60.0
# Two 16 MiB parts in flight bound the buffer to about 32 MiB whatever the tarball's size.
TRANSFER = TransferConfig(multipart_chunksize=16 * 1024 * 1024, max_concurrency=2)
# S3's own code that passes with time, beyond what every service shares: a clock that drifted.
S3_RETRYABLE_CODES = frozenset({"RequestTimeTooSkewed"})

ReleaseFinder = Callable[[str, str], RunnerRelease]


@dataclass(frozen=True)
class SyncDeps:
    """What the sync works with (built by `wiring.sync_runner_binaries`)."""

    settings: Settings
    find_release: ReleaseFinder
    s3: Any
    # Every runner configuration (§6): each OS and architecture among them is cached.
    scopes: tuple[Settings, ...] = ()


@dataclass(frozen=True)
class SyncResult:
    """What one run did: the latest version, the object key, and whether it was uploaded."""

    version: str
    key: str
    uploaded: bool


def object_key(runner_os: str, runner_architecture: str) -> str:
    """The S3 key of the cached runner for an OS and architecture (the start scripts use it)."""
    extension = "zip" if runner_os == "windows" else "tar.gz"
    return f"actions-runner-{runner_os}-{runner_architecture}.{extension}"


def sync_runner_binaries(
    settings: Settings,
    find_release: ReleaseFinder,
    s3: Any,
    session: requests.Session | None = None,
) -> SyncResult:
    """Copy the latest runner release to the binaries bucket unless it is there already, with
    its version and published SHA-256 recorded."""
    bucket = settings.runner_binaries_bucket
    key = object_key(settings.runner_os, settings.runner_architecture)
    release = find_release(settings.runner_os, settings.runner_architecture)
    if not release.sha256:
        raise PermanentError(f"{release.filename}: GitHub published no SHA-256; not cached")
    cached = cached_object(s3, bucket, key)
    if cached == (release.version, release.sha256):
        log.info("runner binaries up to date", bucket=bucket, key=key, version=release.version)
        return SyncResult(version=release.version, key=key, uploaded=False)
    # A current version without its checksum (an older syncer wrote it) is uploaded again:
    # the start scripts verify what they install only when the object says what it should be.
    version, sha = cached or (None, None)
    log.info("runner binaries sync", bucket=bucket, key=key, cached=version,
             cached_sha256=sha, latest=release.version, source=release.download_url)
    _stream_to_s3(release, s3, bucket, key, session or requests.Session())
    log.info("runner binaries uploaded", bucket=bucket, key=key, version=release.version,
             sha256=release.sha256)
    return SyncResult(version=release.version, key=key, uploaded=True)


def cached_object(s3: Any, bucket: str, key: str) -> tuple[str, str | None] | None:
    """The (version, SHA-256) recorded on the cached object; None when there is no object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _s3_error("HeadObject", error) from error
    except BotoCoreError as error:
        raise RetryableError(f"S3 HeadObject {bucket}/{key}: {type(error).__name__}") from error
    metadata = head.get("Metadata", {})
    sha = metadata.get(SHA256_METADATA_KEY)
    return str(metadata.get(VERSION_METADATA_KEY) or ""), str(sha) if sha else None


class ChecksumMismatch(PermanentError):
    """The downloaded archive is not the one GitHub published the SHA-256 of."""


class _Sha256Reader:
    """A non-seekable reader over `raw` that hashes what passes and, in the read that meets the
    end, raises ChecksumMismatch unless the SHA-256 is `expected`."""

    def __init__(self, raw: Any, expected: str, name: str) -> None:
        self.raw, self.expected, self.name = raw, expected.lower(), name
        self.sha = hashlib.sha256()
        self.checked = False

    def read(self, size: int | None = -1) -> bytes:
        # Reads until `size` bytes or the end, so a short answer always means the end and the
        # check happens before the uploader sees the last bytes (a single PutObject included).
        chunks: list[bytes] = []
        wanted = -1 if size is None or size < 0 else size
        while wanted != 0:
            chunk = self.raw.read(wanted if wanted > 0 else 1024 * 1024)
            if not chunk:
                self._check()
                break
            self.sha.update(chunk)
            chunks.append(chunk)
            wanted = wanted - len(chunk) if wanted > 0 else wanted
        return b"".join(chunks)

    def _check(self) -> None:
        if self.checked:
            return
        self.checked = True
        actual = self.sha.hexdigest()
        if actual != self.expected:
            raise ChecksumMismatch(f"{self.name}: SHA-256 {actual}, GitHub published "
                                   f"{self.expected}; not cached")


def _stream_to_s3(release: RunnerRelease, s3: Any, bucket: str, key: str,
                  session: requests.Session) -> None:
    try:
        # github.com or a mirror of it: never GHES, so GHES_SSL_VERIFY does not apply.
        response = session.get(release.download_url, stream=True,
                               timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS))
    except requests.RequestException as error:
        raise RetryableError(f"GET {release.filename}: {type(error).__name__}") from error
    with response:
        if response.status_code != 200:
            message = f"GET {release.filename}: HTTP {response.status_code}"
            if response.status_code >= 500 or response.status_code == 429:
                raise RetryableError(message)
            raise PermanentError(message)
        # urllib3 checks Content-Length: a truncated body raises, so the multipart upload is
        # aborted and no partial tarball is ever published under the key.
        response.raw.decode_content = True
        reader = _Sha256Reader(response.raw, str(release.sha256), release.filename)
        try:
            s3.upload_fileobj(
                reader, bucket, key, Config=TRANSFER,
                ExtraArgs={
                    "ContentType": "application/zip" if key.endswith(".zip")
                    else "application/gzip",
                    "Metadata": {VERSION_METADATA_KEY: release.version,
                                 SHA256_METADATA_KEY: str(release.sha256),
                                 "runner-filename": release.filename},
                },
            )
        except ClientError as error:
            raise _s3_error("PutObject", error) from error
        except (BotoCoreError, requests.RequestException, Urllib3Error, OSError) as error:
            raise RetryableError(
                f"copy {release.filename} to s3://{bucket}/{key}: {type(error).__name__}"
            ) from error


def _s3_error(action: str, error: ClientError) -> GhrError:
    return translate(error, f"S3 {action}", extra=S3_RETRYABLE_CODES)


def run_sync(deps: SyncDeps) -> SyncResult | None:
    """The scheduled entry: sync with the wired release lookup and S3, once per OS and
    architecture of the runner configurations (§6); the first one's result. Nothing when the
    syncer is turned off (`ENABLE_RUNNER_BINARIES_SYNCER`: instances then download from
    GitHub)."""
    wanted = {(s.runner_binaries_bucket, s.runner_os, s.runner_architecture): s
              for s in (deps.scopes or (deps.settings,)) if s.enable_runner_binaries_syncer}
    if not wanted:
        log.info("runner binaries syncer disabled; nothing cached")
        return None
    results: list[SyncResult] = []
    failures: list[GhrError] = []
    for scope in wanted.values():  # one OS or architecture failing leaves the others synced
        try:
            results.append(sync_runner_binaries(scope, deps.find_release, deps.s3))
        except GhrError as error:
            log.error("runner binaries not synced", os=scope.runner_os,
                      architecture=scope.runner_architecture, error=str(error))
            failures.append(error)
    if failures:
        raise failures[0]  # the run fails, so that the schedule's failure shows
    return results[0]
