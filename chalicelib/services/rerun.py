"""Re-running jobs lost to spot interruptions (docs/REFERENCE.md §9, §7).

The webhook records from each `in_progress` delivery which job this deployment's runner runs
(`run#<runner name>`, a day). On `completed` with conclusion `failure` or `cancelled` whose runner
was on an instance ec2_events recorded as interrupted (`interrupted#<ENVIRONMENT>`), it claims
the job (`rerun#<ENVIRONMENT>` / `<owner/repo>#<job id>`, a conditional write: at most once per
job) and asks GitHub to re-run it, within a few seconds (GitHub gives a delivery 10). GitHub
refuses a re-run while the job's workflow run is still going (403 "... already running"): the
claim then stays pending and each scale-down run asks again, for six hours. A 403 for another
reason means the App lacks `actions: write`: logged once per container with that advice, and the
claim is closed, never asked again. Nothing here fails a delivery: every error is logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib import metrics
from chalicelib.aws.state import StateTable
from chalicelib.errors import GhrError
from chalicelib.logs import get_logger
from chalicelib.models import RunnerType
from chalicelib.rules import reruns
from chalicelib.rules.reruns import JobRun
from chalicelib.settings import Settings

if TYPE_CHECKING:
    # The webhook imports this module: GitHub's client (requests, the App key's crypto) is
    # imported on the first re-run only, not on every cold start.
    from chalicelib.github.client import GitHubClient, RerunOutcome

log = get_logger(__name__)

# The webhook's budget for the re-run call (the App key, a token, the POST, their retries).
WEBHOOK_SECONDS = 4.0
# Claims asked again per scale-down run, at most.
MAX_RETRIES_PER_RUN = 50
ADVICE = ("the GitHub App needs the repository permission `actions: write` to re-run jobs "
          "(docs/DEPLOY.md); interrupted jobs are not re-run until it has it")
_advised: set[str] = set()


def _state_of(outcome: str) -> str:
    """The claim's state after an answer: pending while the run goes on or GitHub did not
    answer, closed otherwise."""
    return {"requested": reruns.REQUESTED, "run_in_progress": reruns.PENDING,
            "unanswered": reruns.PENDING}.get(outcome, reruns.REFUSED)


class Reruns:
    """The webhook's part: bindings on `in_progress`, claims and re-runs on `completed`."""

    def __init__(self, settings: Settings, table: StateTable,
                 github: Callable[[], GitHubClient],
                 clock: Callable[[], float] = time.time, prefixes: Sequence[str] = ()) -> None:
        self.settings = settings
        self.table = table
        self.github = github
        self.clock = clock
        # The runner name prefix of every runner configuration (§6).
        self.prefixes = tuple(dict.fromkeys(prefixes)) or (settings.runner_name_prefix,)

    def instance_of(self, run: JobRun) -> str | None:
        """The instance id in the name of the job's runner, if one of ours ran it."""
        return next((found for found in (reruns.ours(run, p) for p in self.prefixes) if found),
                    None)

    def observe(self, action: str, payload: Mapping[str, Any]) -> None:
        """Act on a `workflow_job` delivery that is not `queued`; never raises."""
        run = reruns.job_run(payload)
        if run is None or self.instance_of(run) is None:
            return
        try:
            if action == "in_progress":
                self.bind(run)
            elif action == "completed" and reruns.lost(run):
                self.consider(run)
        except GhrError as error:
            log.warning("re-run bookkeeping failed", action=action, job_id=run.job_id,
                        runner_name=run.runner_name, error=str(error))
        except Exception:
            # A bug here must not cost GitHub's delivery (it would count as failed).
            log.error("re-run bookkeeping failed unexpectedly", exc_info=True, action=action,
                      job_id=run.job_id)

    def bind(self, run: JobRun) -> None:
        """Remember which job the runner runs, for a day."""
        now = int(self.clock())
        self.table.put(*reruns.binding_key(run.runner_name),
                       {"repository": run.repository, "jobId": run.job_id, "runId": run.run_id,
                        "installationId": run.installation_id, "startedAt": now},
                       expires_at=now + reruns.RECORD_SECONDS)

    def consider(self, run: JobRun) -> None:
        """A failed or cancelled job of ours: re-run it once if its instance was interrupted."""
        instance_id = self.instance_of(run)
        assert instance_id is not None
        environment = self.settings.environment
        if self.table.get(*reruns.interrupted_key(environment, instance_id)) is None:
            return
        now = int(self.clock())
        claimed = self.table.put_new(
            *reruns.claim_key(environment, run.repository, run.job_id),
            {"repository": run.repository, "jobId": run.job_id, "runId": run.run_id,
             "installationId": run.installation_id, "runnerName": run.runner_name,
             "instanceId": instance_id, "claimedAt": now, "state": reruns.PENDING,
             "attempts": 0},
            expires_at=now + reruns.RECORD_SECONDS, now=now)
        if not claimed:
            log.info("interrupted job claimed already", repository=run.repository,
                     job_id=run.job_id)
            return
        log.info("interrupted job lost", repository=run.repository, job_id=run.job_id,
                 conclusion=run.conclusion, runner_name=run.runner_name,
                 instance_id=instance_id)
        metrics.put("InterruptedJobsLost", 1)
        from chalicelib.github.http import DEADLINE_MARGIN_SECONDS

        github = self.github()
        github.set_deadline(WEBHOOK_SECONDS + DEADLINE_MARGIN_SECONDS)
        request_rerun(self.table, github, self.settings, run.repository, run.job_id,
                      run.installation_id, attempts=0)


def request_rerun(table: StateTable, github: GitHubClient, settings: Settings,
                  repository: str, job_id: int, installation_id: int, attempts: int) -> str:
    """Ask GitHub to re-run the claimed job and record the claim's new state; the state.
    GitHub not answering leaves the claim pending (scale-down asks again)."""
    runner_type: RunnerType = "Org" if settings.enable_organization_runners else "Repo"
    outcome: RerunOutcome | str
    try:
        outcome = github.rerun_job(repository, job_id, installation_id, runner_type)
    except GhrError as error:
        log.warning("job re-run not asked; left to scale-down", repository=repository,
                    job_id=job_id, error=str(error))
        outcome = "unanswered"  # the claim stays pending
    state = _state_of(outcome)
    if outcome == "forbidden":
        if repository.split("/")[0].lower() not in _advised:
            _advised.add(repository.split("/")[0].lower())
            log.error("job re-run forbidden", repository=repository, job_id=job_id,
                      advice=ADVICE)
        else:
            log.info("job re-run forbidden", repository=repository, job_id=job_id)
    metrics.put("JobReruns", 1, outcome=outcome)
    key = reruns.claim_key(settings.environment, repository, job_id)
    table.update(*key, "SET #state = :state, attempts = :attempts, outcome = :outcome",
                 values={":state": state, ":attempts": attempts + 1, ":outcome": outcome},
                 names={"#state": "state"})
    return state


def retry_pending(table: StateTable, github: GitHubClient, settings: Settings,
                  now: float) -> dict[str, int]:
    """Scale-down's part: ask again for every pending re-run of the last six hours (one Query
    of the deployment's claims); close the older ones. Never raises; counts by new state."""
    done: dict[str, int] = {}
    try:
        claims = table.query(f"rerun#{settings.environment}")
    except GhrError as error:
        log.warning("re-run claims unreadable; next run", error=str(error))
        return done
    for claim in claims[:MAX_RETRIES_PER_RUN * 4]:
        verdict = reruns.due(claim, now)
        if verdict is None or sum(done.values()) >= MAX_RETRIES_PER_RUN:
            continue
        try:
            state = _retry_one(table, github, settings, claim, verdict)
        except GhrError as error:
            log.warning("re-run retry failed", sort_key=claim.get("sk"), error=str(error))
            continue
        done[state] = done.get(state, 0) + 1
    if done:
        log.info("pending re-runs asked again", **done)
    return done


def _retry_one(table: StateTable, github: GitHubClient, settings: Settings,
               claim: Mapping[str, Any], verdict: str) -> str:
    repository, job_id = str(claim.get("repository")), int(claim.get("jobId") or 0)
    if verdict == "expire":
        log.warning("job re-run given up: the run was still going after six hours",
                    repository=repository, job_id=job_id)
        table.update(str(claim["pk"]), str(claim["sk"]), "SET #state = :state",
                     values={":state": reruns.EXPIRED}, names={"#state": "state"})
        return reruns.EXPIRED
    return request_rerun(table, github, settings, repository, job_id,
                         int(claim.get("installationId") or 0),
                         int(claim.get("attempts") or 0))
