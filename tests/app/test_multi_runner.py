"""Several runner configurations (docs/REFERENCE.md §6) through `chalice.test.Client` against
devstack: the webhook routes each job to one, scale_up launches with that one's settings."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from multi_runner_support import PARAMETER, config, use_configs
from scale_up_support import ORG, REPO, ScaleUpHarness, job_body, scale_up, tags_of
from webhook_support import Webhook, body_of, client, log_lines, payload, webhook

__all__ = ["client", "log_lines", "scale_up", "webhook"]

LINUX = ["self-hosted", "linux", "x64"]
SELF_HOSTED = "workflow_job/queued-self-hosted.json"
ROUTED = [
    config("linux", LINUX, exact=True, priority=10),
    config("gpu", ["self-hosted", "linux", "gpu"], bidirectional=True),
    config("any-linux", ["linux"], ["arm64"], priority=1),
]


def post_labels(webhook: Webhook, labels: list[str]) -> Any:
    event = payload(SELF_HOSTED)
    event["workflow_job"]["labels"] = labels
    return webhook.post(json.dumps(event).encode())


def routed(webhook: Webhook) -> list[str | None]:
    return [json.loads(m["Body"]).get("runnerConfig") for m in webhook.queued()]


@pytest.mark.parametrize(("labels", "expected"), [
    # Strict matchers are tried first, even when a loose one has a lower priority.
    (["self-hosted", "linux"], "linux"),
    (["Self-Hosted", "LINUX", "x64"], "linux"),
    # Bidirectional: exactly its set, no fewer labels.
    (["self-hosted", "linux", "gpu"], "gpu"),
    (["linux", "gpu"], "any-linux"),
    # Not exact: any one label of a set.
    (["ubuntu", "arm64"], "any-linux"),
])
def test_webhook_routes_each_job_to_the_first_matching_configuration(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch, log_lines: list[str],
        labels: list[str], expected: str) -> None:
    use_configs(stack, monkeypatch, ROUTED)
    assert post_labels(webhook, labels).status_code == 201
    assert routed(webhook) == [expected]
    [line] = [json.loads(x) for x in log_lines if '"webhook delivery"' in x]
    assert line["runner_config"] == expected and line["outcome"] == "accepted"


def test_webhook_without_a_match_answers_202_and_enqueues_nothing(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch,
        log_lines: list[str]) -> None:
    use_configs(stack, monkeypatch, ROUTED)
    for labels in (["windows"], ["self-hosted", "gpu"]):
        response = post_labels(webhook, labels)
        assert response.status_code == 202
        assert body_of(response)["reason"] == \
            f"no runner configuration matches labels {labels}"
    assert webhook.queued() == []
    assert sum('"not_accepted"' in x and "no runner configuration" in x for x in log_lines) == 2


def test_webhook_breaks_priority_ties_in_list_order(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(stack, monkeypatch, [
        config("later", ["linux"], priority=50),
        config("first", ["linux"], priority=5),
        config("second", ["linux"], priority=5),
    ])
    assert post_labels(webhook, ["self-hosted", "linux"]).status_code == 201
    assert routed(webhook) == ["first"]


def test_webhook_with_a_secure_string_list_and_no_match_for_a_label_less_job(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(stack, monkeypatch, [config("plain")], secure=True)
    # Without matcherConfig: its own labels, exactly (self-hosted, linux, x64).
    assert post_labels(webhook, ["self-hosted", "x64"]).status_code == 201
    assert post_labels(webhook, []).status_code == 202
    assert routed(webhook) == ["plain"]


def test_webhook_with_a_bad_list_answers_500_naming_every_problem(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch,
        log_lines: list[str]) -> None:
    use_configs(stack, monkeypatch, [config("a", GHES_URL="https://x"),
                                     config("a", NOPE="1")])
    response = post_labels(webhook, LINUX)
    assert response.status_code == 500
    [line] = [json.loads(x) for x in log_lines if '"webhook delivery"' in x]
    assert line["problems"] == [
        f"RUNNER_CONFIGS_PARAMETER_NAME ({PARAMETER}): entry 1 (a): environment.GHES_URL: "
        "not overridable per configuration",
        f"RUNNER_CONFIGS_PARAMETER_NAME ({PARAMETER}): entry 2 (a): environment.NOPE: "
        "unknown variable",
        f"RUNNER_CONFIGS_PARAMETER_NAME ({PARAMETER}): id must be unique, repeated: a"]
    assert webhook.queued() == []


def test_webhook_answers_503_when_the_list_cannot_be_read_and_routes_on_redelivery(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(stack, monkeypatch, ROUTED)
    # Every attempt of the quick client (the first and two retries).
    stack.aws_faults.fail_next("ssm", "GetParameter", "ThrottlingException", times=3)
    assert post_labels(webhook, LINUX).status_code == 503  # GitHub may redeliver
    assert post_labels(webhook, LINUX).status_code == 201
    assert routed(webhook) == ["linux"]


def test_webhook_answers_503_when_ssm_refuses_the_list(
        webhook: Webhook, stack: Any, monkeypatch: pytest.MonkeyPatch,
        log_lines: list[str]) -> None:
    use_configs(stack, monkeypatch, ROUTED)
    stack.aws_faults.fail_next("ssm", "GetParameter", "AccessDeniedException", times=1)
    response = post_labels(webhook, LINUX)
    assert response.status_code == 503  # named in the log line, not a bare 500
    [line] = [json.loads(x) for x in log_lines if '"webhook delivery"' in x]
    assert "AccessDeniedException" in line["error"]
    assert webhook.queued() == []


# scale_up


def add_jobs(harness: ScaleUpHarness, n: int) -> list[int]:
    return [harness.stack.github.add_job(ORG, REPO, ["self-hosted"]) for _ in range(n)]


def per_environment(harness: ScaleUpHarness, *environments: str) -> dict[str, list[Any]]:
    return {e: harness.instances(environment=e) for e in environments}


def test_scale_up_caps_each_configuration_apart_and_tags_its_environment(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true")
    use_configs(scale_up.stack, monkeypatch, [
        config("small", RUNNERS_MAXIMUM_COUNT="2", INSTANCE_TYPES="t3.small"),
        config("large", RUNNERS_MAXIMUM_COUNT="1", INSTANCE_TYPES="m5.xlarge",
               RUNNER_LABELS="large"),
    ])
    jobs = add_jobs(scale_up, 5)
    bodies = [job_body(j, runnerConfig="small") for j in jobs[:3]] + [
        job_body(j, runnerConfig="large") for j in jobs[3:]]
    scale_up.stack.aws_faults.reset()

    outcome = scale_up.invoke(*bodies)
    describes = scale_up.stack.aws_faults.count("ec2", "DescribeInstances")

    # Each configuration's cap of one owner is its own: 2 + 1 launched, one of each retried.
    found = per_environment(scale_up, "devstack-small", "devstack-large")
    assert [len(found[e]) for e in found] == [2, 1]
    assert sorted(outcome.failures) == ["msg-2", "msg-4"]
    assert {i["InstanceType"] for i in found["devstack-small"]} == {"t3.small"}
    assert {i["InstanceType"] for i in found["devstack-large"]} == {"m5.xlarge"}
    for environment, instances in found.items():
        assert all(tags_of(i)["ghr:environment"] == environment for i in instances)
    # One DescribeInstances for the batch, whatever the number of configurations.
    assert describes == 1
    plans = {line["runner_config"]: line for line in outcome.lines("scale-up plan")}
    assert (plans["small"]["cap"], plans["large"]["cap"]) == (2, 1)
    # The large configuration's JIT runners carry its labels.
    large = [r for r in scale_up.stack.github.runners(ORG) if "large" in r.labels]
    assert len(large) == 1


def test_scale_up_at_one_configurations_cap_still_launches_for_another(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", ENABLE_EPHEMERAL_RUNNERS="true",
                       RUNNERS_MAXIMUM_COUNT="1")
    use_configs(scale_up.stack, monkeypatch, [config("a"), config("b")])
    first, second, third = add_jobs(scale_up, 3)
    assert scale_up.invoke(job_body(first, runnerConfig="a"), prefix="one").failures == []
    # Configuration a is at its cap of 1; b has its own.
    outcome = scale_up.invoke(job_body(second, runnerConfig="a"),
                              job_body(third, runnerConfig="b"), prefix="two")
    assert outcome.failures == ["two-0"]
    assert [len(v) for v in per_environment(scale_up, "devstack-a", "devstack-b").values()] \
        == [1, 1]


def test_scale_up_without_runner_config_uses_the_first_configuration(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true")
    use_configs(scale_up.stack, monkeypatch, [config("first"), config("second")])
    [job] = add_jobs(scale_up, 1)
    assert scale_up.invoke(job_body(job)).failures == []
    assert len(scale_up.instances(environment="devstack-first")) == 1


def test_scale_up_returns_an_unknown_runner_config_for_retry_after_one_fresh_read(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true")
    use_configs(scale_up.stack, monkeypatch, [config("a")])
    known, unknown = add_jobs(scale_up, 2)
    scale_up.stack.aws_faults.reset()

    outcome = scale_up.invoke(job_body(known, runnerConfig="a"),
                              job_body(unknown, runnerConfig="gone"))

    assert outcome.failures == ["msg-1"]  # retried until the dead-letter queue
    [line] = outcome.lines("unknown runner configuration; message retried")
    assert (line["runner_config"], line["known"]) == ("gone", ["a"])
    # The list was read when the container started, and once more for the unknown id.
    assert scale_up.stack.aws_faults.count("ssm", "GetParameter") == 2
    assert len(scale_up.instances(environment="devstack-a")) == 1


def test_scale_up_with_a_bad_list_retries_every_message_and_logs_every_problem(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    use_configs(scale_up.stack, monkeypatch, [
        config("ok"), config("BAD", RUNNERS_MAXIMUM_COUNT="many"),
        {"id": "x", "environment": {"STATE_TABLE_NAME": "other"}}])
    [job] = add_jobs(scale_up, 1)

    outcome = scale_up.invoke(job_body(job, runnerConfig="ok"))

    assert outcome.failures == ["msg-0"]
    [line] = outcome.lines("configuration error")
    assert [p.split(": ", 1)[1] for p in line["problems"]] == [
        "entry 2: id: expected 1 to 32 of a-z, 0-9 and -, got 'BAD'",
        "entry 2: RUNNERS_MAXIMUM_COUNT: expected an integer, got 'many'",
        "entry 3 (x): environment.STATE_TABLE_NAME: not overridable per configuration"]
    assert scale_up.instances(environment="devstack-ok") == []


def test_a_mixed_burst_across_configurations_costs_about_one_github_call_per_runner(
        scale_up: ScaleUpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="-1")
    use_configs(scale_up.stack, monkeypatch, [
        config("linux"), config("arm", RUNNER_ARCHITECTURE="arm64"),
        config("gpu", ENABLE_EPHEMERAL_RUNNERS="true", RUNNER_LABELS="gpu")])
    jobs = add_jobs(scale_up, 30)
    ids = ("linux", "arm", "gpu")
    bodies = [job_body(j, runnerConfig=ids[n % 3]) for n, j in enumerate(jobs)]
    scale_up.stack.github.clear_log()

    for batch in range(3):
        assert scale_up.invoke(*bodies[batch * 10:(batch + 1) * 10],
                               prefix=f"b{batch}").failures == []

    launched = sum(len(scale_up.instances(environment=f"devstack-{i}")) for i in ids)
    calls = Counter(r.route for r in scale_up.stack.github.requests)
    assert launched == 30
    # One call per runner: the queued check of a reuse runner's job, the JIT config of an
    # ephemeral one. Beside them, once per container or owner whatever the configurations:
    # the installation's id and token, the registration token (minted once even when the
    # owner's groups of two configurations start side by side), the runner group's id. So 300
    # jobs cost 304 calls (1.01 a runner), as they would in one configuration.
    per_runner = calls["GET /repos/{owner}/{repo}/actions/jobs/{job_id}"] + \
        calls["POST /orgs/{org}/actions/runners/generate-jitconfig"]
    # (Two groups of one owner missing the runner group's id side by side once looked it up
    # twice, about one run in 60: the look-up is now one at a time per org and group.)
    assert per_runner == 30 and sum(calls.values()) == 30 + 4, calls
