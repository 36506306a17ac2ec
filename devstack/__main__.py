"""`python -m devstack`: start devstack, deploy into it, print the shell exports, wait."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from devstack import Devstack, export_lines


def main() -> int:
    """Run devstack in the foreground until interrupted."""
    stack = Devstack.start()
    deployment = stack.deploy()
    print("# devstack is up. Point a shell at it with:")
    for line in export_lines(stack):
        print(line)
    print(f"# GitHub App id {stack.github.app_id}; build queue {deployment.queue_url}")
    print("# Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
