"""Reading a verified `workflow_job` delivery, and deciding whether this deployment serves it.

Pure: bytes and dicts in, a `JobMessage` or a short reason out. The reasons go back to GitHub in
the response body, where they show in the App's delivery log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from chalicelib.messages import (
    MAX_LABEL_LENGTH,
    MAX_LABELS,
    OWNER_NAME,
    REPOSITORY_NAME,
    JobMessage,
    name_problem,
)
from chalicelib.rules.matching import default_matcher, matches


class PayloadError(ValueError):
    """A delivery that cannot be read; the text is the short reason returned with the 400."""


def parse_payload(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    """The JSON object of a delivery: the body itself, or its `payload` form field."""
    text: str | bytes = body
    if content_type.lower().startswith("application/x-www-form-urlencoded"):
        # GitHub's form content type sends the JSON as the `payload` field, signed as sent.
        try:
            fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("invalid form body") from None
        values = fields.get("payload")
        if not values:
            raise PayloadError("form body has no payload field")
        text = values[0]
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise PayloadError("invalid JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError("payload is not a JSON object")
    return payload


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def job_labels(workflow_job: Mapping[str, Any]) -> tuple[str, ...]:
    """The job's `labels`, checked: a list of at most MAX_LABELS strings of bounded length."""
    labels = workflow_job.get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise PayloadError("workflow_job.labels: expected a list of strings")
    if len(labels) > MAX_LABELS:
        raise PayloadError(f"workflow_job.labels: more than {MAX_LABELS} labels")
    if any(len(label) > MAX_LABEL_LENGTH for label in labels):
        raise PayloadError(f"workflow_job.labels: a label is over {MAX_LABEL_LENGTH} characters")
    return tuple(labels)


def queued_job(payload: Mapping[str, Any]) -> JobMessage:
    """The build-queue message of a `queued` delivery; PayloadError names every missing field."""
    job = _object(payload.get("workflow_job"))
    repository = _object(payload.get("repository"))
    owner = _object(repository.get("owner"))
    job_id = _int(job.get("id"))
    name = _text(repository.get("name"))
    login = _text(owner.get("login"))
    missing = [field for field, value in (
        ("workflow_job.id", job_id), ("repository.name", name), ("repository.owner.login", login),
    ) if value is None]
    if "labels" not in job:
        missing.append("workflow_job.labels")
    if missing or job_id is None or name is None or login is None:
        raise PayloadError("missing fields: " + ", ".join(missing))
    # Exactly the names scale-up accepts: what it would refuse is refused here, with a 400.
    problems = [problem for problem in (
        name_problem("repository.owner.login", login, OWNER_NAME),
        name_problem("repository.name", name, REPOSITORY_NAME),
    ) if problem is not None]
    if problems:
        raise PayloadError("; ".join(problems))
    # 0 tells scale-up to look the installation up (docs/REFERENCE.md §3).
    installation = _int(_object(payload.get("installation")).get("id")) or 0
    return JobMessage(
        id=job_id,
        repository_name=name,
        repository_owner=login,
        installation_id=installation,
        repo_owner_type=_text(owner.get("type")),
        labels=job_labels(job),
    )


def labels_match(job_labels: Iterable[str], runner_labels: Iterable[str]) -> bool:
    """True when the job has labels and every one (case-insensitive) is a runner label: the
    matcher of a configuration without `matcherConfig` (rules/matching.py)."""
    # A job without labels cannot target self-hosted runners; the reference system agrees.
    return matches(job_labels, default_matcher(runner_labels))


def repository_allowed(owner: str, name: str, allow_list: Iterable[str]) -> bool:
    """True when no allow-list is set or `owner/name` is on it (GitHub names ignore case)."""
    allowed = {entry.lower() for entry in allow_list}
    return not allowed or f"{owner}/{name}".lower() in allowed
