"""Lost jobs (docs/REFERENCE.md §8, §9): the calls job retry and the re-run path add per 100 jobs.

Job retry: 100 queued jobs of one org through scale_up with JOB_RETRY_CONFIG on (reuse runners,
queued check on, no cap), warm container. Every consumed message goes back; then the delay has
elapsed, 90 of the jobs have started meanwhile, and the 100 retried messages come back through
scale_up: GitHub is asked once per job and the 10 still queued are launched for again. Counted
apart: what the first pass adds (SendMessageBatch) and what the retried pass costs.

Re-run: 100 jobs' `in_progress` and `completed` deliveries through the webhook with
ENABLE_SPOT_INTERRUPTION_RERUN on, 10 of them on runners whose instance was interrupted (the
record ec2_events writes) and completed `failure`; against the same deliveries with it off.
The webhook's GitHub client is cold (a webhook container has none until its first re-run).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from typing import Any

from bench.common import Figures
from bench.scale_up import BATCH, ORG, _record, _runners
from bench.stack import function_environment, lambda_client, shared_devstack

N = 100
STILL_QUEUED = 10


def _drain(client: Any, bodies: list[str], prefix: str) -> int:
    """Feed `bodies` to scale_up in batches of 10; the records returned for retry."""
    retried = 0
    for start in range(0, len(bodies), BATCH):
        chunk = bodies[start:start + BATCH]
        event = {"Records": [{**_record(start + n, json.loads(body), 1),
                              "messageId": f"{prefix}-{start + n}"}
                             for n, body in enumerate(chunk)]}
        retried += len(client.lambda_.invoke("scale_up", event).payload["batchItemFailures"])
    return retried


def _counts(stack: Any) -> tuple[int, Counter[str], int]:
    """GitHub calls, AWS calls by action and their total since the last reset."""
    aws = Counter(f"{service} {action}" for (service, action), n in
                  stack.aws_faults.calls.items() for _ in range(n))
    return len(stack.github.requests), aws, sum(aws.values())


def _reset_counts(stack: Any) -> None:
    stack.aws_faults.reset()
    stack.github.clear_log()


def bench_job_retry(n: int = N, still_queued: int = STILL_QUEUED) -> Figures:
    """GitHub and AWS calls job retry adds to `n` jobs, `still_queued` of them still waiting
    when the delay has elapsed."""
    stack = shared_devstack()
    stack.reset()
    stack.deploy()
    fake = stack.github
    installation = fake.add_installation(ORG)
    jobs = [fake.add_job(ORG, "app", ["self-hosted", "linux"]) for _ in range(n)]
    bodies = [json.dumps({"id": job, "eventType": "workflow_job", "repositoryName": "app",
                          "repositoryOwner": ORG, "installationId": installation,
                          "repoOwnerType": "Organization", "labels": ["self-hosted", "linux"]})
              for job in jobs]
    sent: list[str] = []
    env = {"ENABLE_ORGANIZATION_RUNNERS": "true", "RUNNERS_MAXIMUM_COUNT": "-1",
           "ENABLE_JOB_QUEUED_CHECK": "true", "JOB_RETRY_CONFIG": '{"delayInSeconds": 300}'}
    with function_environment(stack, **env), lambda_client() as client, \
            contextlib.redirect_stdout(io.StringIO()):
        from chalicelib import wiring

        wiring.aws("sqs").meta.events.register(
            "provide-client-params.sqs.SendMessageBatch",
            lambda params, **_: sent.extend(e["MessageBody"] for e in params["Entries"]))
        wiring.github("scale_up").installation_token(ORG, "Org", installation)
        _reset_counts(stack)
        first_retried = _drain(client, bodies, "msg")
        _, first_aws, _ = _counts(stack)
        for job in jobs[still_queued:]:
            fake.job_records[job].status = "in_progress"  # started meanwhile
        launched_first = _runners(stack)
        _reset_counts(stack)
        second_retried = _drain(client, sent, "retry")
        github, aws, aws_total = _counts(stack)
    routes = Counter(r.route for r in fake.requests)
    return {
        "config": f"reuse, queued check on, no cap, {n} jobs of one org, delayInSeconds 300, "
                  f"{still_queued} still queued after the delay",
        "retry_messages_sent": len(sent),
        "send_back_calls_first_pass": first_aws["sqs SendMessageBatch"],
        "github_calls_added_per_100_jobs": round(github * 100 / n, 1),
        "aws_calls_added_per_100_jobs": round(
            (aws_total + first_aws["sqs SendMessageBatch"]) * 100 / n, 1),
        "runners_first_pass": launched_first,
        "runners_launched_again": _runners(stack) - launched_first,
        "records_retried": first_retried + second_retried,
        "github_calls_by_route": ", ".join(f"{r}={c}" for r, c in sorted(routes.items())),
        "aws_calls_by_action": ", ".join(f"{a}={c}" for a, c in sorted(aws.items())),
    }


def _deliveries(client: Any, stack: Any, jobs: list[int]) -> None:
    from chalicelib.rules.signature import sign

    secret = stack.deployment.webhook_secret
    for action in ("in_progress", "completed"):
        for job in jobs:
            body = json.dumps(stack.github.workflow_job_payload(action, job)).encode()
            headers = {"Content-Type": "application/json", "X-GitHub-Event": "workflow_job",
                       "X-GitHub-Delivery": f"{action}-{job}",
                       "X-Hub-Signature-256": sign(secret, body)}
            assert client.http.post("/webhook", headers=headers, body=body).status_code == 200


def _rerun_pass(n: int, interrupted: int, enabled: bool) -> tuple[int, Counter[str], int]:
    """`n` jobs' deliveries, `interrupted` of them lost with an interrupted instance."""
    stack = shared_devstack()
    stack.reset()
    stack.deploy()
    fake = stack.github
    fake.add_installation(ORG)
    jobs = [fake.add_job(ORG, "app", ["self-hosted"], status="completed") for _ in range(n)]
    table = stack.boto("dynamodb")
    for index, job in enumerate(jobs):
        record = fake.job_records[job]
        record.runner_name = f"i-{index + 1:017x}"
        if index < interrupted:
            record.conclusion = "failure"
            table.put_item(TableName=stack.deployment.state_table, Item={
                "pk": {"S": f"interrupted#{stack.deployment.environment}"},
                "sk": {"S": record.runner_name}, "since": {"S": "2027-01-15T08:00:00Z"},
                "expiresAt": {"N": "4102444800"}})
    env = {"ENABLE_ORGANIZATION_RUNNERS": "true",
           "ENABLE_SPOT_INTERRUPTION_RERUN": "true" if enabled else "false"}
    with function_environment(stack, **env), lambda_client() as client, \
            contextlib.redirect_stdout(io.StringIO()):
        _reset_counts(stack)
        _deliveries(client, stack, jobs)
        return _counts(stack)


def bench_rerun(n: int = N, interrupted: int = STILL_QUEUED) -> Figures:
    """GitHub and AWS calls the re-run path adds to `n` jobs' deliveries, `interrupted` of
    them lost with their interrupted instance."""
    github_off, aws_off, total_off = _rerun_pass(n, interrupted, enabled=False)
    github_on, aws_on, total_on = _rerun_pass(n, interrupted, enabled=True)
    routes = Counter(r.route for r in shared_devstack().github.requests)
    added = aws_on - aws_off
    return {
        "config": f"{n} jobs' in_progress and completed deliveries, {interrupted} lost with "
                  "an interrupted instance; cold webhook container",
        "reruns_asked": routes["POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun"],
        "github_calls_added_per_100_jobs": round((github_on - github_off) * 100 / n, 1),
        "aws_calls_added_per_100_jobs": round((total_on - total_off) * 100 / n, 1),
        "github_calls_by_route": ", ".join(f"{r}={c}" for r, c in sorted(routes.items())),
        "aws_calls_added_by_action": ", ".join(f"{a}={c}" for a, c in sorted(added.items())),
    }
