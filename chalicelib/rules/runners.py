"""Which GitHub runner record stands for an instance: shared by every plan that reads runners."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.models import Runner


def runners_by_name(runners: Iterable[Runner]) -> dict[str, Runner]:
    """The runner record of each name. Several records with one name can exist briefly (a
    re-registration): a busy one wins, so an instance is never judged by a stale idle twin."""
    by_name: dict[str, Runner] = {}
    for runner in runners:
        if runner.name not in by_name or (runner.busy and not by_name[runner.name].busy):
            by_name[runner.name] = runner
    return by_name
