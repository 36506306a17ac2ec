"""Jobs launched for at most once per attempt across containers (docs/REFERENCE.md §7).

A claim is an item `job#<owner/repo>#<job id>` / `attempt#<retry counter>`, written in the same
transaction as the cap reservation of the launch it belongs to, so a job is claimed exactly
when capacity is reserved for it. A launch that does not give the job a runner (the fleet fell
short, the instance was terminated again) deletes the claim, so the retried message launches.
Claims live a day: a delivery repeated later than that is a new job's business again.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.aws.state import StateTable, Write
from chalicelib.errors import GhrError
from chalicelib.logs import get_logger
from chalicelib.messages import JobMessage

log = get_logger(__name__)

CLAIM_SECONDS = 86400
# TransactWriteItems takes at most 100 writes; a group is at most a batch (10) plus the cap.
MAX_WRITES = 100


def claim_key(job: JobMessage) -> tuple[str, str]:
    """The item of one attempt at `job` (repository names compare case-insensitively)."""
    return f"job#{job.full_repo.lower()}#{job.id}", f"attempt#{job.retry_counter}"


def claim_writes(jobs: Sequence[JobMessage], now: int, by: str) -> list[Write]:
    """The conditional puts claiming `jobs` (an expired claim counts as none)."""
    writes = []
    for job in jobs:
        pk, sk = claim_key(job)
        writes.append(Write(pk, sk, item={"messageId": job.message_id, "by": by,
                                          "expiresAt": now + CLAIM_SECONDS},
                            condition="attribute_not_exists(pk) OR #ttl <= :now",
                            names={"#ttl": "expiresAt"}, values={":now": now}))
    return writes


def release_claims(table: StateTable, jobs: Sequence[JobMessage]) -> None:
    """Delete the claims of jobs that got no runner, so their retried messages launch.

    Should this fail, the retried message finds the claim and is dropped as launched before:
    the error is logged with the job ids so that an operator can re-run those jobs.
    """
    for start in range(0, len(jobs), MAX_WRITES):
        chunk = jobs[start:start + MAX_WRITES]
        try:
            table.transact([Write(*claim_key(job), kind="delete") for job in chunk])
        except GhrError as error:
            log.error("job claims not released; their retries will be dropped",
                      job_ids=[job.id for job in chunk], error=str(error))
