"""A devstack left running for a person: `python -m devstack` serves one until stopped.

Besides moto and the GitHub fake, a session runs the runner simulation on a timer (launched
instances boot, register and take jobs, as real ones would), delivers the `in_progress` and
`completed` webhooks of each job to the URL its `queued` one went to (as GitHub's App webhook
would), and answers a small control API on loopback for what has no GitHub or AWS API: creating
a workflow job, installing the App on an owner, and reading the fake's jobs and runners.

`python -m devstack <command>` (devstack/cli.py) runs in another process: it finds the session
through a state file holding the exported environment, the webhook secret and the control URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from devstack import Devstack
from devstack.runner_sim import RunnerSimulation
from devstack.webhooks import signed_headers

TICK_SECONDS = 0.5


class Session:
    """devstack plus the simulation loop, the webhook forwarder and the control server."""

    def __init__(self, stack: Devstack, state_path: Path, boot_seconds: float,
                 echo: Any = print, apps: int = 1,
                 runner_configs: list[dict[str, Any]] | None = None) -> None:
        self.stack = stack
        self.state_path = state_path
        self.echo = echo
        stack.deploy()
        for _ in range(apps - 1):  # more GitHub Apps, listed after the first (REFERENCE §10)
            stack.add_app()
        if runner_configs:  # several runner configurations (REFERENCE §6)
            stack.add_runner_configs(runner_configs)
        assert stack.deployment is not None
        deployment = stack.deployment
        self.deployment = deployment
        # Every configuration's instances (and the top-level environment's), each runner
        # registering with its machine's labels.
        watched: str | dict[str, tuple[str, ...]] = deployment.machine_labels \
            if runner_configs else deployment.environment
        self.simulation = RunnerSimulation(
            stack.github, stack.boto("ec2"), stack.boto("ssm"),
            environment=watched, token_path=deployment.token_path,
            name_prefix=os.environ.get("RUNNER_NAME_PREFIX", ""), boot_delay=boot_seconds)
        # job id -> the webhook URL its `queued` delivery was posted to.
        self.hooks: dict[int, str] = {}
        self.events: queue.Queue[tuple[str, int]] = queue.Queue()
        stack.github.on_job_event = lambda action, job: self.events.put((action, job["id"]))
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True,
                             name="devstack-control"),
            threading.Thread(target=self._loop, daemon=True, name="devstack-simulation"),
        ]

    @property
    def control_url(self) -> str:
        """Where the control API answers."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Serve the control API, run the simulation, and write the state file (owner-only)."""
        for thread in self._threads:
            thread.start()
        state = {"pid": os.getpid(), "control_url": self.control_url, "env": self.stack.env(),
                 "webhook_secret": self.deployment.webhook_secret,
                 "dead_letter_queue_url": self.deployment.dead_letter_queue_url,
                 # What `status` lists: every runner configuration's instances.
                 "environments": list(self.deployment.machine_labels)}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        # The file holds the (devstack-only) webhook secret: readable by its owner alone.
        descriptor = os.open(self.state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(state, file, indent=2)

    def stop(self) -> None:
        """Stop the loop and the control API, remove the state file, stop devstack."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.stack.github.on_job_event = None
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        self.stack.stop()

    # -- what the control API does -------------------------------------------------------------

    def add_job(self, owner: str, repo: str, labels: list[str], duration: float,
                webhook_url: str | None) -> dict[str, Any]:
        """Install the App on `owner` if needed, queue a job; its id and `queued` payload."""
        self.install(owner)
        job_id = self.stack.github.add_job(owner, repo, labels, duration=duration)
        if webhook_url:
            self.hooks[job_id] = webhook_url
        return {"id": job_id, "payload": self.stack.github.workflow_job_payload("queued", job_id)}

    def install(self, owner: str) -> int:
        """The first App's installation id on `owner`, installing every App there first if it
        is not."""
        fake = self.stack.github
        found = fake.installation_id(owner)
        if found is not None:
            return int(found)
        for app in fake.apps[1:]:
            fake.add_installation(owner, app_id=app.app_id)
        return int(fake.add_installation(owner))

    def github_state(self) -> dict[str, Any]:
        """The fake's installations, jobs and runners, as plain values."""
        fake = self.stack.github
        with fake.lock:
            owners = sorted(record.owner for record in fake.installations.values()
                            if record.app_id == fake.app_id)
        return {
            "installations": owners,
            "jobs": [{"id": j.id, "repository": j.full_repo, "labels": j.labels,
                      "status": j.status, "conclusion": j.conclusion,
                      "runner_name": j.runner_name} for j in fake.jobs.values()],
            "runners": [{"id": r.id, "name": r.name, "scope": r.scope, "status": r.status,
                         "busy": r.busy, "labels": r.labels} for r in fake.runners()],
        }

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                for _, kind, detail in self.simulation.step():
                    self.echo(f"# {kind}: {detail}", flush=True)
            except Exception as error:  # a moto hiccup must not end the session
                self.echo(f"# simulation step failed: {type(error).__name__}: {error}",
                          flush=True)
            self._forward()

    def _forward(self) -> None:
        """Deliver the job events GitHub would send after `queued` (the CLI posts that one)."""
        while True:
            try:
                action, job_id = self.events.get_nowait()
            except queue.Empty:
                return
            url = self.hooks.get(job_id)
            if action == "queued" or url is None:
                continue
            body = json.dumps(self.stack.github.workflow_job_payload(action, job_id)).encode()
            headers = signed_headers(body, self.deployment.webhook_secret)
            try:
                status = requests.post(url, data=body, headers=headers, timeout=10).status_code
            except requests.RequestException as error:
                self.echo(f"# webhook {action} of job {job_id} not delivered: "
                          f"{type(error).__name__}", flush=True)
                continue
            self.echo(f"# webhook {action} of job {job_id}: HTTP {status}", flush=True)


def _handler(session: Session) -> type[BaseHTTPRequestHandler]:
    class Control(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the session prints what matters."""

        def _reply(self, status: int, value: Any) -> None:
            payload = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/github":
                self._reply(200, session.github_state())
            else:
                self._reply(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/jobs":
                    self._reply(201, session.add_job(
                        str(body["owner"]), str(body["repo"]), [str(x) for x in body["labels"]],
                        float(body.get("duration", 30)), body.get("webhook_url")))
                elif self.path == "/installations":
                    self._reply(200, {"id": session.install(str(body["owner"]))})
                else:
                    self._reply(404, {"message": "Not Found"})
            except (KeyError, TypeError, ValueError) as error:
                self._reply(400, {"message": f"bad request: {error}"})

    return Control
