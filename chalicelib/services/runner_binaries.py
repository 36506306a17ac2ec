"""sync_runner_binaries: cache the latest `actions/runner` release in S3 for GitHub-free boots.

The tarball (about 200 MB) is streamed from GitHub straight into a multipart upload, never held
in memory, and only when the cached object's recorded version differs from the latest release.
The version lives in the object's own metadata, so the object and its version change together.
"""

from __future__ import annotations

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

# S3 user metadata (x-amz-meta-runner-version) recording which release the object holds.
VERSION_METADATA_KEY = "runner-version"
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
    """Copy the latest runner release to the binaries bucket when its version changed."""
    bucket = settings.runner_binaries_bucket
    key = object_key(settings.runner_os, settings.runner_architecture)
    release = find_release(settings.runner_os, settings.runner_architecture)
    cached = cached_version(s3, bucket, key)
    if cached == release.version:
        log.info("runner binaries up to date", bucket=bucket, key=key, version=release.version)
        return SyncResult(version=release.version, key=key, uploaded=False)
    log.info("runner binaries sync", bucket=bucket, key=key, cached=cached,
             latest=release.version, source=release.download_url)
    _stream_to_s3(release, s3, bucket, key, session or requests.Session(),
                  verify=settings.ghes_ssl_verify)
    log.info("runner binaries uploaded", bucket=bucket, key=key, version=release.version)
    return SyncResult(version=release.version, key=key, uploaded=True)


def cached_version(s3: Any, bucket: str, key: str) -> str | None:
    """The release version recorded on the cached object, or None when there is no object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _s3_error("HeadObject", error) from error
    except BotoCoreError as error:
        raise RetryableError(f"S3 HeadObject {bucket}/{key}: {type(error).__name__}") from error
    version = head.get("Metadata", {}).get(VERSION_METADATA_KEY)
    return str(version) if version else None


def _stream_to_s3(release: RunnerRelease, s3: Any, bucket: str, key: str,
                  session: requests.Session, *, verify: bool) -> None:
    try:
        response = session.get(release.download_url, stream=True, verify=verify,
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
        try:
            s3.upload_fileobj(
                response.raw, bucket, key, Config=TRANSFER,
                ExtraArgs={
                    "ContentType": "application/zip" if key.endswith(".zip")
                    else "application/gzip",
                    "Metadata": {VERSION_METADATA_KEY: release.version,
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


def run_sync(deps: SyncDeps) -> SyncResult:
    """The scheduled entry: sync with the wired GitHub client and S3."""
    return sync_runner_binaries(deps.settings, deps.find_release, deps.s3)
