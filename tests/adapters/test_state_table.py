"""The state table adapter against devstack's DynamoDB (moto in server mode)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.state import StateTable, TransactionConflict, Write, from_dynamo, to_dynamo
from chalicelib.errors import RetryableError

NOW = 1_800_000_000


@pytest.fixture
def table(stack: Any) -> StateTable:
    return StateTable(stack.boto("dynamodb"), stack.deployment.state_table)


def test_plain_values_survive_the_round_trip() -> None:
    value = {"s": "x", "n": 3, "f": 1.5, "b": True, "none": None, "l": [1, "a"],
             "m": {"k": [False]}}
    assert from_dynamo(to_dynamo(value)) == value


def test_put_new_creates_once_and_replaces_only_an_expired_item(table: StateTable) -> None:
    assert table.put_new("delivery#1", "d", {"at": 1}, expires_at=NOW + 60, now=NOW)
    assert not table.put_new("delivery#1", "d", {"at": 2}, expires_at=NOW + 60, now=NOW)
    assert table.get("delivery#1", "d") == {"pk": "delivery#1", "sk": "d", "at": 1,
                                            "expiresAt": NOW + 60}
    # Past its expiry the item counts as gone, whether or not DynamoDB swept it yet.
    assert table.put_new("delivery#1", "d", {"at": 3}, expires_at=NOW + 200, now=NOW + 61)
    assert table.get("delivery#1", "d")["at"] == 3  # type: ignore[index]


def test_query_reads_one_partition_by_prefix(table: StateTable) -> None:
    for sk in ("a#1", "a#2", "b#1"):
        table.put("p", sk, {}, expires_at=NOW)
    table.put("q", "a#3", {}, expires_at=NOW)
    assert [item["sk"] for item in table.query("p", "a#")] == ["a#1", "a#2"]
    assert len(table.query("p")) == 3


def test_a_conditional_update_tells_the_item_as_it_was_when_refused(table: StateTable) -> None:
    ok, after = table.update("c", "n", "SET v = if_not_exists(v, :z) + :one",
                             values={":z": 0, ":one": 1})
    assert ok and after is not None and after["v"] == 1
    ok, before = table.update("c", "n", "SET v = v + :one", condition="v = :expected",
                              values={":one": 1, ":expected": 5})
    assert not ok and before is not None and before["v"] == 1


def test_a_transaction_is_all_or_nothing_and_names_the_refused_write(table: StateTable) -> None:
    table.put("job#1", "0", {"by": "first"}, expires_at=NOW)
    writes = [Write("job#2", "0", item={"by": "second"}, condition="attribute_not_exists(pk)"),
              Write("job#1", "0", item={"by": "second"}, condition="attribute_not_exists(pk)")]
    with pytest.raises(TransactionConflict) as refused:
        table.transact(writes)
    assert refused.value.failed == (False, True)
    assert refused.value.current[1] is not None and refused.value.current[1]["by"] == "first"
    assert table.get("job#2", "0") is None


def test_throttling_past_the_clients_retries_is_retryable(stack: Any, table: StateTable) -> None:
    stack.aws_faults.fail_next("dynamodb", "GetItem", "ProvisionedThroughputExceededException")
    with pytest.raises(RetryableError):
        table.get("x", "y")
