"""Scale-down's two questions to GitHub before a removal (services/scale_down.py): the DELETE
of a runner, whose answer decides whether its instance may go, and the direct look-up of a
suspected orphan's runner. Each answer is logged once with the removal it was for."""

from __future__ import annotations

from chalicelib import metrics
from chalicelib.errors import GhrError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.rules.removals import Removal

log = get_logger(__name__)


def deregister(github: GitHubClient, removal: Removal, runner_id: int) -> str:
    """DELETE the runner: "deleted", "busy", "not_found" or "error" (logged with the reason)."""
    try:
        outcome = github.delete_runner(removal.owner, removal.runner_type, runner_id)
    except GhrError as error:
        log.error("runner deregistration failed; instance kept", owner=removal.owner,
                  runner_id=removal.runner_id, instance_id=removal.instance_id,
                  kind=removal.kind, error=str(error))
        return "error"
    if outcome == "busy":
        log.info("runner took a job; instance kept", owner=removal.owner,
                 runner_id=removal.runner_id, instance_id=removal.instance_id)
        metrics.put("ScaleDownBusyRaces", 1)
    elif outcome == "not_found" and removal.instance_id is not None:
        # Gone from GitHub since the listing: the instance is judged again next run.
        log.info("runner already gone; instance kept for the next run",
                 runner_id=removal.runner_id, instance_id=removal.instance_id)
    return str(outcome)


def confirm_orphan(github: GitHubClient, removal: Removal) -> str:
    """Look the runner of a suspected orphan up directly, by its id tag or else by name:
    "absent" only when GitHub answers there is none; "present" or "error" keep it."""
    try:
        if removal.lookup_runner_id is not None:
            runner = github.get_runner(removal.owner, removal.runner_type,
                                            removal.lookup_runner_id)
        else:
            runner = github.find_runner(removal.owner, removal.runner_type,
                                             str(removal.lookup_name))
    except GhrError as error:
        log.error("orphan's runner look-up failed; instance kept", owner=removal.owner,
                  instance_id=removal.instance_id, error=str(error))
        return "error"
    if runner is not None:
        # A listing left it out (GitHub's listings lag and shift): not an orphan.
        log.info("suspected orphan has a runner; instance kept", owner=removal.owner,
                 instance_id=removal.instance_id, runner_id=runner.id,
                 busy=runner.busy, status=runner.status)
        return "present"
    return "absent"
