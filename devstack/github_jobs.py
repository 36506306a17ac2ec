"""Workflow jobs of the GitHub fake and the scheduler that hands them to runners.

GitHub assigns a queued job to an idle online runner that carries every label the job asks for:
an org-scope runner serves any repository of its org, a repo-scope runner only its repository. A
job runs for its `duration`; an ephemeral runner is removed once its job completes.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

from devstack import github_render as render
from devstack.github_records import ApiError, JobRecord
from devstack.github_state import GitHubState

JOB_STATUSES = ("queued", "in_progress", "completed")


class GitHubJobs(GitHubState):
    """GitHubState plus workflow jobs and their scheduling."""

    base_url = "http://127.0.0.1"

    def add_job(
        self,
        owner: str,
        repo: str,
        labels: list[str] | tuple[str, ...],
        job_id: int | None = None,
        duration: float = 0.0,
        status: str = "queued",
        run_id: int | None = None,
    ) -> int:
        """Create a workflow job of `owner/repo` (in workflow run `run_id`, a new one by
        default); returns its id (fires `queued` when queued)."""
        if status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {JOB_STATUSES}")
        with self.lock:
            now = self.clock()
            record = JobRecord(
                id=job_id or self.counters.next("job"),
                owner=owner,
                repo=repo,
                labels=list(labels),
                duration=duration,
                status=status,
                created_at=now,
                run_id=run_id or self.counters.next("run"),
            )
            if status != "queued":
                record.started_at = now
            if status == "completed":
                record.completed_at, record.conclusion = now, "success"
            self.job_records[record.id] = record
            event = self._job_event("queued", record) if status == "queued" else None
        self._fire([event] if event else [])
        return record.id

    @property
    def jobs(self) -> dict[int, JobRecord]:
        """Copies of every job, by id."""
        with self.lock:
            return {i: dataclasses.replace(j) for i, j in self.job_records.items()}

    def job_in_repo(self, owner: str, repo: str, job_id: int) -> JobRecord:
        """Job `job_id` of `owner/repo`; ApiError 404 otherwise."""
        with self.lock:
            record = self.job_records.get(job_id)
            if record is None or record.full_repo.lower() != f"{owner}/{repo}".lower():
                raise ApiError(404, "Not Found")
            return record

    def dispatch(self, now: float | None = None) -> list[JobRecord]:
        """Start queued jobs (oldest first) on matching idle online runners; returns them."""
        events = []
        started = []
        with self.lock:
            at = self.clock() if now is None else now
            for record in sorted(self.job_records.values(), key=lambda j: (j.created_at, j.id)):
                if record.status != "queued":
                    continue
                idle = [
                    r
                    for r in sorted(self.runner_records.values(), key=lambda r: r.id)
                    if r.status == "online" and not r.busy and r.serves(record)
                ]
                if not idle:
                    continue
                runner = idle[0]
                runner.busy, runner.job_id = True, record.id
                record.status, record.started_at = "in_progress", at
                record.runner_id, record.runner_name = runner.id, runner.name
                record.runner_group_id = runner.runner_group_id
                record.runner_group_name = self.group_name(runner.scope, runner.runner_group_id)
                started.append(dataclasses.replace(record))
                events.append(self._job_event("in_progress", record))
        self._fire(events)
        return started

    def complete_due(self, now: float | None = None) -> list[JobRecord]:
        """Finish running jobs whose duration has elapsed; free or remove their runners."""
        events = []
        done = []
        with self.lock:
            at = self.clock() if now is None else now
            for record in self.job_records.values():
                if record.status != "in_progress" or record.started_at is None:
                    continue
                if at < record.started_at + record.duration:
                    continue
                record.status, record.conclusion, record.completed_at = "completed", "success", at
                runner = self.runner_records.get(record.runner_id or -1)
                if runner is not None:
                    runner.busy, runner.job_id = False, None
                    if runner.ephemeral:
                        # An ephemeral (or JIT) runner deregisters itself after its one job.
                        del self.runner_records[runner.id]
                done.append(dataclasses.replace(record))
                events.append(self._job_event("completed", record))
        self._fire(events)
        return done

    def lose_runner(self, runner_id: int, conclusion: str = "failure",
                    now: float | None = None) -> JobRecord | None:
        """The runner is gone (its instance was taken back): it goes offline, and the job it
        ran completes with `conclusion`, as GitHub reports a lost runner; returns that job."""
        if conclusion not in ("failure", "cancelled"):
            raise ValueError("a lost runner's job ends in failure or cancelled")
        events = []
        with self.lock:
            at = self.clock() if now is None else now
            runner = self.runner_records.get(runner_id)
            if runner is None:
                return None
            runner.status = "offline"
            record = self.job_records.get(runner.job_id or -1)
            runner.busy, runner.job_id = False, None
            if record is None or record.status != "in_progress":
                return None
            record.status, record.conclusion, record.completed_at = "completed", conclusion, at
            events.append(self._job_event("completed", record))
            done = dataclasses.replace(record)
        self._fire(events)
        return done

    def rerun_job(self, owner: str, repo: str, job_id: int) -> int:
        """What POST .../actions/jobs/{job_id}/rerun does: a new attempt of the job, queued in
        the same run; ApiError 403 while a job of that run is not completed, as GitHub refuses
        ("The workflow run containing this job is already running"). Returns the new job's id."""
        with self.lock:
            record = self.job_in_repo(owner, repo, job_id)
            run = [j for j in self.job_records.values()
                   if j.run_id == record.run_id and j.full_repo == record.full_repo]
            if any(j.status != "completed" for j in run):
                raise ApiError(403, "The workflow run containing this job is already running")
            attempt = max(j.run_attempt for j in run) + 1
            new_id = self.counters.next("job")
            again = JobRecord(id=new_id, owner=record.owner, repo=record.repo,
                              labels=list(record.labels), duration=record.duration,
                              status="queued", created_at=self.clock(), run_id=record.run_id,
                              run_attempt=attempt, rerun_of=record.id)
            self.job_records[new_id] = again
            event = self._job_event("queued", again)
        self._fire([event])
        return new_id

    def workflow_job_payload(self, action: str, job_id: int) -> dict[str, Any]:
        """The body of the `workflow_job` webhook GitHub would send for this job and action."""
        with self.lock:
            record = self.job_records[job_id]
            installation = self.installation_for(record.owner)
            payload = self._job_payload(action, record)
            payload["repository"] = {
                "id": zlib.crc32(record.full_repo.lower().encode()),
                "name": record.repo,
                "full_name": record.full_repo,
                "private": True,
                "owner": {
                    "login": record.owner,
                    "type": installation.account_type if installation else "Organization",
                },
            }
            if installation is not None:
                payload["installation"] = {"id": installation.id}
            return payload

    def _job_payload(self, action: str, record: JobRecord) -> dict[str, Any]:
        return {
            "action": action,
            "workflow_job": render.job(record, self.base_url, self.base_url + "/api/v3"),
        }

    def _job_event(self, action: str, record: JobRecord) -> tuple[str, dict[str, Any]]:
        return action, render.job(record, self.base_url, self.base_url + "/api/v3")

    def _fire(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        # Outside the lock: a hook may call back into the fake (e.g. post a webhook that reads it).
        hook = self.on_job_event
        if hook is None:
            return
        for action, job in events:
            hook(action, job)
