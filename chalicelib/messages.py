"""The build-queue message (docs/REFERENCE.md §3): its type, its body both ways, and its limits.

Pure: the webhook builds a `JobMessage` and sends `to_body()`; scale-up parses SQS records back
with `parse_batch`. A record that fails validation is reported with its message id and the
reasons, never raised: the caller returns it for retry so that it ends in the dead-letter
queue (BI-01, BI-02). Only the fields scale-up needs are carried, so a message stays far below
SQS's size limit whatever the webhook payload weighed (RELIABILITY BI-31).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SUPPORTED_EVENT_TYPE = "workflow_job"
# Bounds on a job's labels (BI-04): GitHub itself caps a runner's labels far lower; these only
# stop absurd input before it reaches the queue, logs or metrics.
MAX_LABELS = 100
MAX_LABEL_LENGTH = 256
# Names end up in URLs, tags and runner arguments: only GitHub's own characters pass. The one
# definition for the webhook (rules/webhook_payload.py) and scale-up (parse_body), so that the
# webhook never enqueues what scale-up would refuse; matched whole (`fullmatch`: a `$` would let
# a trailing newline through).
OWNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
REPOSITORY_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
# Enough of a bad body to recognise it in a log, not enough to carry much of anything.
BODY_EXCERPT = 120


@dataclass(frozen=True)
class JobMessage:
    """A build-queue message; `message_id` is the SQS id it arrived under ("" before sending)."""

    id: int
    repository_name: str
    repository_owner: str
    installation_id: int = 0
    repo_owner_type: str | None = None
    labels: tuple[str, ...] | None = None
    event_type: str = SUPPORTED_EVENT_TYPE
    message_id: str = ""
    # How many times job retry sent this job back (`retryCounter`, absent = 0).
    retry_counter: int = 0
    # The runner configuration the webhook chose (`runnerConfig`, §6; None: the first).
    runner_config: str | None = None

    @property
    def full_repo(self) -> str:
        """`owner/repo` of the job's repository."""
        return f"{self.repository_owner}/{self.repository_name}"

    def to_body(self) -> str:
        """The message body: JSON with the contract's camelCase names."""
        body: dict[str, Any] = {
            "id": self.id,
            "eventType": self.event_type,
            "repositoryName": self.repository_name,
            "repositoryOwner": self.repository_owner,
            "installationId": self.installation_id,
        }
        if self.repo_owner_type is not None:
            body["repoOwnerType"] = self.repo_owner_type
        if self.labels is not None:
            body["labels"] = list(self.labels)
        if self.retry_counter:
            body["retryCounter"] = self.retry_counter
        if self.runner_config is not None:
            body["runnerConfig"] = self.runner_config
        return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class Received:
    """A valid job message and how often SQS has delivered it."""

    job: JobMessage
    receive_count: int = 1


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid build-queue message, and why."""

    message_id: str
    problems: tuple[str, ...]
    excerpt: str = ""


@dataclass(frozen=True)
class ParsedBatch:
    """The records of one SQS batch, sorted into valid, rejected and foreign ones."""

    received: tuple[Received, ...]
    rejected: tuple[Rejected, ...]
    # Records without a message id or not from SQS: nothing to report them under (BI-05).
    ignored: int = 0


def _positive_int(body: Mapping[str, Any], key: str, problems: list[str],
                  allow_zero: bool = False) -> int:
    value = body.get(key)
    smallest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        kind = "non-negative" if allow_zero else "positive"
        problems.append(f"{key}: expected a {kind} integer, got {_describe(value)}")
        return 0
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return type(value).__name__ if not isinstance(value, (int, str)) else repr(value)[:40]


def name_problem(field: str, value: Any, pattern: re.Pattern[str]) -> str | None:
    """Why `value` is not a GitHub name of `pattern` (OWNER_NAME, REPOSITORY_NAME), or None."""
    if isinstance(value, str) and pattern.fullmatch(value):
        return None
    return f"{field}: expected a GitHub name, got {_describe(value)}"


def _name(body: Mapping[str, Any], key: str, pattern: re.Pattern[str],
          problems: list[str]) -> str:
    value = body.get(key)
    problem = name_problem(key, value, pattern)
    if problem is not None:
        problems.append(problem)
        return ""
    return str(value)


def _labels(body: Mapping[str, Any], problems: list[str]) -> tuple[str, ...] | None:
    value = body.get("labels")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append("labels: expected a list of strings")
        return None
    if len(value) > MAX_LABELS:
        problems.append(f"labels: at most {MAX_LABELS} labels, got {len(value)}")
        return None
    if any(len(item) > MAX_LABEL_LENGTH or not item.strip() for item in value):
        problems.append(f"labels: each label must be 1 to {MAX_LABEL_LENGTH} characters")
        return None
    return tuple(value)


def parse_body(message_id: str, body: str) -> JobMessage | Rejected:
    """The job message in `body`, or why it is not one."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError) as error:
        reason = f"not JSON: {error.msg}" if isinstance(error, json.JSONDecodeError) else "no body"
        return Rejected(message_id, (reason,), _excerpt(body))
    if not isinstance(data, dict):
        return Rejected(message_id, (f"expected a JSON object, got {type(data).__name__}",),
                        _excerpt(body))
    problems: list[str] = []
    job_id = _positive_int(data, "id", problems)
    event_type = data.get("eventType")
    if not isinstance(event_type, str):
        problems.append(f"eventType: expected a string, got {_describe(event_type)}")
    elif event_type != SUPPORTED_EVENT_TYPE:
        # Never launched for, never retried forever: it goes to the DLQ (BI-03).
        problems.append(f"eventType: unsupported event type {event_type[:40]!r}")
    repository = _name(data, "repositoryName", REPOSITORY_NAME, problems)
    owner = _name(data, "repositoryOwner", OWNER_NAME, problems)
    installation = _positive_int(data, "installationId", problems, allow_zero=True)
    owner_type = data.get("repoOwnerType")
    if owner_type is not None and not isinstance(owner_type, str):
        problems.append(f"repoOwnerType: expected a string, got {_describe(owner_type)}")
        owner_type = None
    labels = _labels(data, problems)
    retry_counter = (_positive_int(data, "retryCounter", problems, allow_zero=True)
                     if "retryCounter" in data else 0)
    runner_config = data.get("runnerConfig")
    if runner_config is not None and not isinstance(runner_config, str):
        problems.append(f"runnerConfig: expected a string, got {_describe(runner_config)}")
    if problems:
        return Rejected(message_id, tuple(problems), _excerpt(body))
    return JobMessage(message_id=message_id, id=job_id, event_type=str(event_type),
                      repository_name=repository, repository_owner=owner,
                      installation_id=installation, repo_owner_type=owner_type, labels=labels,
                      retry_counter=retry_counter, runner_config=runner_config)


def _excerpt(body: Any) -> str:
    return body[:BODY_EXCERPT] if isinstance(body, str) else ""


def _receive_count(record: Mapping[str, Any]) -> int:
    attributes = record.get("attributes")
    if isinstance(attributes, Mapping):
        try:
            return max(1, int(attributes.get("ApproximateReceiveCount", 1)))
        except (TypeError, ValueError):
            return 1
    return 1


def parse_batch(records: Sequence[Mapping[str, Any]]) -> ParsedBatch:
    """Sort an SQS batch's records into valid messages, rejected ones and foreign ones."""
    received: list[Received] = []
    rejected: list[Rejected] = []
    ignored = 0
    seen: set[str] = set()
    for record in records:
        message_id = record.get("messageId")
        source = record.get("eventSource", "aws:sqs")
        if not isinstance(message_id, str) or not message_id or source != "aws:sqs":
            ignored += 1
            continue
        if message_id in seen:
            # SQS never puts one message twice in a batch; a copy would launch twice.
            continue
        seen.add(message_id)
        parsed = parse_body(message_id, record.get("body"))  # type: ignore[arg-type]
        if isinstance(parsed, Rejected):
            rejected.append(parsed)
        else:
            received.append(Received(parsed, _receive_count(record)))
    return ParsedBatch(tuple(received), tuple(rejected), ignored)
