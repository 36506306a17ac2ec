"""Job retry (docs/REFERENCE.md §8): which consumed messages go back to the build queue, with
what `retryCounter` and delay, and the reading of `JOB_RETRY_CONFIG`.

Pure: a job launched for may still never get a runner (a reuse runner takes another job, an
instance never comes up), so its message is sent back delayed; when it comes back, scale-up
asks GitHub once whether the job still waits and launches again only then.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.messages import JobMessage

# SQS's largest DelaySeconds: a retry is never held longer than 15 minutes.
MAX_DELAY_SECONDS = 900
KNOWN_KEYS = ("enable", "maxAttempts", "delayInSeconds", "delayBackoff", "queueUrl")


@dataclass(frozen=True)
class JobRetryConfig:
    """`JOB_RETRY_CONFIG` read; unset means off (the reference's default)."""

    enable: bool = False
    max_attempts: int = 1
    delay_in_seconds: float = 300
    delay_backoff: float = 2


JOB_RETRY_OFF = JobRetryConfig()


@dataclass(frozen=True)
class RetrySend:
    """One message to send back: the job with its next counter, held `delay` seconds."""

    job: JobMessage
    delay: int


def _number(data: Mapping[str, Any], key: str, default: float, problems: list[str],
            minimum: float, integer: bool = False) -> float:
    value = data.get(key, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) \
            or value < minimum:
        kind = "an integer" if integer else "a number"
        problems.append(f"{key}: expected {kind} of at least {minimum:g}, got {value!r}"[:120])
        return default
    return value


def parse_job_retry_config(text: str) -> JobRetryConfig:
    """The configuration in `text` (JSON, the reference's shape); missing keys take the enabled
    defaults `{"enable": true, "maxAttempts": 1, "delayInSeconds": 300, "delayBackoff": 2}`,
    `queueUrl` is accepted and ignored. ValueError names every problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    problems = [f"{key}: unknown key" for key in data if key not in KNOWN_KEYS]
    enable = data.get("enable", True)
    if not isinstance(enable, bool):
        problems.append(f"enable: expected true or false, got {enable!r}"[:120])
    config = JobRetryConfig(
        enable=enable is True,
        max_attempts=int(_number(data, "maxAttempts", 1, problems, 0, integer=True)),
        delay_in_seconds=_number(data, "delayInSeconds", 300, problems, 0),
        delay_backoff=_number(data, "delayBackoff", 2, problems, 0),
    )
    if problems:
        raise ValueError("; ".join(problems))
    return config


def retry_delay(config: JobRetryConfig, counter: int) -> int:
    """DelaySeconds of the message with `retryCounter` `counter` (1 for the first retry):
    floor(min(delayInSeconds * delayBackoff^(counter-1), 900))."""
    try:
        delay = config.delay_in_seconds * config.delay_backoff ** max(0, counter - 1)
    except OverflowError:
        delay = MAX_DELAY_SECONDS
    return math.floor(min(delay, MAX_DELAY_SECONDS))


def plan_retries(jobs: Iterable[JobMessage], config: JobRetryConfig) -> tuple[RetrySend, ...]:
    """The messages to send back for `jobs`, consumed as queued: each with counter n = its
    received counter + 1, while n <= maxAttempts (none when job retry is off)."""
    if not config.enable:
        return ()
    sends = []
    for job in jobs:
        counter = job.retry_counter + 1
        if counter <= config.max_attempts:
            sends.append(RetrySend(dataclasses.replace(job, retry_counter=counter,
                                                       message_id=""),
                                   retry_delay(config, counter)))
    return tuple(sends)
