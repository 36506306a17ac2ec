"""Build-queue records: what is a valid message (docs/REFERENCE.md §3), what is rejected, and why.

RELIABILITY BI-01..BI-05 and R-Q-01: a bad record is reported with its message id and reasons, never
raised, and never stops the rest of the batch.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.messages import MAX_LABELS, JobMessage, Rejected, parse_batch, parse_body


def body(**overrides: Any) -> str:
    values: dict[str, Any] = {"id": 123, "eventType": "workflow_job",
                              "repositoryName": "hello-world", "repositoryOwner": "Codertocat",
                              "installationId": 0, "repoOwnerType": "Organization",
                              "labels": ["self-hosted", "linux"]}
    values.update(overrides)
    return json.dumps({k: v for k, v in values.items() if v is not ...})


def record(message_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"messageId": message_id, "body": text, "eventSource": "aws:sqs",
            "attributes": {"ApproximateReceiveCount": "1"}, **extra}


def problems_of(text: str) -> tuple[str, ...]:
    parsed = parse_body("m-1", text)
    assert isinstance(parsed, Rejected)
    return parsed.problems


def test_parse_body_when_contract_example_then_job_message() -> None:
    parsed = parse_body("m-1", body(installationId=42))

    assert parsed == JobMessage(message_id="m-1", id=123, event_type="workflow_job",
                                repository_name="hello-world", repository_owner="Codertocat",
                                installation_id=42, repo_owner_type="Organization",
                                labels=("self-hosted", "linux"))


def test_parse_body_when_optional_fields_absent_and_unknown_fields_present_then_accepted() -> None:
    parsed = parse_body("m-1", body(repoOwnerType=..., labels=..., retryCounter=2, extra="x"))

    assert isinstance(parsed, JobMessage)
    assert parsed.repo_owner_type is None and parsed.labels is None


def test_parse_body_when_not_json_then_rejected_with_parse_error_and_excerpt() -> None:
    parsed = parse_body("m-7", "{oops")

    assert isinstance(parsed, Rejected)
    assert parsed.message_id == "m-7"
    assert parsed.problems[0].startswith("not JSON")
    assert parsed.excerpt == "{oops"


def test_parse_body_when_json_but_not_an_object_then_rejected() -> None:
    assert problems_of("[1, 2]") == ("expected a JSON object, got list",)


def test_parse_body_when_id_and_owner_missing_then_both_named() -> None:
    problems = problems_of(body(id=..., repositoryOwner=...))

    assert any(p.startswith("id:") for p in problems)
    assert any(p.startswith("repositoryOwner:") for p in problems)


def test_parse_body_when_wrong_types_and_negative_ids_then_each_named() -> None:
    problems = problems_of(body(id="123", installationId=-1, repositoryName=5, labels="linux"))

    assert {p.split(":")[0] for p in problems} == {"id", "installationId", "repositoryName",
                                                   "labels"}


def test_parse_body_when_id_is_boolean_or_zero_then_rejected() -> None:
    assert problems_of(body(id=True))[0].startswith("id: expected a positive integer")
    assert problems_of(body(id=0))[0].startswith("id: expected a positive integer")


def test_parse_body_when_event_type_is_not_workflow_job_then_rejected_as_unsupported() -> None:
    assert problems_of(body(eventType="check_run")) == (
        "eventType: unsupported event type 'check_run'",)


def test_parse_body_when_owner_holds_characters_github_never_allows_then_rejected() -> None:
    problems = problems_of(body(repositoryOwner="acme; rm -rf /"))

    assert problems[0].startswith("repositoryOwner: expected a GitHub name")


def test_parse_body_when_a_name_ends_in_a_newline_then_rejected() -> None:
    # A regular expression's `$` matches before a final newline; names are matched whole.
    assert problems_of(body(repositoryOwner="acme\n"))[0].startswith("repositoryOwner:")
    assert problems_of(body(repositoryName="app\n"))[0].startswith("repositoryName:")


def test_parse_body_when_too_many_or_too_long_labels_then_rejected() -> None:
    assert problems_of(body(labels=["x"] * (MAX_LABELS + 1)))[0].startswith("labels: at most")
    assert problems_of(body(labels=["x" * 1000]))[0].startswith("labels: each label")


def test_parse_batch_when_malformed_among_good_then_both_reported_in_order() -> None:
    batch = parse_batch([record("a", body(id=1)), record("b", "{oops"), record("c", body(id=3))])

    assert [r.job.id for r in batch.received] == [1, 3]
    assert [r.message_id for r in batch.rejected] == ["b"]


def test_parse_batch_when_record_not_from_sqs_or_without_id_then_ignored_not_failed() -> None:
    batch = parse_batch([record("a", body(), eventSource="aws:kinesis"),
                         {"body": body()}, record("", body())])

    assert batch.ignored == 3
    assert not batch.received and not batch.rejected


def test_parse_batch_when_message_id_repeats_then_handled_once() -> None:
    batch = parse_batch([record("a", body(id=1)), record("a", body(id=1))])

    assert len(batch.received) == 1


def test_parse_batch_reads_the_receive_count() -> None:
    item = record("a", body(), attributes={"ApproximateReceiveCount": "4"})

    assert parse_batch([item]).received[0].receive_count == 4
    assert parse_batch([record("b", body(), attributes={})]).received[0].receive_count == 1


_bodies = st.one_of(st.text(max_size=40), st.just(body()), st.builds(
    lambda i, o: body(id=i, repositoryOwner=o),
    st.one_of(st.integers(-5, 5), st.text(max_size=3)), st.text(max_size=8)))
_records = st.lists(st.fixed_dictionaries({
    "messageId": st.one_of(st.sampled_from(["a", "b", "c", ""]), st.none()),
    "body": _bodies,
    "eventSource": st.sampled_from(["aws:sqs", "aws:sqs", "aws:kinesis"]),
}), max_size=12)


@given(_records)
def test_parse_batch_reports_each_sqs_message_once_under_its_own_id(
        records: list[dict[str, Any]]) -> None:
    batch = parse_batch(records)

    ids = [r.job.message_id for r in batch.received] + [r.message_id for r in batch.rejected]
    valid = {r["messageId"] for r in records if r["messageId"] and r["eventSource"] == "aws:sqs"}
    assert len(ids) == len(set(ids))  # unique: a batch response never names an id twice
    assert set(ids) == valid  # every SQS record is accounted for, nothing invented
    assert all(ids)  # an empty itemIdentifier would fail the whole batch (R-Q-01)
