"""Reading deliveries and matching jobs to this deployment: pure functions, no network."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.messages import JobMessage, parse_body
from chalicelib.rules.webhook_payload import (
    MAX_LABEL_LENGTH,
    MAX_LABELS,
    PayloadError,
    labels_match,
    parse_payload,
    queued_job,
    repository_allowed,
)
from chalicelib.services.job_metrics import job_timing, label_set, parse_time


def make_payload(**job: Any) -> dict[str, Any]:
    return {
        "action": "queued",
        "workflow_job": {"id": 7, "labels": ["self-hosted", "linux"], **job},
        "repository": {"name": "app", "owner": {"login": "acme", "type": "Organization"}},
        "installation": {"id": 99},
    }


def test_queued_job_builds_the_contract_message() -> None:
    job = queued_job(make_payload())
    assert job == JobMessage(id=7, repository_name="app", repository_owner="acme",
                           installation_id=99, repo_owner_type="Organization",
                           labels=("self-hosted", "linux"))
    assert json.loads(job.to_body()) == {
        "id": 7, "eventType": "workflow_job", "repositoryName": "app",
        "repositoryOwner": "acme", "installationId": 99, "repoOwnerType": "Organization",
        "labels": ["self-hosted", "linux"],
    }


def test_queued_job_without_owner_type_leaves_it_out_of_the_message() -> None:
    payload = make_payload()
    del payload["repository"]["owner"]["type"]
    assert "repoOwnerType" not in json.loads(queued_job(payload).to_body())


@pytest.mark.parametrize("job_id", ["7", True, None, 7.5])
def test_queued_job_refuses_a_job_id_that_is_not_an_integer(job_id: Any) -> None:
    with pytest.raises(PayloadError, match=r"workflow_job\.id"):
        queued_job(make_payload(id=job_id))


def test_queued_job_names_every_missing_field_at_once() -> None:
    with pytest.raises(PayloadError) as raised:
        queued_job({"workflow_job": {}, "repository": {}})
    assert str(raised.value) == ("missing fields: workflow_job.id, repository.name, "
                                 "repository.owner.login, workflow_job.labels")


@pytest.mark.parametrize(("owner", "name", "field"), [
    ("acme corp", "app", "repository.owner.login"),
    ("-acme", "app", "repository.owner.login"),
    ("acme/evil", "app", "repository.owner.login"),
    ("a" * 101, "app", "repository.owner.login"),
    ("acme", "app name", "repository.name"),
    ("acme", "../app", "repository.name"),
    ("acme", "x" * 101, "repository.name"),
])
def test_queued_job_refuses_names_the_build_queue_would_refuse(owner: str, name: str,
                                                               field: str) -> None:
    payload = make_payload()
    payload["repository"] = {"name": name, "owner": {"login": owner}}
    with pytest.raises(PayloadError, match=f"{field}: expected a GitHub name"):
        queued_job(payload)


NAME_CHARACTERS = st.text(st.sampled_from("aZ09._-/ $é\n"), min_size=0, max_size=102)


@given(owner=NAME_CHARACTERS, name=NAME_CHARACTERS)
def test_webhook_and_scale_up_accept_exactly_the_same_names(owner: str, name: str) -> None:
    payload = make_payload()
    payload["repository"] = {"name": name, "owner": {"login": owner}}
    body = json.dumps({"id": 7, "eventType": "workflow_job", "repositoryName": name,
                       "repositoryOwner": owner, "installationId": 0})
    try:
        queued_job(payload)
        webhook_accepts = True
    except PayloadError:
        webhook_accepts = False
    assert webhook_accepts == isinstance(parse_body("m-1", body), JobMessage)


def test_queued_job_accepts_labels_at_the_limits() -> None:
    labels = ["x" * MAX_LABEL_LENGTH] * MAX_LABELS
    assert queued_job(make_payload(labels=labels)).labels == tuple(labels)


def test_parse_payload_rejects_deeply_nested_json_without_crashing() -> None:
    with pytest.raises(PayloadError):
        parse_payload(b"[" * 100_000)


def test_parse_payload_rejects_invalid_utf8() -> None:
    with pytest.raises(PayloadError, match="invalid JSON"):
        parse_payload(b'{"a": "\xff"}')


@pytest.mark.parametrize(("job", "runner", "expected"), [
    (["self-hosted", "linux"], ["self-hosted", "linux", "x64"], True),
    (["SELF-HOSTED"], ["self-hosted"], True),
    (["self-hosted", "gpu"], ["self-hosted", "linux", "x64"], False),
    ([], ["self-hosted"], False),
])
def test_labels_match_when_every_job_label_is_a_runner_label(job: list[str], runner: list[str],
                                                             expected: bool) -> None:
    assert labels_match(job, runner) is expected


def test_repository_allowed_without_list_allows_all_and_with_list_ignores_case() -> None:
    assert repository_allowed("acme", "app", [])
    assert repository_allowed("Acme", "App", ["acme/app"])
    assert not repository_allowed("acme", "other", ["acme/app"])


def test_label_set_is_lower_case_unique_and_sorted() -> None:
    assert label_set(["X64", "self-hosted", "x64"]) == "self-hosted,x64"


def test_parse_time_needs_a_time_zone() -> None:
    assert parse_time("2021-08-05T10:33:58Z") is not None
    assert parse_time("2021-08-05T10:33:58") is None
    assert parse_time("yesterday") is None


def test_job_timing_ignores_negative_spans_from_clock_skew() -> None:
    timing = job_timing("in_progress", {"created_at": "2021-08-05T10:34:00Z",
                                        "started_at": "2021-08-05T10:33:00Z"})
    assert timing is not None and timing.queued_seconds is None


def test_job_timing_is_none_for_queued_and_waiting() -> None:
    assert job_timing("queued", {}) is None
    assert job_timing("waiting", {}) is None
