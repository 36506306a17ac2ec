"""`python -m devstack <command>`: drive a devstack that `python -m devstack` serves elsewhere.

    send-job --owner acme --repo hello --labels self-hosted,linux   # GitHub queues a job and
                                                 # its webhook goes to `chalice local` (--url)
    scale-up                                     # drain the build queue through scale_up
    scale-down                                   # one scheduled scale_down run
    pool 3 [--owner acme] [--runner-config gpu]  # adjust_pool with {"poolSize": 3}
    status [--json]                              # queue, instances, runners and jobs

The running devstack is found through its state file (`--state`). The functions run in this
process, through `chalice.test.Client`, with the devstack's environment; variables the state
file does not set (RUNNERS_MAXIMUM_COUNT, MINIMUM_RUNNING_TIME_IN_MINUTES, ...) come from this
shell, as they do for `chalice local`. Their log lines go to stderr, this command's own output
to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import requests

from devstack.invoke import Functions
from devstack.status import collect, render
from devstack.webhooks import signed_headers

DEFAULT_URL = "http://127.0.0.1:8000"
# Where `python -m devstack` leaves what the commands need (out/ is git-ignored).
DEFAULT_STATE = Path(__file__).resolve().parent.parent / "out" / "devstack.json"
COMMANDS = ("send-job", "scale-up", "scale-down", "pool", "status")


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def parser() -> argparse.ArgumentParser:
    """The command line of the commands (`python -m devstack` alone serves a devstack)."""
    top = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    top.add_argument("--state", type=Path, default=DEFAULT_STATE,
                     help="state file of the running devstack (default %(default)s)")
    commands = top.add_subparsers(dest="command", required=True)
    job = commands.add_parser("send-job", help="queue a workflow job and post its webhook")
    job.add_argument("--owner", required=True, help="organization or user")
    job.add_argument("--repo", required=True, help="repository name (without the owner)")
    job.add_argument("--labels", default="self-hosted,linux,x64",
                     help="comma-separated runs-on labels (default %(default)s)")
    job.add_argument("--duration", type=float, default=30.0,
                     help="seconds the job runs once a runner took it (default %(default)g)")
    job.add_argument("--url", default=DEFAULT_URL,
                     help="base URL of `chalice local` (default %(default)s)")
    commands.add_parser("scale-up", help="drain the build queue through scale_up")
    commands.add_parser("scale-down", help="run scale_down once")
    pool = commands.add_parser("pool", help="run adjust_pool with a pool size")
    pool.add_argument("size", type=int)
    pool.add_argument("--owner", help="organization of the pool (default $RUNNER_OWNER, else "
                                      "the first owner the App is installed on)")
    pool.add_argument("--runner-config", default=None, metavar="ID",
                      help="the runner configuration whose pool it is (docs/REFERENCE.md §6; "
                           "default: the first)")
    status = commands.add_parser("status", help="queue, instances, runners and jobs")
    status.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    return top


def load_state(path: Path) -> dict[str, Any]:
    """The state file of a running devstack; CliError when there is none."""
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"no devstack is running ({path} is missing): start "
                       "`python -m devstack` in another shell first") from None
    try:
        os.kill(int(state["pid"]), 0)
    except ProcessLookupError:
        raise CliError(f"the devstack of {path} (pid {state['pid']}) is gone: start it again") \
            from None
    return state


def control(state: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    """Call the devstack's control API."""
    response = requests.request(method, state["control_url"] + path, json=body, timeout=10)
    if response.status_code >= 300:
        raise CliError(f"devstack answered {response.status_code}: {response.text}")
    return response.json()


def send_job(args: argparse.Namespace, state: dict[str, Any]) -> int:
    """Queue a job in the GitHub fake and post its signed `queued` webhook to `chalice local`."""
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    url = args.url.rstrip("/") + "/webhook"
    created = control(state, "POST", "/jobs", {
        "owner": args.owner, "repo": args.repo, "labels": labels, "duration": args.duration,
        "webhook_url": url})
    body = json.dumps(created["payload"]).encode()
    try:
        response = requests.post(url, data=body, timeout=30,
                                 headers=signed_headers(body, state["webhook_secret"]))
    except requests.ConnectionError:
        raise CliError(f"job {created['id']} is queued in GitHub, but nothing answers at {url}:"
                       " start `chalice local --no-autoreload --stage devstack` with the "
                       "exports `python -m devstack` printed") from None
    print(f"job {created['id']} ({args.owner}/{args.repo}, {','.join(labels)}) queued; "
          f"webhook answered {response.status_code} {response.text.strip()}")
    return 0 if response.status_code < 300 else 1


def scale_up(functions: Functions) -> int:
    """Feed the build queue to scale_up until it is empty."""
    fed, retried, batches = functions.drain_build_queue()
    print(f"scale_up: {fed} message(s) in {batches} batch(es); {retried} returned for retry")
    return 0


def scale_down(functions: Functions) -> int:
    """One scheduled scale_down run."""
    functions.scale_down()
    print("scale_down: run complete")
    return 0


def pool(args: argparse.Namespace, state: dict[str, Any], functions: Functions) -> int:
    """One adjust_pool run for the owner's organization."""
    owner = args.owner or os.environ.get("RUNNER_OWNER")
    if not owner:
        installed = control(state, "GET", "/github")["installations"]
        if not installed:
            raise CliError("no owner known yet: pass --owner (or send a job first)")
        owner = installed[0]
    control(state, "POST", "/installations", {"owner": owner})
    os.environ["RUNNER_OWNER"] = owner
    functions.adjust_pool(args.size, args.runner_config)
    which = f" ({args.runner_config})" if args.runner_config else ""
    print(f"adjust_pool: pool of {owner}{which} adjusted towards {args.size} idle runner(s)")
    return 0


def main(argv: list[str]) -> int:
    """Run one command against the running devstack; the exit status."""
    args = parser().parse_args(argv)
    try:
        state = load_state(args.state)
        if args.command == "send-job":
            return send_job(args, state)
        if args.command == "status":
            snapshot = collect(state, control(state, "GET", "/github"))
            print(json.dumps(snapshot, indent=2) if args.json else render(snapshot))
            return 0
        # The functions read the devstack's environment; the shell's other variables stay.
        os.environ.update(state["env"])
        functions = Functions(state["env"]["SQS_URL_WEBHOOK"], log=sys.stderr)
        try:
            if args.command == "scale-up":
                return scale_up(functions)
            if args.command == "scale-down":
                return scale_down(functions)
            return pool(args, state, functions)
        except CliError:
            raise
        except Exception as error:
            # What the invocation would report as a Lambda error; its log lines are above.
            print(f"{args.command} failed: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
