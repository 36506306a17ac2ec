"""The shared cap against devstack's DynamoDB: reservations seen by every container, given
back, expiring, and contended (docs/REFERENCE.md §5.1, §7)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.aws.state import StateTable
from chalicelib.errors import RetryableError
from chalicelib.models import TAG_RESERVATION, Instance
from chalicelib.services.capacity import RESERVATION_SECONDS, CapacityLedger, current_count

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def instance(n: int, reservation: str | None = None) -> Instance:
    tags = ((TAG_RESERVATION, reservation),) if reservation else ()
    return Instance(f"i-{n:08x}", datetime.now(UTC), owner="acme", tags=tags)


@pytest.fixture
def table(stack: Any) -> StateTable:
    return StateTable(stack.boto("dynamodb"), stack.deployment.state_table)


def ledger(table: StateTable, clock: Clock) -> CapacityLedger:
    return CapacityLedger(table, "devstack", clock=clock)


def test_an_instance_is_counted_once_whether_ec2_lists_it_yet_or_not() -> None:
    held = {"r1": {"n": 3, "exp": int(NOW) + 60}, "old": {"n": 5, "exp": int(NOW) - 1}}
    assert current_count([], held, NOW) == 3  # nothing listed yet
    assert current_count([instance(1, "r1"), instance(2, "r1")], held, NOW) == 3
    assert current_count([instance(n, "r1") for n in range(4)], held, NOW) == 4
    assert current_count([instance(9)], held, NOW) == 4  # an untagged instance adds


def test_a_reservation_holds_the_cap_for_every_other_container(table: StateTable) -> None:
    clock = Clock()
    first = ledger(table, clock).reserve("acme", "Org", 2, cap=3, live=[])
    second = ledger(table, clock).reserve("ACME", "Org", 5, cap=3, live=[])

    assert (first.count, second.count) == (2, 1)  # owners compare case-insensitively
    assert ledger(table, clock).reserve("acme", "Org", 1, cap=3, live=[]).count == 0


def test_what_a_launch_did_not_use_is_given_back(table: StateTable) -> None:
    clock = Clock()
    one, other = ledger(table, clock), ledger(table, clock)
    reservation = one.reserve("acme", "Org", 3, cap=3, live=[])

    one.release(reservation, used=1)

    assert other.reserve("acme", "Org", 5, cap=3, live=[]).count == 2


def test_a_reservation_expires_if_it_never_became_instances(table: StateTable) -> None:
    clock = Clock()
    ledger(table, clock).reserve("acme", "Org", 3, cap=3, live=[])

    clock.now += RESERVATION_SECONDS + 1

    assert ledger(table, clock).reserve("acme", "Org", 3, cap=3, live=[]).count == 3


def test_a_warm_container_reserves_with_one_write(stack: Any, table: StateTable) -> None:
    clock = Clock()
    warm = ledger(table, clock)
    warm.reserve("acme", "Org", 1, cap=10, live=[])
    stack.aws_faults.reset()

    warm.reserve("acme", "Org", 1, cap=10, live=[])

    assert stack.aws_faults.count("dynamodb", "TransactWriteItems") == 1
    assert stack.aws_faults.count() == 1


def test_concurrent_containers_never_reserve_past_the_cap(table: StateTable) -> None:
    clock = Clock()
    ledgers = [ledger(table, clock) for _ in range(8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        granted = list(pool.map(lambda lg: lg.reserve("acme", "Org", 3, cap=10, live=[]).count,
                                ledgers))

    assert sum(granted) == 10


def test_a_failing_table_launches_nothing(stack: Any, table: StateTable) -> None:
    stack.aws_faults.fail_next("dynamodb", "TransactWriteItems", "InternalServerError",
                               times=20, status=500)
    with pytest.raises(RetryableError):
        ledger(table, Clock()).reserve("acme", "Org", 1, cap=3, live=[])
