"""scale_up with several GitHub Apps (REFERENCE §10), through the handler on devstack: the burst
spreads over the Apps' budgets, an App that cannot serve an owner is passed over within the
invocation, and the calls a runner costs do not change."""

from __future__ import annotations

from collections import Counter
from typing import Any

from scale_up_support import ORG, ScaleUpHarness, job_body, scale_up

__all__ = ["scale_up"]

OTHER = "beta"
APP_ROUTES = ("GET /orgs/{org}/installation",
              "POST /app/installations/{installation_id}/access_tokens")


def add_second_app(harness: ScaleUpHarness, *owners: str) -> Any:
    """A second App installed on `owners`, listed in the function's environment."""
    app = harness.stack.add_app(*owners)
    env = harness.stack.env()
    harness.configure(PARAMETER_GITHUB_APP_ID_NAME=env["PARAMETER_GITHUB_APP_ID_NAME"],
                       PARAMETER_GITHUB_APP_KEY_BASE64_NAME=env[
                           "PARAMETER_GITHUB_APP_KEY_BASE64_NAME"])
    return app


def queued(harness: ScaleUpHarness, owner: str, n: int) -> list[str]:
    """`n` queued jobs of `owner`, as the webhook enqueues them (the first App's installation)."""
    fake = harness.stack.github
    installation = fake.installation_id(owner)
    return [job_body(fake.add_job(owner, "app", ["self-hosted", "linux"]), owner=owner,
                     installation_id=installation) for _ in range(n)]


def used(harness: ScaleUpHarness, owner: str, app_id: int) -> int:
    fake = harness.stack.github
    return int(fake.rate_limit(fake.installation_id(owner, app_id)).used)


def installation_calls(harness: ScaleUpHarness) -> Counter[str]:
    """The calls made with installation tokens, by route."""
    return Counter(e.route for e in harness.stack.github.requests if e.route not in APP_ROUTES)


def test_a_burst_spreads_evenly_over_two_apps(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="100")
    second = add_second_app(scale_up, ORG)
    first = scale_up.stack.github.app_id
    bodies = queued(scale_up, ORG, 40)

    for start in range(0, 40, 10):
        assert scale_up.invoke(*bodies[start:start + 10]).failures == []

    assert len(scale_up.instances(ORG)) == 40
    spent = used(scale_up, ORG, first), used(scale_up, ORG, second.app_id)
    assert sum(spent) == sum(installation_calls(scale_up).values())
    assert abs(spent[0] - spent[1]) <= 4, spent


def test_a_runner_costs_the_same_calls_with_one_app_or_two(scale_up: ScaleUpHarness) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="100")
    assert scale_up.invoke(*queued(scale_up, ORG, 10)).failures == []
    one_app = installation_calls(scale_up)
    scale_up.stack.github.clear_log()

    add_second_app(scale_up, ORG)
    assert scale_up.invoke(*queued(scale_up, ORG, 10)).failures == []

    assert installation_calls(scale_up) == one_app
    assert len(scale_up.instances(ORG)) == 20


def test_an_app_not_installed_on_one_owner_is_skipped_there_only(
    scale_up: ScaleUpHarness
) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="100")
    scale_up.stack.github.add_installation(OTHER)
    second = add_second_app(scale_up, ORG)

    for _ in range(2):
        outcome = scale_up.invoke(*queued(scale_up, ORG, 5), *queued(scale_up, OTHER, 5))
        assert outcome.failures == []

    fake = scale_up.stack.github
    assert len(scale_up.instances(ORG)) == len(scale_up.instances(OTHER)) == 10
    assert used(scale_up, ORG, second.app_id) > 0
    # On beta the second App was asked for its installation once (404), then passed over.
    assert [e.route for e in fake.requests
            if e.app_id == second.app_id and e.path.startswith(f"/orgs/{OTHER}/")] == [
        "GET /orgs/{org}/installation"]
    assert fake.installation_id(OTHER, second.app_id) is None


def test_a_revoked_key_moves_the_calls_to_the_other_app_within_the_invocation(
    scale_up: ScaleUpHarness
) -> None:
    scale_up.configure(ENABLE_ORGANIZATION_RUNNERS="true", RUNNERS_MAXIMUM_COUNT="100")
    second = add_second_app(scale_up, ORG)
    scale_up.stack.github.revoke_app_key(second.key)  # deleted on GitHub, still in SSM

    outcome = scale_up.invoke(*queued(scale_up, ORG, 6))

    assert outcome.failures == []
    assert len(scale_up.instances(ORG)) == 6
    assert [e.status for e in scale_up.stack.github.requests
            if e.app_id == second.app_id] == [401]
    assert outcome.lines("github app skipped")[0]["app_id"] == second.app_id
