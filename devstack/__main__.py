"""`python -m devstack`: start devstack, deploy into it, print the shell exports, serve until
stopped. `python -m devstack <command>` drives the running one (see devstack/cli.py)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from devstack import Devstack, export_lines


def serve(argv: list[str]) -> int:
    """Run devstack in the foreground until interrupted."""
    from devstack.cli import DEFAULT_STATE
    from devstack.session import Session

    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Serve devstack until stopped; with a command (send-job, scale-up, "
                    "scale-down, pool, status), drive the one already running.")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE,
                        help="where to write the state file the commands read "
                             "(default %(default)s)")
    parser.add_argument("--boot-seconds", type=float, default=5.0,
                        help="how long a launched instance takes to register its runner "
                             "(default %(default)g)")
    parser.add_argument("--apps", type=int, default=1, choices=range(1, 6),
                        help="GitHub Apps in the fake, each installed on every owner "
                             "(docs/REFERENCE.md §10; default %(default)s)")
    parser.add_argument("--latency", default=None,
                        help="latency profile of AWS and GitHub calls: off or realistic "
                             "(default: $DEVSTACK_LATENCY, else off; see devstack/README.md)")
    args = parser.parse_args(argv)
    try:
        stack = Devstack.start(latency=args.latency)
    except ValueError as error:  # an unknown profile
        parser.error(str(error))
    session = Session(stack, args.state, args.boot_seconds, apps=args.apps)
    session.start()
    print("# devstack is up. Point a shell at it with:")
    for line in export_lines(stack):
        print(line)
    deployment = session.deployment
    app_ids = ", ".join(str(app.app_id) for app in stack.github.apps)
    print(f"# GitHub App id(s) {app_ids}; build queue {deployment.queue_url}; "
          f"latency profile {stack.latency.name}")
    print(f"# webhook secret (in {deployment.webhook_secret_parameter}): "
          f"{deployment.webhook_secret}")
    print(f"# state file {args.state}; e.g. python -m devstack send-job --owner acme "
          "--repo hello --labels self-hosted,linux")
    print("# Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    session.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serve, or run one command against the devstack already served."""
    from devstack.cli import COMMANDS

    arguments = sys.argv[1:] if argv is None else argv
    if any(word in COMMANDS for word in arguments):
        from devstack.cli import main as run_command

        return run_command(arguments)
    return serve(arguments)


if __name__ == "__main__":
    sys.exit(main())
