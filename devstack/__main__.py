"""`python -m devstack`: start devstack, deploy into it, print the shell exports, serve until
stopped. `python -m devstack <command>` drives the running one (see devstack/cli.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
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
    parser.add_argument("--runner-configs", type=Path, default=None, metavar="FILE",
                        help="JSON list of runner configurations (docs/REFERENCE.md §6): one "
                             "launch template each and the SSM parameter holding the list, "
                             "named by RUNNER_CONFIGS_PARAMETER_NAME in the exports")
    args = parser.parse_args(argv)
    configs = None
    if args.runner_configs is not None:
        try:
            configs = json.loads(args.runner_configs.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"--runner-configs {args.runner_configs}: {error}")
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            parser.error(f"--runner-configs {args.runner_configs}: expected a JSON list of "
                         "objects")
    try:
        stack = Devstack.start(latency=args.latency)
    except ValueError as error:  # an unknown profile
        parser.error(str(error))
    session = Session(stack, args.state, args.boot_seconds, apps=args.apps,
                      runner_configs=configs)
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
