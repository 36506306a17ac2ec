"""Several runner configurations (docs/REFERENCE.md §6) in scale_down, adjust_pool and
ec2_events, through `chalice.test.Client` against devstack."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from chalice.test import Client
from ec2_events_support import Harness, ghr
from multi_runner_support import config, use_configs
from scale_down_support import STAGE, invoke_scale_down, later, launch, register, states

from app import app
from chalicelib.services import scale_down
from devstack.spot import WARNING, ec2_event

__all__ = ["ghr"]

ORG = "acme"
AUTH_ROUTES = ("POST /app/installations/{installation_id}/access_tokens",
               "GET /orgs/{org}/installation")
DELETE = "DELETE /orgs/{org}/actions/runners/{runner_id}"
LIST = "GET /orgs/{org}/actions/runners"
ALWAYS_KEEP_ONE = '[{"cron": "* * * * *", "timeZone": "UTC", "idleCount": 1}]'


@pytest.fixture(autouse=True)
def org_runners(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_ORGANIZATION_RUNNERS", "true")


def world(stack: Any, environment: str, idle: int, busy: int, prefix: str = "") -> tuple[
        list[str], list[str]]:
    """Instances of `environment` with registered runners: (idle ids, busy ids)."""
    idle_ids = launch(stack, count=idle, environment=environment) if idle else []
    busy_ids = launch(stack, count=busy, environment=environment) if busy else []
    for instance_id in idle_ids:
        register(stack, instance_id, prefix=prefix)
    for instance_id in busy_ids:
        register(stack, instance_id, busy=True, prefix=prefix)
    return idle_ids, busy_ids


def test_scale_down_covers_every_configuration_with_one_listing_per_owner(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(stack, monkeypatch, [
        config("a"), config("b", SCALE_DOWN_CONFIG=ALWAYS_KEEP_ONE),
        config("c", RUNNER_NAME_PREFIX="c-")])
    monkeypatch.setattr(scale_down, "utcnow", lambda: later(10))
    idle_a, busy_a = world(stack, "devstack-a", 2, 2)
    idle_b, busy_b = world(stack, "devstack-b", 2, 2)
    idle_c, busy_c = world(stack, "devstack-c", 2, 2, prefix="c-")
    # Launched before the list existed: the top-level environment is still scaled down.
    idle_top, _ = world(stack, "devstack", 1, 0)
    # A runner whose instance (of configuration a) was terminated out of band: a ghost, which
    # every scope sharing the empty prefix finds, deregistered once.
    [gone] = launch(stack, environment="devstack-a")
    ghost = register(stack, gone, status="offline")
    stack.boto("ec2").terminate_instances(InstanceIds=[gone])
    # A token of a live instance of configuration c is kept; one of no instance goes.
    ssm, path = stack.boto("ssm"), stack.deployment.token_path
    ssm.put_parameter(Name=f"{path}/{busy_c[0]}", Value="x", Type="SecureString")
    ssm.put_parameter(Name=f"{path}/i-0123456789abcdef0", Value="x", Type="SecureString")
    stack.aws_faults.reset()
    stack.github.clear_log()

    invoke_scale_down()
    github = Counter(r.route for r in stack.github.requests if r.route not in AUTH_ROUTES)
    aws = Counter({action: n for (_, action), n in stack.aws_faults.calls.items()})

    removed = idle_a + idle_c + idle_top
    assert set(states(stack, removed).values()) == {"terminated"}
    # b keeps one idle runner (its own idle window); every busy one stays.
    assert sorted(states(stack, idle_b).values()) == ["running", "terminated"]
    assert set(states(stack, busy_a + busy_b + busy_c).values()) == {"running"}
    assert ghost not in {r.id for r in stack.github.runners(ORG)}
    names = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
    assert f"{path}/{busy_c[0]}" in names and f"{path}/i-0123456789abcdef0" not in names
    # GitHub: the owner listed once (as for one configuration), one DELETE per removal: 5
    # idle runners (b keeps one), the top-level one, the ghost (found by three scopes).
    assert github == {LIST: 1, DELETE: len(removed) + 1 + 1}
    # AWS: one DescribeInstances of every environment, one TerminateInstances, the tokens'
    # listing and deletion, the configuration list's look (at most once a minute): 5. Beside
    # them, the cold container's read of the App key, and the Query of pending re-runs that
    # every run makes with ENABLE_SPOT_INTERRUPTION_RERUN on (§9), one configuration or many.
    assert aws == {"DescribeInstances": 1, "TerminateInstances": 1, "DescribeParameters": 1,
                   "DeleteParameters": 1, "GetParameter": 1, "GetParameters": 1, "Query": 1}


def test_scale_down_with_a_bad_list_fails_the_run_and_removes_nothing(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(stack, monkeypatch, [config("a", RUNNERS_MAXIMUM_COUNT="-5")])
    monkeypatch.setattr(scale_down, "utcnow", lambda: later(10))
    idle, _ = world(stack, "devstack-a", 1, 0)
    with pytest.raises(Exception, match="RUNNERS_MAXIMUM_COUNT: must be -1"):
        invoke_scale_down()
    assert states(stack, idle) == {idle[0]: "running"}


def invoke_pool(event: dict[str, Any]) -> Any:
    with Client(app, stage_name=STAGE) as client:
        return client.lambda_.invoke("adjust_pool", event)


def test_adjust_pool_tops_up_the_pool_of_the_configuration_it_names(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_OWNER", ORG)
    stack.github.add_installation(ORG)
    use_configs(stack, monkeypatch, [config("a"), config("big", INSTANCE_TYPES="m5.2xlarge")])

    invoke_pool({"poolSize": 2, "runnerConfig": "big"})
    invoke_pool({"poolSize": 1})  # the first configuration

    big = stack.boto("ec2").describe_instances(Filters=[
        {"Name": "tag:ghr:environment", "Values": ["devstack-big"]}])["Reservations"]
    assert [i["InstanceType"] for r in big for i in r["Instances"]] == ["m5.2xlarge"] * 2
    first = stack.boto("ec2").describe_instances(Filters=[
        {"Name": "tag:ghr:environment", "Values": ["devstack-a"]}])["Reservations"]
    assert sum(len(r["Instances"]) for r in first) == 1
    with pytest.raises(Exception, match="no runner configuration 'nope'"):
        invoke_pool({"poolSize": 1, "runnerConfig": "nope"})


def test_ec2_events_recognise_an_instance_of_any_configuration(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(stack, monkeypatch, [config("a"), config("c", RUNNER_NAME_PREFIX="c-")])
    [instance] = launch(stack, environment="devstack-c")
    runner = register(stack, instance, prefix="c-")
    [stranger] = launch(stack, environment="another-deployment")
    register(stack, stranger)

    with Client(app, stage_name=STAGE) as client:
        for instance_id in (instance, stranger):
            client.lambda_.invoke("ec2_events", ec2_event(WARNING, {
                "instance-id": instance_id, "instance-action": "terminate"}, 1_800_000_000))

    # Its idle runner, named with c's prefix, is deregistered; the stranger's is not touched.
    left = {r.id for r in stack.github.runners(ORG)}
    assert runner not in left and len(left) == 1


def test_a_job_lost_on_an_interrupted_runner_of_any_configuration_is_rerun(
        ghr: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(ghr.stack, monkeypatch, [config("a"), config("c", RUNNER_NAME_PREFIX="c-")])
    [instance] = launch(ghr.stack, environment="devstack-c")
    job = ghr.fake.add_job(ORG, "app", ["self-hosted"])
    runner = register(ghr.stack, instance, prefix="c-")
    with ghr.fake.lock:  # the runner, named with c's prefix, runs the job
        ghr.fake.runner_records[runner].busy = True
        ghr.fake.runner_records[runner].job_id = job
        record = ghr.fake.job_records[job]
        record.status, record.runner_id, record.runner_name = "in_progress", runner, \
            f"c-{instance}"
        record.started_at = ghr.fake.clock()
    ghr.deliver("in_progress", job)
    ghr.warning(instance)
    ghr.fake.lose_runner(runner)

    ghr.deliver("completed", job)

    assert ghr.fake.count(route="POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun") == 1


def binaries_bucket(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The syncer's bucket, named in the functions' environment; its S3 client."""
    s3 = stack.boto("s3")
    s3.create_bucket(Bucket="binaries",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("RUNNER_BINARIES_BUCKET", "binaries")
    return s3


def test_sync_runner_binaries_caches_every_configurations_os_and_architecture(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = binaries_bucket(stack, monkeypatch)
    use_configs(stack, monkeypatch, [
        config("linux"), config("arm", RUNNER_ARCHITECTURE="arm64"),
        config("win", RUNNER_OS="windows"), config("linux-big", INSTANCE_TYPES="m5.4xlarge")])

    with Client(app, stage_name=STAGE) as client:
        client.lambda_.invoke("sync_runner_binaries", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="binaries")["Contents"])
    assert keys == ["actions-runner-linux-arm64.tar.gz", "actions-runner-linux-x64.tar.gz",
                    "actions-runner-windows-x64.zip"]
    body = s3.get_object(Bucket="binaries", Key="actions-runner-linux-arm64.tar.gz")["Body"]
    assert body.read() == stack.github.release_bytes("linux", "arm64")


def test_stale_tokens_are_looked_for_only_under_token_paths(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configuration sets its token path and the top level has none: the top-level scope
    lists no parameters (listing "" would list, and judge, every parameter of the region)."""
    tokens = stack.deployment.token_path
    monkeypatch.delenv("SSM_TOKEN_PATH")
    use_configs(stack, monkeypatch, [config("a", SSM_TOKEN_PATH=tokens),
                                     config("b", SSM_TOKEN_PATH=tokens)])
    monkeypatch.setattr(scale_down, "utcnow", lambda: later(120))
    ssm = stack.boto("ssm")
    ssm.put_parameter(Name="/another-team/setting", Value="x", Type="String")
    ssm.put_parameter(Name=f"{tokens}/i-0123456789abcdef0", Value="old", Type="SecureString")

    invoke_scale_down()

    names = {p["Name"] for page in ssm.get_paginator("describe_parameters").paginate()
             for p in page["Parameters"]}
    assert f"{tokens}/i-0123456789abcdef0" not in names  # a stale token: deleted
    assert {"/another-team/setting", stack.deployment.app_key_parameter,
            stack.deployment.webhook_secret_parameter} <= names


def test_one_archive_failing_to_sync_leaves_the_others_synced_and_fails_the_run(
        stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = binaries_bucket(stack, monkeypatch)
    use_configs(stack, monkeypatch, [config("linux"), config("arm", RUNNER_ARCHITECTURE="arm64")])
    stack.aws_faults.fail_next("s3", "HEAD /binaries/actions-runner-linux-x64.tar.gz",
                               "AccessDenied", status=403)

    with Client(app, stage_name=STAGE) as client, pytest.raises(Exception, match="HeadObject"):
        client.lambda_.invoke("sync_runner_binaries", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="binaries").get("Contents", [])]
    assert keys == ["actions-runner-linux-arm64.tar.gz"]  # synced after the x64 one failed
