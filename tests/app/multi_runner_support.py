"""Shared helpers of the multi-runner tests (docs/REFERENCE.md §6): a list of runner
configurations in devstack's SSM, named by the functions' environment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import wiring

PARAMETER = "/github-action-runners/devstack/runner-configs"


def use_configs(stack: Any, monkeypatch: pytest.MonkeyPatch, entries: Any,
                secure: bool = False) -> None:
    """Write `entries` as the configuration list and point the functions at it (a fresh
    container sees it)."""
    stack.boto("ssm").put_parameter(Name=PARAMETER, Value=json.dumps(entries), Overwrite=True,
                                    Type="SecureString" if secure else "String")
    monkeypatch.setenv("RUNNER_CONFIGS_PARAMETER_NAME", PARAMETER)
    wiring.reset()


def config(config_id: str, *label_sets: list[str], exact: bool = False,
           bidirectional: bool = False, priority: int | None = None,
           **environment: str) -> dict[str, Any]:
    """One configuration of the list; without label sets, no matcherConfig."""
    entry: dict[str, Any] = {"id": config_id, "environment": environment}
    if label_sets:
        entry["matcherConfig"] = {"labelMatchers": list(label_sets), "exactMatch": exact,
                                  "bidirectionalLabelMatch": bidirectional,
                                  **({"priority": priority} if priority is not None else {})}
    return entry
