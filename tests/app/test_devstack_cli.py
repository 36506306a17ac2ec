"""devstack driven by hand, end to end: `python -m devstack` serving in one process, `chalice local`
in another, and the commands (`send-job`, `status`, `scale-up`, `pool`, `scale-down`) in more,
each as a person would type them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).with_name("chalice")


@dataclass
class Session:
    """The two servers and how to run a command against them."""

    state: Path
    env: dict[str, str]
    url: str
    local_log: Path

    def run(self, *command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", "--state", str(self.state), *command],
            cwd=ROOT, env={**self.env, **extra_env}, text=True, capture_output=True,
            timeout=120, check=False)

    def status(self) -> dict[str, Any]:
        done = self.run("status", "--json")
        assert done.returncode == 0, done.stderr
        snapshot: dict[str, Any] = json.loads(done.stdout)
        return snapshot

    def wait_for(self, what: str, test: Callable[[dict[str, Any]], bool],
                 seconds: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            snapshot = self.status()
            if test(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {snapshot}")
            time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("devstack-cli")
    state = folder / "state.json"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "GHES_", "RUNNER", "MINIMUM_", "ENABLE_"))}
    devstack = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--state", str(state), "--boot-seconds", "0.5"],
        cwd=ROOT, env=base, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    local: subprocess.Popen[str] | None = None
    try:
        assert devstack.stdout is not None
        exports: dict[str, str] = {}
        printed = []
        for line in devstack.stdout:
            printed.append(line)
            if line.startswith("export "):
                name, _, value = line[len("export "):].strip().partition("=")
                exports[name] = value
            if line.startswith("# Ctrl-C"):
                break
        secret = json.loads(state.read_text())["webhook_secret"]
        assert any(secret in line for line in printed)  # the secret is printed for the user
        env = {**base, **exports}
        port = _free_port()
        local_log = folder / "chalice-local.log"
        with local_log.open("w") as log:
            local = subprocess.Popen(
                [str(CHALICE), "local", "--no-autoreload", "--stage", "devstack",
                 "--port", str(port)], cwd=ROOT, env=env, text=True, stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, local_log.read_text()
            time.sleep(0.2)
        yield Session(state, env, f"http://127.0.0.1:{port}", local_log)
    finally:
        if local is not None:
            _stop(local)
        assert _stop(devstack) == 0
        assert not state.exists()  # removed on the way out


def test_a_job_sent_by_hand_gets_a_runner_and_completes(session: Session) -> None:
    sent = session.run("send-job", "--owner", "acme", "--repo", "hello",
                       "--labels", "self-hosted,linux", "--duration", "1", "--url", session.url)
    assert sent.returncode == 0, sent.stderr
    assert "webhook answered 201" in sent.stdout

    queued = session.status()
    assert queued["queue"]["waiting"] == 1
    [job] = queued["jobs"]
    assert (job["repository"], job["status"]) == ("acme/hello", "queued")

    fed = session.run("scale-up")
    assert fed.returncode == 0, fed.stderr
    assert "1 message(s) in 1 batch(es); 0 returned for retry" in fed.stdout
    assert '"message": "scale-up plan"' in fed.stderr  # the function's own log, on stderr

    done = session.wait_for("the job to complete", lambda s: s["jobs"][0]["conclusion"])
    [instance] = done["instances"]
    assert (instance["owner"], instance["type"], instance["created_by"]) == (
        "acme/hello", "Repo", "scale-up-lambda")
    assert done["jobs"][0]["runner_name"] == instance["id"]
    assert done["queue"] == {"waiting": 0, "in_flight": 0, "delayed": 0}
    # devstack delivered the job's later events to `chalice local`, as GitHub would: each
    # (in_progress, completed) logs its job timing there.
    deadline = time.monotonic() + 10
    while session.local_log.read_text().count('"message": "job timing"') < 2:
        assert time.monotonic() < deadline, session.local_log.read_text()
        time.sleep(0.2)


def test_the_pool_and_scale_down_by_hand(session: Session) -> None:
    topped = session.run("pool", "2", "--owner", "acme")
    assert topped.returncode == 0, topped.stderr
    pool = [i for i in session.status()["instances"] if i["created_by"] == "pool-lambda"]
    assert [(i["owner"], i["type"]) for i in pool] == [("acme", "Org"), ("acme", "Org")]
    session.wait_for("every runner online", lambda s: len(s["runners"]) == len(
        s["instances"]) and all(r["status"] == "online" for r in s["runners"]))

    table = session.run("status")
    assert table.returncode == 0
    assert "build queue: 0 waiting" in table.stdout and "pool-lambda" in table.stdout

    # Idle runners of any age may go (the default minimum running time is five minutes).
    reclaimed = session.run("scale-down", MINIMUM_RUNNING_TIME_IN_MINUTES="0")
    assert reclaimed.returncode == 0, reclaimed.stderr
    after = session.status()
    assert after["instances"] == [] and after["runners"] == []


def test_a_command_without_a_running_devstack_says_how_to_start_one(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "devstack", "--state",
                           str(tmp_path / "none.json"), "status"], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, check=False)

    assert done.returncode == 2
    assert "start `python -m devstack`" in done.stderr
