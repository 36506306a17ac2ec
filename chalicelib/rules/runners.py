"""Which GitHub runner record stands for an instance: shared by every plan that reads runners."""

from __future__ import annotations

import re
from collections.abc import Iterable

from chalicelib.models import INSTANCE_ID_PATTERN, Runner

_INSTANCE_ID = re.compile(f"({INSTANCE_ID_PATTERN})$")


def runners_by_name(runners: Iterable[Runner]) -> dict[str, Runner]:
    """The runner record of each name. Several records with one name can exist briefly (a
    re-registration): a busy one wins, so an instance is never judged by a stale idle twin."""
    by_name: dict[str, Runner] = {}
    for runner in runners:
        if runner.name not in by_name or (runner.busy and not by_name[runner.name].busy):
            by_name[runner.name] = runner
    return by_name


def runners_by_instance(runners: Iterable[Runner]) -> dict[str, Runner]:
    """The runner record of each instance, by the instance id its name ends with, whatever the
    prefix before it: a runner registered under a prefix since changed (a runner configuration
    edited, or an environment taken over by a configuration with a prefix of its own) is still
    its instance's, and a busy one is never taken for an orphan. A busy record wins, as above."""
    by_instance: dict[str, Runner] = {}
    for name, runner in runners_by_name(runners).items():
        found = _INSTANCE_ID.search(name)
        if found is None:
            continue
        held = by_instance.get(found.group(1))
        if held is None or (runner.busy and not held.busy):
            by_instance[found.group(1)] = runner
    return by_instance
