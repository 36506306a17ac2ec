"""The pure decisions of scale-up: owners, groups, the cap, settling a fleet, the client token,
and the config.sh arguments (a pure function of the settings).

Issue 4 points 2 and 4, Guarantee 1, R-UP-02/04, R-EC2-02, R-Q-06.
"""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.aws.ec2 import FleetError
from chalicelib.messages import JobMessage
from chalicelib.rules.launch import (
    config_arguments,
    shortfall_retryable,
    wants_on_demand_failover,
)
from chalicelib.rules.scale_up import (
    DUPLICATE_JOB,
    USER_OWNED_REPO,
    client_token,
    group_jobs,
    owner_of,
    plan_scale_up,
    settle,
)
from chalicelib.settings import Settings, load_settings


def make_job(job_id: int = 1, owner: str = "acme", repo: str = "app",
             owner_type: str | None = "Organization", installation_id: int = 0,
             message_id: str | None = None) -> JobMessage:
    return JobMessage(message_id=message_id or f"m-{job_id}", id=job_id,
                      event_type="workflow_job", repository_name=repo, repository_owner=owner,
                      installation_id=installation_id, repo_owner_type=owner_type)


def test_owner_of_org_runners_is_the_repository_owner() -> None:
    assert owner_of(make_job(), organization_runners=True) == ("acme", "Org")


def test_owner_of_repo_runners_is_owner_slash_repo() -> None:
    assert owner_of(make_job(), organization_runners=False) == ("acme/app", "Repo")


def test_owner_of_user_owned_repo_with_org_runners_is_none() -> None:
    assert owner_of(make_job(owner_type="User"), organization_runners=True) is None
    assert owner_of(make_job(owner_type="User"), organization_runners=False) == (
        "acme/app", "Repo")


def test_group_jobs_groups_by_owner_in_arrival_order() -> None:
    jobs = [make_job(1, "acme"), make_job(2, "beta"), make_job(3, "acme", repo="other")]

    groups, dropped = group_jobs(jobs, organization_runners=True)

    assert [(g.owner, [j.id for j in g.jobs]) for g in groups] == [("acme", [1, 3]),
                                                                    ("beta", [2])]
    assert dropped == ()


def test_group_jobs_drops_user_repos_and_repeated_jobs_with_reasons() -> None:
    jobs = [make_job(1), make_job(1, message_id="copy"), make_job(2, owner_type="User")]

    groups, dropped = group_jobs(jobs, organization_runners=True)

    assert [j.message_id for j in groups[0].jobs] == ["m-1"]
    assert [(d.message_id, d.reason) for d in dropped] == [("copy", DUPLICATE_JOB),
                                                           ("m-2", USER_OWNED_REPO)]


def test_group_jobs_compare_owners_and_repeats_case_insensitively() -> None:
    jobs = [make_job(1, "Acme"), make_job(2, "ACME"), make_job(1, "acme", message_id="copy")]

    groups, dropped = group_jobs(jobs, organization_runners=True)

    # One owner (one cap), spelled as it first came; the same job in another case is a repeat.
    assert [(g.owner, [j.id for j in g.jobs]) for g in groups] == [("Acme", [1, 2])]
    assert [(d.message_id, d.reason) for d in dropped] == [("copy", DUPLICATE_JOB)]


def test_group_installation_id_is_the_first_known_one() -> None:
    groups, _ = group_jobs([make_job(1), make_job(2, installation_id=7)], True)

    assert groups[0].installation_id == 7


def test_plan_with_room_for_every_queued_job_launches_them_all() -> None:
    plan = plan_scale_up("acme", "Org", ["a", "b"], granted=3, ephemeral=False)

    assert plan.launch == ("a", "b") and plan.retry == () and plan.consume == ()


def test_plan_launches_only_what_the_reservation_granted() -> None:
    plan = plan_scale_up("acme", "Org", ["a", "b", "c"], granted=1, ephemeral=False)

    assert plan.launch == ("a",)
    assert plan.consume == ("b", "c")  # reuse: a running runner will take them


def test_plan_over_the_cap_with_ephemeral_runners_retries_the_rest() -> None:
    plan = plan_scale_up("acme", "Org", ["a", "b", "c"], granted=1, ephemeral=True)

    assert plan.launch == ("a",)
    assert plan.retry == ("b", "c")


def test_plan_over_the_cap_without_a_reuse_runner_to_take_the_jobs_retries_them() -> None:
    # The cap is held by instances that never registered: nobody would run the jobs.
    plan = plan_scale_up("acme", "Org", ["a", "b"], granted=0, ephemeral=False,
                         reuse_runner_available=False)

    assert plan.launching == 0 and plan.retry == ("a", "b") and plan.consume == ()


@given(queued=st.integers(0, 20), granted=st.integers(0, 25), ephemeral=st.booleans(),
       reuse=st.booleans())
def test_plan_launches_the_first_granted_jobs_and_accounts_for_every_message(
        queued: int, granted: int, ephemeral: bool, reuse: bool) -> None:
    ids = [f"m-{n}" for n in range(queued)]

    plan = plan_scale_up("acme", "Org", ids, granted=granted, ephemeral=ephemeral,
                         reuse_runner_available=reuse)

    assert plan.launch == tuple(ids[:min(queued, granted)])
    assert sorted(plan.launch + plan.retry + plan.consume) == sorted(ids)
    assert plan.consume == () or (not ephemeral and reuse)


def test_settle_gives_the_runners_to_the_first_messages_and_retries_the_rest() -> None:
    result = settle(["a", "b", "c", "d", "e"], ready=3)

    assert result.launched == ("a", "b", "c")
    assert result.retry == ("d", "e")


def test_settle_retries_whatever_the_reason_capacity_is_missing() -> None:
    # A permanent fleet error (a bad template) is fixed by an operator: the jobs wait for it in
    # the queue, then in the dead-letter queue, never dropped (docs/REFERENCE.md §5.3).
    result = settle(["a", "b"], ready=0)

    assert result.launched == () and result.retry == ("a", "b")


def _shortfall_retryable(*codes: str) -> bool:
    return shortfall_retryable([FleetError(code, "").retryable for code in codes])


def test_shortfall_is_retryable_for_capacity_errors_or_when_ec2_gave_no_reason() -> None:
    assert _shortfall_retryable("InsufficientInstanceCapacity")
    assert _shortfall_retryable()
    assert _shortfall_retryable("InvalidParameterValue", "UnfulfillableCapacity")


def test_shortfall_is_permanent_for_configuration_errors_only() -> None:
    assert not _shortfall_retryable("InvalidAMIID.NotFound")
    assert not _shortfall_retryable("InvalidParameterValue", "UnauthorizedOperation")


def test_on_demand_failover_only_for_spot_and_listed_codes() -> None:
    listed = ["InsufficientInstanceCapacity"]

    assert wants_on_demand_failover("spot", ["InsufficientInstanceCapacity"], listed)
    assert not wants_on_demand_failover("on-demand", ["InsufficientInstanceCapacity"], listed)
    assert not wants_on_demand_failover("spot", ["UnfulfillableCapacity"], listed)
    assert not wants_on_demand_failover("spot", ["InsufficientInstanceCapacity"], [])


def test_client_token_is_stable_for_the_same_delivery_in_any_order() -> None:
    first = client_token([("a", 1), ("b", 1)], 2, "spot")

    assert first == client_token([("b", 1), ("a", 1)], 2, "spot")
    assert len(first) == 64


def test_client_token_changes_with_redelivery_count_or_capacity_type() -> None:
    base = client_token([("a", 1)], 1, "spot")

    assert base != client_token([("a", 2)], 1, "spot")
    assert base != client_token([("a", 1)], 2, "spot")
    assert base != client_token([("a", 1)], 1, "on-demand")


def settings_of(**env: str) -> Settings:
    base = {"ENVIRONMENT": "test", "ENABLE_ORGANIZATION_RUNNERS": "true"}
    return load_settings({**base, **env})


def test_config_arguments_without_ghes_url_point_at_github_com() -> None:
    arguments = config_arguments(settings_of(), "acme", "Org", "TOKEN")

    assert arguments == "--url https://github.com/acme --token TOKEN --runnergroup Default"


def test_config_arguments_with_ghes_url_labels_group_and_flags_in_contract_order() -> None:
    settings = settings_of(GHES_URL="https://ghes.example.com/", RUNNER_LABELS="gpu,big",
                           RUNNER_GROUP_NAME="Build Farm", DISABLE_RUNNER_AUTOUPDATE="true",
                           ENABLE_EPHEMERAL_RUNNERS="true")

    arguments = config_arguments(settings, "acme", "Org", "TOKEN")

    assert arguments == ("--url https://ghes.example.com/acme --token TOKEN --labels gpu,big "
                         "--runnergroup 'Build Farm' --disableupdate --ephemeral")


def test_config_arguments_of_repo_runners_have_no_runner_group() -> None:
    arguments = config_arguments(settings_of(ENABLE_ORGANIZATION_RUNNERS="false"), "acme/app",
                                 "Repo", "TOKEN")

    assert arguments == "--url https://github.com/acme/app --token TOKEN"


def test_config_arguments_quote_labels_holding_shell_metacharacters() -> None:
    arguments = config_arguments(settings_of(RUNNER_LABELS="a b,$(x),c"), "acme", "Org", "T")

    assert "--labels 'a b,$(x),c'" in arguments


def test_config_arguments_quote_a_ghes_url_holding_shell_characters() -> None:
    settings = settings_of(GHES_URL="https://ghes.example.com/?a=1&b")

    arguments = config_arguments(settings, "acme", "Org", "TOKEN")

    assert shlex.split(arguments)[:4] == ["--url", "https://ghes.example.com/?a=1&b/acme",
                                          "--token", "TOKEN"]
