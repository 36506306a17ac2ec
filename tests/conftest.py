"""Fixtures shared by every tier: devstack (session-wide), a clean deployment per test, and the
functions' environment pointed at it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import pytest

from chalicelib import wiring

_real_connect = socket.socket.connect

# The project's logger does not propagate (logs.configure: the Lambda runtime's root handler
# would write every line twice). pytest attaches its capture handlers (caplog, the report's
# captured log) to every non-propagating logger that exists when a test phase starts: created
# here, before any test, the project's records reach `caplog` whether configure ran or not.
logging.getLogger("ghr").propagate = False


@pytest.fixture(autouse=True)
def _network_only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk only to 127.0.0.1: anything else fails loudly instead of leaving the machine."""

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1", "::1", "localhost"
        ):
            raise OSError(f"test tried to reach {host!r}: only loopback is allowed")
        _real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def devstack() -> Iterator[object]:
    """One devstack for the whole session: moto and the GitHub fake on loopback ports."""
    from devstack import Devstack

    # Off whatever DEVSTACK_LATENCY says: the tests that need a profile set one themselves.
    stack = Devstack.start(latency="off")
    yield stack
    stack.stop()


@pytest.fixture
def stack(devstack: object) -> object:
    """devstack emptied and deployed afresh for this test."""
    devstack.reset()  # type: ignore[attr-defined]
    devstack.deploy()  # type: ignore[attr-defined]
    return devstack


@pytest.fixture
def env(stack: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The functions' environment pointed at devstack; caches of the previous test forgotten."""
    values = stack.env()  # type: ignore[attr-defined]
    for name in list(os.environ):
        if name.startswith(("AWS_", "GHES_")):
            monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield values
    wiring.reset()
