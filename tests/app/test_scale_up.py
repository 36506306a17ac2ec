"""scale_up through chalice's test client against devstack: batches, owners, queued check, cap.

Issue 4 points 1 to 4 and 7; Guarantees 1 and 3; RELIABILITY R-Q-01, R-UP-01/04/05, BI-01/02.
"""

from __future__ import annotations

import json
from typing import Any

from scale_up_support import ORG, REPO, ScaleUpHarness, job_body, scale_up, tags_of

from chalicelib import metrics

__all__ = ["scale_up"]

ORG_RUNNERS = {"ENABLE_ORGANIZATION_RUNNERS": "true"}


def add_jobs(harness: ScaleUpHarness, n: int, owner: str = ORG, repo: str = REPO,
             status: str = "queued") -> list[int]:
    return [harness.stack.github.add_job(owner, repo, ["self-hosted"], status=status)
            for _ in range(n)]


def launch_existing(harness: ScaleUpHarness, n: int, owner: str = ORG,
                    runner_type: str = "Org", environment: str = "devstack") -> None:
    tags = [{"Key": "ghr:Application", "Value": "github-action-runner"},
            {"Key": "ghr:environment", "Value": environment},
            {"Key": "ghr:Owner", "Value": owner}, {"Key": "ghr:Type", "Value": runner_type}]
    harness.stack.boto("ec2").run_instances(
        MinCount=n, MaxCount=n, LaunchTemplate={
            "LaunchTemplateName": harness.stack.deployment.launch_template_name},
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])


def test_org_runners_launch_one_tagged_instance_per_queued_job(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="5")
    jobs = add_jobs(scale_up, 2)

    outcome = scale_up.invoke(*(job_body(j) for j in jobs))

    assert outcome.failures == []
    instances = scale_up.instances()
    assert len(instances) == 2
    assert all({k: v for k, v in tags_of(i).items() if k != "ghr:reservation"} == {
        "ghr:Application": "github-action-runner", "ghr:environment": "devstack",
        "ghr:Type": "Org", "ghr:Owner": ORG, "ghr:created_by": "scale-up-lambda"}
               for i in instances)
    # Both were launched under one cap reservation, which the tag ties them to.
    assert len({tags_of(i)["ghr:reservation"] for i in instances}) == 1
    assert all(scale_up.token_value(i["InstanceId"]) for i in instances)


def test_repo_runners_are_owned_by_owner_slash_repo(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="false")
    jobs = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(jobs[0]))

    assert outcome.failures == []
    [instance] = scale_up.instances()
    assert tags_of(instance)["ghr:Owner"] == f"{ORG}/{REPO}"
    assert tags_of(instance)["ghr:Type"] == "Repo"
    value = scale_up.token_value(instance["InstanceId"]) or ""
    assert f"/{ORG}/{REPO} --token " in value and "--runnergroup" not in value


def test_two_owners_in_one_batch_get_two_fleets(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS)
    scale_up.stack.github.add_installation("beta")
    acme, beta = add_jobs(scale_up, 2), add_jobs(scale_up, 1, owner="beta")

    outcome = scale_up.invoke(job_body(acme[0]), job_body(beta[0], owner="beta"),
                              job_body(acme[1]))

    assert outcome.failures == []
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 2
    assert len(scale_up.instances(ORG)) == 2 and len(scale_up.instances("beta")) == 1
    plans = {line["owner"]: line for line in outcome.lines("scale-up plan")}
    assert plans[ORG]["launching"] == 2 and plans["beta"]["launching"] == 1


def test_user_owned_repository_with_org_runners_is_dropped_with_a_reason(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS)
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(job, owner_type="User"))

    assert outcome.failures == []
    assert scale_up.instances() == []
    [line] = outcome.lines("message dropped")
    assert line["message_id"] == "msg-0" and "user-owned" in line["reason"]


def test_queued_check_consumes_jobs_no_longer_queued(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, ENABLE_JOB_QUEUED_CHECK="true")
    [started] = add_jobs(scale_up, 1, status="in_progress")
    [queued] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(started), job_body(queued))

    assert outcome.failures == []
    assert len(scale_up.instances()) == 1
    [line] = outcome.lines("message dropped")
    assert line["job_id"] == started and line["status"] == "in_progress"


def test_queued_check_off_launches_without_asking_github(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, ENABLE_JOB_QUEUED_CHECK="false")
    [started] = add_jobs(scale_up, 1, status="completed")

    scale_up.invoke(job_body(started))

    assert len(scale_up.instances()) == 1
    assert scale_up.stack.github.count(route="GET /repos/{owner}/{repo}/actions/jobs/{job_id}") == 0


def test_github_5xx_during_queued_check_assumes_queued_and_launches(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, ENABLE_JOB_QUEUED_CHECK="true")
    [job] = add_jobs(scale_up, 1)
    scale_up.stack.github.fail_next("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", n=10,
                                    status=502)

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == []
    assert len(scale_up.instances()) == 1
    assert outcome.lines("queued check failed; assuming queued")


def test_cap_counts_pre_existing_instances_of_the_owner_only(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="3")
    launch_existing(scale_up, 2)
    launch_existing(scale_up, 2, owner="beta")  # another owner: not counted
    launch_existing(scale_up, 2, environment="other")  # another environment: not counted
    jobs = add_jobs(scale_up, 3)

    outcome = scale_up.invoke(*(job_body(j) for j in jobs))

    # Reuse runners: the two jobs over the cap are left to the running runners.
    assert outcome.failures == []
    assert len(scale_up.instances(ORG)) == 3  # 2 existing + 1 new
    [plan] = outcome.lines("scale-up plan")
    assert (plan["queued"], plan["current"], plan["cap"], plan["launching"]) == (3, 2, 3, 1)


def test_many_owners_share_one_count_and_each_keeps_its_own_cap(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="2", ENABLE_EPHEMERAL_RUNNERS="true",
                       ENABLE_JIT_CONFIG="false")
    scale_up.stack.github.add_installation("beta")
    launch_existing(scale_up, 2)  # acme is at its cap, beta is empty
    before = scale_up.stack.aws_faults.count("ec2", "DescribeInstances")
    acme, beta = add_jobs(scale_up, 1), add_jobs(scale_up, 3, owner="beta")

    outcome = scale_up.invoke(job_body(acme[0]), *(job_body(j, owner="beta") for j in beta))

    assert scale_up.stack.aws_faults.count("ec2", "DescribeInstances") == before + 1
    assert outcome.failures == ["msg-0", "msg-3"]
    assert len(scale_up.instances(ORG)) == 2 and len(scale_up.instances("beta")) == 2


def test_ephemeral_jobs_over_the_cap_are_returned_for_retry(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="2", ENABLE_EPHEMERAL_RUNNERS="true",
                       ENABLE_JIT_CONFIG="false")
    jobs = add_jobs(scale_up, 4)

    outcome = scale_up.invoke(*(job_body(j) for j in jobs))

    assert outcome.failures == ["msg-2", "msg-3"]
    assert len(scale_up.instances()) == 2


def test_already_over_the_cap_launches_nothing(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="1", ENABLE_EPHEMERAL_RUNNERS="true")
    launch_existing(scale_up, 2)
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == ["msg-0"]
    assert scale_up.stack.aws_faults.count("ec2", "CreateFleet") == 0


def test_no_cap_skips_describe_instances(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="-1")
    launch_existing(scale_up, 5)
    before = scale_up.stack.aws_faults.count("ec2", "DescribeInstances")
    jobs = add_jobs(scale_up, 3)

    outcome = scale_up.invoke(*(job_body(j) for j in jobs))

    assert outcome.failures == []
    assert scale_up.stack.aws_faults.count("ec2", "DescribeInstances") == before
    assert len(scale_up.instances(ORG)) == 8


def test_malformed_records_are_retried_and_do_not_block_the_batch(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS)
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke("{oops", job_body(job), json.dumps({"id": "x"}))

    assert outcome.failures == ["msg-0", "msg-2"]
    assert len(scale_up.instances()) == 1
    lines = outcome.lines("malformed message")
    assert [line["message_id"] for line in lines] == ["msg-0", "msg-2"]
    assert lines[0]["problems"][0].startswith("not JSON")


def test_a_failing_owner_is_retried_while_the_other_launches(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS)
    [job] = add_jobs(scale_up, 1)
    # The App is not installed on "ghost": its installation cannot be found.
    outcome = scale_up.invoke(job_body(job), job_body(99, owner="ghost"))

    assert outcome.failures == ["msg-1"]
    assert len(scale_up.instances(ORG)) == 1
    [line] = outcome.lines("scale-up group failed")
    assert line["owner"] == "ghost"


def test_configuration_error_returns_every_message(scale_up: ScaleUpHarness) -> None:
    scale_up.unset("LAUNCH_TEMPLATE_NAME")

    outcome = scale_up.invoke(job_body(1), job_body(2))

    assert outcome.failures == ["msg-0", "msg-1"]
    [line] = outcome.lines("configuration error")
    assert any("LAUNCH_TEMPLATE_NAME" in problem for problem in line["problems"])


def test_duplicate_job_in_a_batch_launches_once(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS)
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(job), job_body(job))

    assert outcome.failures == []
    assert len(scale_up.instances()) == 1


def test_metrics_count_received_dropped_launched_and_retried(
        scale_up: ScaleUpHarness, capsys: Any) -> None:
    scale_up.configure(**ORG_RUNNERS, ENABLE_JOB_QUEUED_CHECK="true")
    [done] = add_jobs(scale_up, 1, status="completed")
    [queued] = add_jobs(scale_up, 1)
    metrics.pending()  # nothing left over from other tests matters: flush prints and clears

    scale_up.invoke(job_body(done), job_body(queued), "{oops")

    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith('{"_aws"')]
    values: dict[str, float] = {}
    for document in printed:
        name = document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
        value = document[name]
        values[name] = values.get(name, 0) + (sum(value) if isinstance(value, list) else value)
    assert values["JobsReceived"] == 2
    assert values["JobsDropped"] == 1
    assert values["RunnersLaunched"] == 1
    assert values["MessagesMalformed"] == 1
    assert values["JobsRetried"] == 1


def test_reuse_jobs_over_a_cap_held_by_instances_that_never_registered_are_retried(
        scale_up: ScaleUpHarness) -> None:
    # Two instances past their boot time with no runner: nobody would ever take the job.
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="2",
                       RUNNER_BOOT_TIME_IN_MINUTES="0.0001")
    launch_existing(scale_up, 2)
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == ["msg-0"]
    assert outcome.lines("message dropped") == []


def test_reuse_jobs_over_the_cap_are_left_to_a_registered_runner(
        scale_up: ScaleUpHarness) -> None:
    scale_up.configure(**ORG_RUNNERS, RUNNERS_MAXIMUM_COUNT="2",
                       RUNNER_BOOT_TIME_IN_MINUTES="0.0001")
    launch_existing(scale_up, 2)
    registered = scale_up.instances(ORG)[0]["InstanceId"]
    scale_up.stack.github.create_runner(ORG, registered, [], 1, ephemeral=False, jit=False)
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(job))

    assert outcome.failures == []
    [dropped] = outcome.lines("message dropped")
    assert dropped["reason"] == "over the cap; a running reuse runner will take the job"
