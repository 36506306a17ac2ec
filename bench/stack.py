"""The devstack the workloads share, and the functions' environment pointed at it."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
from collections.abc import Iterator
from typing import Any

_stack: list[Any] = []


def shared_devstack() -> Any:
    """One devstack for every workload of the process (moto keeps its state per process, so a
    second one would share it anyway)."""
    if not _stack:
        from devstack import Devstack

        # Latency off whatever DEVSTACK_LATENCY says: a workload that wants a profile sets it.
        stack = Devstack.start(validate_github=False, latency="off")
        atexit.register(stack.stop)
        _stack.append(stack)
    return _stack[0]


def lambda_client() -> Any:
    """chalice's test client of the app, its Lambda context given the deployed 60 s timeout
    (the test client's own says 3 s are left)."""
    import chalice.test
    from chalice.local import LambdaContext

    from app import app

    chalice.test.LambdaContext = functools.partial(  # type: ignore[misc]
        LambdaContext, max_runtime_ms=60_000)
    return chalice.test.Client(app, stage_name="devstack")


@contextlib.contextmanager
def function_environment(stack: Any, **overrides: str) -> Iterator[None]:
    """The functions' environment pointed at `stack`, a fresh container's caches, and the
    process's environment restored afterwards."""
    from chalicelib import wiring

    saved = dict(os.environ)
    os.environ.update(stack.env(**overrides))
    wiring.reset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()
