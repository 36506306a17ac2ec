"""Job retry in scale-up (docs/REFERENCE.md §8): each message consumed as queued goes back to
the build queue, delayed, with its next `retryCounter`; a message that comes back is launched
for again only when GitHub still reports its job queued.

Sending back happens after the launch, once per owner's group (one SendMessageBatch for up to
ten messages). When it fails, the retry is lost and said so (an error line and the metric
`JobRetriesNotSent`), and the message is not returned for retry: its redelivered copy would be
dropped at its claim (a runner was launched for it already, §7) without sending anything
either, and sending from that path would multiply the retries of every duplicate delivery.
The job itself was launched for; what is lost is only the second chance.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib import metrics
from chalicelib.aws.sqs import BuildQueue
from chalicelib.errors import GhrError
from chalicelib.github.client import GitHubClient
from chalicelib.logs import get_logger
from chalicelib.messages import JobMessage
from chalicelib.models import RunnerType
from chalicelib.rules.job_retry import JobRetryConfig, RetrySend, plan_retries

log = get_logger(__name__)


class JobRetries:
    """The retries of one scale-up invocation: its configuration and the build queue."""

    def __init__(self, config: JobRetryConfig, queue: BuildQueue | None) -> None:
        self.config = config
        self.queue = queue

    def send_back(self, owner: str, jobs: Sequence[JobMessage]) -> None:
        """Send `jobs` (consumed as queued) back with their next counter, while it is within
        maxAttempts; failures are logged and counted, never raised."""
        sends = plan_retries(jobs, self.config)
        if not sends or self.queue is None:
            return
        failed = self._send(sends)
        if failed:
            # Entries SQS refused one by one (throttled, a passing fault): once more.
            failed = self._send(failed)
        sent = len(sends) - len(failed)
        if sent:
            log.info("job retries sent", owner=owner, count=sent,
                     job_ids=[s.job.id for s in sends if s not in failed],
                     retry_counters=sorted({s.job.retry_counter for s in sends}),
                     delays=sorted({s.delay for s in sends}))
            metrics.put("JobRetriesSent", sent)
        if failed:
            log.error("job retries not sent; these jobs get no second chance", owner=owner,
                      job_ids=[s.job.id for s in failed])
            metrics.put("JobRetriesNotSent", len(failed))

    def _send(self, sends: Sequence[RetrySend]) -> list[RetrySend]:
        """The sends that did not go: refused entries, or all of them when the call failed."""
        assert self.queue is not None
        try:
            refused = self.queue.send_batch([(s.job, s.delay) for s in sends])
        except GhrError as error:
            log.warning("job retry send failed", error=str(error), count=len(sends))
            return list(sends)
        return [sends[i] for i in refused]


def retried_status(github: GitHubClient, job: JobMessage, runner_type: RunnerType) -> str | None:
    """GitHub's status of a retried job (`retryCounter` set), asked whatever
    ENABLE_JOB_QUEUED_CHECK says; None when GitHub does not answer (the record is retried)."""
    try:
        return github.job_status(job.full_repo, job.id, job.installation_id, runner_type)
    except GhrError as error:
        log.warning("retried job's status unknown; message retried", job_id=job.id,
                    repository=job.full_repo, retry_counter=job.retry_counter, error=str(error))
        return None
