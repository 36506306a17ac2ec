"""The devstack the workloads share, and the functions' environment pointed at it."""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from typing import Any

_stack: list[Any] = []


def shared_devstack() -> Any:
    """One devstack for every workload of the process (moto keeps its state per process, so a
    second one would share it anyway)."""
    if not _stack:
        from devstack import Devstack

        stack = Devstack.start(validate_github=False)
        atexit.register(stack.stop)
        _stack.append(stack)
    return _stack[0]


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
