"""Contract of the GitHub fake with several Apps (REFERENCE §10): each App has its own id, keys,
installations, tokens and budgets; runners belong to the owner, whichever App registered them."""

from __future__ import annotations

from typing import Any

from devstack.github_auth import FakeApp
from devstack.github_fake import GitHubFake
from devstack.github_testing import FakeGitHubClient, app_jwt


def jwt_of(fake: GitHubFake, app: FakeApp) -> str:
    return app_jwt(fake, iss=str(app.app_id), private_key_pem=app.private_key_pem)


def as_app(client: FakeGitHubClient, fake: GitHubFake, app: FakeApp, method: str,
           path: str, **kwargs: Any) -> Any:
    return client.call(method, path, jwt_of(fake, app), scheme="Bearer", **kwargs)


def test_each_app_answers_get_app_with_its_own_id(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()

    assert as_app(client, fake, second, "GET", "/app").json()["id"] == second.app_id
    assert as_app(client, fake, fake.app(), "GET", "/app").json()["id"] == fake.app_id
    assert fake.calls_by_app() == {fake.app_id: 1, second.app_id: 1}


def test_a_jwt_signed_with_another_apps_key_is_refused(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()
    forged = app_jwt(fake, iss=str(second.app_id), private_key_pem=fake.private_key_pem)

    answer = client.call("GET", "/app", forged, scheme="Bearer")

    assert answer.status_code == 401
    assert fake.requests[-1].app_id == second.app_id  # the App the JWT names tried


def test_each_app_finds_only_its_own_installation(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()
    first_id = fake.add_installation("acme")
    second_id = fake.add_installation("acme", app_id=second.app_id)
    fake.add_installation("solo")

    assert as_app(client, fake, second, "GET", "/orgs/acme/installation").json()["id"] == second_id
    assert as_app(client, fake, fake.app(), "GET",
                  "/orgs/acme/installation").json()["id"] == first_id
    assert as_app(client, fake, second, "GET", "/orgs/solo/installation").status_code == 404
    assert fake.installation_for("acme", second.app_id).account_id == \
        fake.installation_for("acme").account_id


def test_an_app_cannot_mint_a_token_for_another_apps_installation(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()
    first_id = fake.add_installation("acme")

    answer = as_app(client, fake, second, "POST", f"/app/installations/{first_id}/access_tokens")

    assert answer.status_code == 404


def test_each_installation_spends_its_own_budget_and_runners_belong_to_the_owner(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()
    first_id = fake.add_installation("acme")
    second_id = fake.add_installation("acme", app_id=second.app_id)
    tokens = {}
    for app, installation in ((fake.app(), first_id), (second, second_id)):
        minted = as_app(client, fake, app, "POST",
                        f"/app/installations/{installation}/access_tokens")
        tokens[app.app_id] = minted.json()["token"]
    body = {"name": "i-1", "runner_group_id": 1, "labels": ["self-hosted"]}

    created = client.call("POST", "/orgs/acme/actions/runners/generate-jitconfig",
                          tokens[fake.app_id], json=body)
    runner_id = created.json()["runner"]["id"]
    deleted = client.call("DELETE", f"/orgs/acme/actions/runners/{runner_id}",
                          tokens[second.app_id])

    assert deleted.status_code == 204 and fake.runners("acme") == []
    assert fake.rate_limit(first_id).used == 1 and fake.rate_limit(second_id).used == 1
    assert [(r.method, r.app_id) for r in fake.requests[-2:]] == [
        ("POST", fake.app_id), ("DELETE", second.app_id)]


def test_only_the_first_apps_webhook_has_deliveries(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()
    fake.deliveries.add(fake.clock(), status_code=201)

    assert as_app(client, fake, second, "GET", "/app/hook/deliveries").json() == []
    assert len(as_app(client, fake, fake.app(), "GET", "/app/hook/deliveries").json()) == 1


def test_a_revoked_key_refuses_the_apps_jwts_and_a_reset_restores_the_apps(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    second = fake.add_app()
    fake.revoke_app_key(second.key)

    assert as_app(client, fake, second, "GET", "/app").status_code == 401
    fake.reset()
    assert fake.apps == [fake.app()]
    again = fake.add_app()
    assert again is second and again.keys == [again.key]
    assert as_app(client, fake, again, "GET", "/app").status_code == 200
