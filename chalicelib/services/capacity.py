"""The shared cap (docs/REFERENCE.md §5.1, §7): reservations in the state table, one conditional
write per launch, whatever the number of scale-up containers and pool runs.

One item per (environment, runner type, owner) holds a version and the live reservations:
`{reservation id: {"n": count, "exp": epoch}}`. A launch reserves before it calls CreateFleet,
with a write that succeeds only if nobody changed the item since it was read; its instances
carry the tag `ghr:reservation=<id>`. The count that the cap clamps is anchored to EC2:

    current = live instances (DescribeInstances) + for each unexpired reservation,
              the part of it that EC2 does not list yet (n - its live instances, at least 0)

so an instance is counted once, whether EC2 lists it yet or not, and a reservation that never
became instances counts until it is released or expires. A reservation expires after
RESERVATION_SECONDS: longer than a launch (the CreateFleet call and its retries) plus EC2's
listing lag. An instance of a reservation that ends before it expires is still counted as
reserved until then: the cap errs on the side of launching fewer, never more.

Each container remembers the item as it last wrote or saw it, so a warm container reserves
with a single write; a stale view costs one refused write, which returns the item as it is.
A table that fails or stays contended means no launch (fail closed): the messages are retried.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.aws.state import Item, StateTable, TransactionConflict, Write
from chalicelib.errors import RetryableError
from chalicelib.logs import get_logger
from chalicelib.models import TAG_RESERVATION, Instance, RunnerType

log = get_logger(__name__)

RESERVATION_SECONDS = 180
# Refused writes in a row before giving up (another container kept changing the item).
MAX_ATTEMPTS = 10
NO_CAP = -1


@dataclass(frozen=True)
class Reservation:
    """Capacity granted to one launch: `count` instances under reservation `rid`."""

    key: str
    rid: str
    count: int
    # The count the cap was checked against: live instances plus unlisted reservations.
    current: int = 0


@dataclass(frozen=True)
class _Seen:
    version: int
    held: Mapping[str, Mapping[str, int]]


def cap_key(environment: str, runner_type: RunnerType, owner: str) -> str:
    """The partition of an owner's cap; owners compare case-insensitively (GitHub's names do)."""
    return f"cap#{environment}#{runner_type}#{owner.lower()}"


def current_count(live: Sequence[Instance], held: Mapping[str, Mapping[str, int]],
                  now: float) -> int:
    """Live instances plus the unlisted part of each unexpired reservation."""
    listed = Counter(i.tag(TAG_RESERVATION) for i in live)
    pending = sum(max(0, int(h["n"]) - listed.get(rid, 0))
                  for rid, h in held.items() if h["exp"] > now)
    return len(live) + pending


class CapacityLedger:
    """Cap reservations of one container over the state table; safe to share between threads."""

    def __init__(self, table: StateTable, environment: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.environment = environment
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def for_environment(self, environment: str) -> CapacityLedger:
        """The ledger of another configuration's caps (§6: a cap per configuration and owner),
        sharing this one's view of the table (its keys name the environment)."""
        if environment == self.environment:
            return self
        other = CapacityLedger(self.table, environment, self.clock)
        other._seen, other._lock = self._seen, self._lock
        return other

    def reserve(self, owner: str, runner_type: RunnerType, wanted: int, cap: int,
                live: Sequence[Instance],
                claims: Callable[[int], Sequence[Write]] = lambda _count: ()) -> Reservation:
        """Reserve up to `wanted` instances under `cap` for `owner`, given its `live` instances
        as EC2 listed them just before. `claims(n)` are writes made in the same transaction
        when n are granted (the claims of the first n jobs). A refused claim raises
        TransactionConflict for the caller to sort out; a table that fails RetryableError."""
        key = cap_key(self.environment, runner_type, owner)
        seen, fresh = self._cached(key), False
        for _ in range(MAX_ATTEMPTS):
            now = self.clock()
            held = {rid: h for rid, h in (seen.held if seen else {}).items() if h["exp"] > now}
            current = current_count(live, held, now)
            grant = max(0, min(wanted, wanted if cap == NO_CAP else cap - current))
            if grant < 1 and (fresh or seen is None or len(live) >= cap):
                # Reservations only add to what EC2 lists: no write can make room.
                return Reservation(key, "", 0, current)
            if grant < 1:
                # Full by this container's last view: another may have released since.
                seen, fresh = self._remember(key, self.table.get(key, "cap")), True
                continue
            rid = uuid.uuid4().hex[:16]
            held[rid] = {"n": grant, "exp": int(now) + RESERVATION_SECONDS}
            try:
                self.table.transact([self._write(key, seen, held), *claims(grant)])
            except TransactionConflict as conflict:
                if any(conflict.failed[1:]):
                    raise
                if conflict.contended:
                    time.sleep(random.uniform(0.01, 0.05))  # another write in progress
                    continue
                seen, fresh = self._remember(key, conflict.current[0]), True
                continue
            self._store(key, _Seen((seen.version if seen else 0) + 1, held))
            return Reservation(key, rid, grant, current)
        raise RetryableError(f"cap reservation of {owner}: the state table stayed contended")

    def release(self, reservation: Reservation, used: int) -> None:
        """Give back what a reservation did not launch (`used` of its `count` were launched);
        best effort: what is not given back expires with the reservation."""
        if not reservation.rid or used >= reservation.count:
            return
        seen = self._cached(reservation.key)
        for _ in range(MAX_ATTEMPTS):
            held = {rid: h for rid, h in (seen.held if seen else {}).items()
                    if h["exp"] > self.clock()}
            if reservation.rid not in held:
                return
            if used > 0:
                held[reservation.rid] = {**held[reservation.rid], "n": used}
            else:
                del held[reservation.rid]
            try:
                self.table.transact([self._write(reservation.key, seen, held)])
            except TransactionConflict as conflict:
                if not conflict.contended:
                    seen = self._remember(reservation.key, conflict.current[0])
                continue
            except RetryableError as error:
                log.warning("cap reservation not released; it expires", error=str(error),
                            reservation=reservation.rid)
                return
            self._store(reservation.key, _Seen((seen.version if seen else 0) + 1, held))
            return

    def _write(self, key: str, seen: _Seen | None,
               held: Mapping[str, Mapping[str, int]]) -> Write:
        version = seen.version if seen else 0
        return Write(key, "cap", kind="update",
                     update="SET #v = :next, #h = :held, #ttl = :exp",
                     condition="attribute_not_exists(pk)" if seen is None else "#v = :version",
                     names={"#v": "version", "#h": "held", "#ttl": "expiresAt"},
                     values={":next": version + 1, ":held": dict(held),
                             # The item outlives its last reservation by a day.
                             ":exp": int(self.clock()) + 86400,
                             **({} if seen is None else {":version": version})})

    def _cached(self, key: str) -> _Seen | None:
        with self._lock:
            return self._seen.get(key)

    def _store(self, key: str, seen: _Seen) -> None:
        with self._lock:
            self._seen[key] = seen

    def _remember(self, key: str, item: Item | None) -> _Seen | None:
        """The item as the refused write found it (None: it does not exist)."""
        seen = None if item is None else _Seen(int(item.get("version", 0)),
                                               _held(item.get("held")))
        with self._lock:
            if seen is None:
                self._seen.pop(key, None)
            else:
                self._seen[key] = seen
        return seen


def _held(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(rid): {"n": int(h.get("n", 0)), "exp": int(h.get("exp", 0))}
            for rid, h in value.items() if isinstance(h, Mapping)}
